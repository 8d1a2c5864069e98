"""Exactly-once email sending: per-recipient `Delivery` rows claimed in short transactions.

Protocol (each step its own committed write, the provider call outside any transaction):

1. claim: queued → sending for a batch (``select_for_update(skip_locked=True)`` on PostgreSQL; the claim
   UPDATE re-checks ``status=queued`` so SQLite's single writer is safe too), with ``claimed_by`` and
   ``claimed_at`` (the lease);
2. before each provider call: ``send_started_at`` and our Message-ID are written, and the worker's lease
   is renewed;
3. after the call: sending → sent with the provider's answer.

A claim whose lease expired belongs to a dead worker: rows it never started go back to queued (nobody
skipped); rows it had started are marked ``uncertain`` (the provider may or may not have accepted them)
and are not resent unless an operator asks (`campaigns.campaign_resend_uncertain`). A row is only ever
handed to the provider by the worker whose claim is current, so nobody is sent twice.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from html import escape, unescape
from urllib.parse import quote

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from aicmo.jobs import ItemError, job_advance, job_finish
from aicmo.models import JobStatus
from crm.models import Contact
from crm.selectors import contacts_receivable
from gateway import services as gateway_services
from gateway.capabilities import DkimKey, OutgoingEmail
from gateway.errors import ProviderError, ProvidersUnavailable

from ..models import (
    Campaign,
    CampaignStatus,
    Channel,
    ContentVersion,
    Delivery,
    DeliveryStatus,
    EngagementEvent,
    EngagementKind,
    TrackedLink,
    WebhookEventType,
)
from ..personalization import custom_field_keys, recipient_context
from . import abtests, dkim, limits, tracking, webhooks
from .content import email_render

log = logging.getLogger(__name__)

DEFAULT_WAIT = timedelta(seconds=60)
LEASE_RENEWALS = 4  # a worker renews its claims at most this often per lease period
MIN_WAIT = timedelta(seconds=5)
# Speed-limit waits up to this long are slept in the worker; longer ones hand the rows back with retry_at.
MAX_INLINE_WAIT = 1.0
UNCERTAIN_NOTE = (
    "In flight when its worker stopped; the provider may have accepted it. Not resent automatically."
)


def claim_lease() -> timedelta:
    return timedelta(seconds=settings.PUBLISHING_CLAIM_LEASE_SECONDS)


def batch_size() -> int:
    return settings.PUBLISHING_SEND_BATCH_SIZE


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:100]


@dataclass(frozen=True)
class BatchOutcome:
    """``more``: claim again now; ``retry_at``: every provider was down, try again then; neither: idle."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    more: bool = False
    retry_at: datetime | None = None
    stopped: bool = False


def claims_recover(*, campaign_id: int, now: datetime | None = None) -> tuple[int, int]:
    """Expired claims of dead workers: unstarted rows back to queued, started rows to uncertain.

    Returns (requeued, uncertain)."""
    now = now or timezone.now()
    stale = Delivery.objects.filter(
        campaign_id=campaign_id, status=DeliveryStatus.SENDING, claimed_at__lt=now - claim_lease()
    )
    requeued = stale.filter(send_started_at__isnull=True).update(
        status=DeliveryStatus.QUEUED, claimed_by="", claimed_at=None
    )
    uncertain = stale.filter(send_started_at__isnull=False).update(
        status=DeliveryStatus.UNCERTAIN, error=UNCERTAIN_NOTE
    )
    if uncertain:
        job_id = Campaign.objects.filter(pk=campaign_id).values_list("job_id", flat=True).first()
        if job_id:
            job_advance(
                job_id=job_id,
                failed=uncertain,
                errors=[ItemError(item=f"{uncertain} recipient(s)", message=UNCERTAIN_NOTE)],
            )
        log.warning(
            "campaign %s: %s delivery(ies) marked uncertain after a worker loss", campaign_id, uncertain
        )
    return requeued, uncertain


def batch_claim(*, campaign_id: int, me: str, size: int, now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(campaign_id=campaign_id, status=DeliveryStatus.QUEUED)
            .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
            .order_by("pk")
            .values_list("pk", flat=True)[:size]
        )
        if not ids:
            return []
        Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.QUEUED).update(
            status=DeliveryStatus.SENDING, claimed_by=me, claimed_at=now
        )
    return list(
        Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.SENDING, claimed_by=me)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _release(me: str, campaign_id: int, *, retry_at: datetime | None = None, error: str = "") -> int:
    """Give back this worker's unstarted claims (pause, cancel, providers down)."""
    fields: dict = {"status": DeliveryStatus.QUEUED, "claimed_by": "", "claimed_at": None}
    if retry_at is not None:
        fields.update(retry_at=retry_at, error=error[:2000])
    return Delivery.objects.filter(
        campaign_id=campaign_id, claimed_by=me, status=DeliveryStatus.SENDING, send_started_at__isnull=True
    ).update(**fields)


def _is_sending(campaign_id: int) -> bool:
    """Still sending, and its job was not cancelled from the shared jobs page (which cancels the campaign)."""
    row = Campaign.objects.filter(pk=campaign_id).values_list("status", "job__status").first()
    if row is None or row[0] != CampaignStatus.SENDING:
        return False
    if row[1] == JobStatus.CANCELLED:
        from .campaigns import campaign_cancel

        campaign_cancel(campaign=Campaign.objects.get(pk=campaign_id), by=None)
        return False
    return True


_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


def _tracker(delivery: Delivery, links: dict[str, TrackedLink]):
    def rewrite(html: str) -> str:
        def sub(match: re.Match) -> str:
            link = links.get(unescape(match.group(3)).strip())
            if link is None:
                return match.group(0)
            return f"{match.group(1)}{match.group(2)}{escape(tracking.click_url(delivery, link))}{match.group(2)}"

        html = _HREF.sub(sub, html)
        pixel = f'<img src="{escape(tracking.open_url(delivery))}" width="1" height="1" alt="" style="display:none">'
        at = html.lower().rfind("</body>")
        return html[:at] + pixel + html[at:] if at >= 0 else html + pixel

    return rewrite


def message_build(
    *,
    campaign: Campaign,
    version: ContentVersion,
    delivery: Delivery,
    links,
    custom_keys,
    message_id: str,
    dkim_keys: dict[str, DkimKey] | None = None,
) -> OutgoingEmail:
    """The recipient's message: multipart/alternative (text + HTML), our Message-ID, RFC 8058 one-click
    List-Unsubscribe (https + mailto), a Feedback-ID ``campaign:workspace:channel:aicmo``, and the DKIM
    key of the From domain when ``dkim_keys`` (``{sender address: key}``, `dkim.signing_keys`) has one."""
    sender = version.sender
    unsubscribe = tracking.unsubscribe_url(delivery)
    rendered = email_render(
        version,
        recipient_context(delivery.contact, custom_keys=custom_keys),
        unsubscribe_url=unsubscribe,
        rewrite_html=_tracker(delivery, links),
    )
    mailbox = version.reply_to or sender.email
    mailto = f"mailto:{mailbox}?subject={quote('unsubscribe ' + tracking.unsubscribe_token(delivery))}"
    return OutgoingEmail(
        to=delivery.email,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        from_email=sender.email,
        from_name=version.from_name or sender.name,
        reply_to=version.reply_to,
        message_id=message_id,
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>, <{mailto}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Feedback-ID": f"{campaign.pk}:{campaign.workspace_id}:{campaign.channel}:aicmo",
        },
        dkim=(dkim_keys or {}).get(sender.email),
    )


def _mark(delivery_id: int, me: str, only: str | None = None, **fields) -> int:
    """Update this worker's row (sending or uncertain; ``only`` narrows to one of them); rows updated."""
    statuses = (only,) if only else (DeliveryStatus.SENDING, DeliveryStatus.UNCERTAIN)
    return Delivery.objects.filter(pk=delivery_id, claimed_by=me, status__in=statuses).update(**fields)


def _mark_failed(delivery: Delivery, me: str, job_id: int | None, error: str, message: str) -> None:
    """This worker's row → failed with ``error``, and one more failure in the job (``message`` listed)."""
    _mark(delivery.pk, me, status=DeliveryStatus.FAILED, error=error[:2000])
    job_advance(job_id=job_id, failed=1, errors=[ItemError(item=delivery.email, message=message)])


# The two statements run for every message, written once as SQL: compiling the equivalent ORM updates
# (the start mark joins the campaign and its job) cost ~1–2 ms of CPU a message, more than the statements.
@lru_cache(maxsize=4)
def _per_message_sql(vendor: str) -> tuple[str, str]:
    """(start mark, sent mark) for the connection's ``vendor``; placeholders in the order
    `_start_mark` and `_sent_mark` pass them."""
    qn = connection.ops.quote_name
    d, c, j = Delivery._meta, Campaign._meta, Campaign._meta.get_field("job").related_model._meta

    def col(meta, name: str) -> str:
        return qn(meta.get_field(name).column)

    # Names come from the models' metadata, every value is a parameter.
    start = (
        f"UPDATE {qn(d.db_table)} SET {col(d, 'send_started_at')} = %s, {col(d, 'message_id')} = %s, "  # noqa: S608
        f"{col(d, 'attempts')} = {col(d, 'attempts')} + 1 "
        f"WHERE {col(d, 'id')} = %s AND {col(d, 'claimed_by')} = %s AND {col(d, 'status')} = %s "
        f"AND EXISTS (SELECT 1 FROM {qn(c.db_table)} c LEFT JOIN {qn(j.db_table)} j "
        f"ON j.{col(j, 'id')} = c.{col(c, 'job')} "
        f"WHERE c.{col(c, 'id')} = %s AND c.{col(c, 'status')} = %s "
        f"AND (j.{col(j, 'status')} IS NULL OR j.{col(j, 'status')} <> %s))"
    )
    sent = (
        f"UPDATE {qn(d.db_table)} SET {col(d, 'status')} = %s, {col(d, 'sent_at')} = %s, "  # noqa: S608
        f"{col(d, 'provider')} = %s, {col(d, 'message_id')} = %s, {col(d, 'error')} = '', "
        f"{col(d, 'retry_at')} = NULL "
        f"WHERE {col(d, 'id')} = %s AND {col(d, 'claimed_by')} = %s AND {col(d, 'status')} = %s"
    )
    return start, sent


def _execute(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _start_mark(delivery_id: int, me: str, campaign_id: int, message_id: str, now: datetime) -> int:
    """Before the provider call: ``send_started_at``, our Message-ID and one more attempt on this worker's
    sending row, only while the campaign is still sending and its job not cancelled (so a pause or cancel
    takes effect before the next message). Rows updated (0 or 1)."""
    return _execute(
        _per_message_sql(connection.vendor)[0],
        [
            connection.ops.adapt_datetimefield_value(now),
            message_id,
            delivery_id,
            me,
            DeliveryStatus.SENDING.value,
            campaign_id,
            CampaignStatus.SENDING.value,
            JobStatus.CANCELLED.value,
        ],
    )


def _sent_mark(
    delivery_id: int, me: str, only: str, *, sent_at: datetime, provider: str, message_id: str
) -> int:
    """This worker's row in status ``only`` → sent with the provider's answer (error and retry_at
    cleared). Rows updated (0 or 1)."""
    return _execute(
        _per_message_sql(connection.vendor)[1],
        [
            DeliveryStatus.SENT.value,
            connection.ops.adapt_datetimefield_value(sent_at),
            provider[:60],
            message_id,
            delivery_id,
            me,
            only,
        ],
    )


def _sent_event(delivery: Delivery, provider: str, at: datetime) -> EngagementEvent:
    """The ``sent`` event of a delivery; ``dedupe_key`` makes it one per delivery (a repair and a late
    flush of the same row cannot both insert it)."""
    return EngagementEvent(
        workspace_id=delivery.workspace_id,
        kind=EngagementKind.SENT,
        channel=delivery.campaign.channel,
        campaign_id=delivery.campaign_id,
        delivery_id=delivery.pk,
        contact_id=delivery.contact_id,
        occurred_at=at,
        metadata={"provider": provider},
        dedupe_key=f"sent:{delivery.pk}",
    )


@dataclass
class _Settled:
    """What a batch has sent but not yet counted: ``sent`` events and job counters are written in one
    transaction per flush (every lease renewal and when the batch ends), not one per message."""

    job_id: int | None
    events: list = field(default_factory=list)
    done: int = 0
    settled_uncertain: int = 0

    def flush(self) -> None:
        if not (self.events or self.done or self.settled_uncertain):
            return
        with transaction.atomic():
            if self.events:
                EngagementEvent.objects.bulk_create(self.events, ignore_conflicts=True)
            if self.job_id:
                job_advance(job_id=self.job_id, done=self.done, failed=-self.settled_uncertain)
        self.events, self.done, self.settled_uncertain = [], 0, 0


def _sent_repair(campaign_id: int, job_id: int | None, now: datetime) -> int:
    """Recovery rule for the deferred counting: a ``sent`` row without its ``sent`` event whose claim is
    older than the lease belonged to a worker that died between the sent mark and its flush (a live worker
    flushes at every lease renewal, so its rows are never that old): write the events and count them in
    the job. Returns how many were repaired."""
    rows = list(
        Delivery.objects.filter(campaign_id=campaign_id, status=DeliveryStatus.SENT)
        .filter(Q(claimed_at__lt=now - claim_lease()) | Q(claimed_at__isnull=True))
        .exclude(Exists(EngagementEvent.objects.filter(delivery=OuterRef("pk"), kind=EngagementKind.SENT)))
        .select_related("campaign")
    )
    if rows:
        settled = _Settled(job_id=job_id, done=len(rows))
        settled.events = [_sent_event(d, d.provider, d.sent_at or now) for d in rows]
        settled.flush()
        log.warning("campaign %s: %s sent delivery(ies) counted after a worker loss", campaign_id, len(rows))
    return len(rows)


def campaign_send_batch(*, campaign_id: int) -> BatchOutcome:
    """Recover dead claims, claim one batch and send it. Safe to run in any number of workers at once and
    to re-run: only queued rows are claimed and only the current claimer calls the provider.

    Per message two writes: the start mark (which also re-checks that the campaign is still sending, so a
    pause or cancel takes effect before the next message) and the sent mark. Per batch: the claim, the
    suppression re-check and every skip in one statement each, the sent events and job counters in one
    transaction per flush (`_Settled`), the gateway accounts read once (``EmailBatch``)."""
    claims_recover(campaign_id=campaign_id)
    if not _is_sending(campaign_id):
        return BatchOutcome(stopped=True)
    campaign = Campaign.objects.select_related("workspace").get(pk=campaign_id)
    me = worker_id()
    ids = batch_claim(campaign_id=campaign_id, me=me, size=batch_size())
    if not ids:
        return BatchOutcome(retry_at=campaign_finish_if_complete(campaign_id=campaign_id))
    version = (
        ContentVersion.objects.select_related("sender", "layout")
        .filter(content_id=campaign.content_id, channel=Channel.EMAIL)
        .first()
    )
    variant_versions = abtests.variant_versions(campaign, version)
    links = {link.url: link for link in TrackedLink.objects.filter(campaign=campaign)}
    keys = custom_field_keys(campaign.workspace_id)
    dkim_keys = dkim.signing_keys(
        campaign.workspace_id, {v.sender.email for v in (version, *variant_versions.values()) if v.sender}
    )
    deliveries = list(
        Delivery.objects.filter(pk__in=ids, claimed_by=me)
        .select_related("contact__company", "campaign")
        .order_by("pk")
    )
    # Who may still receive: one query per batch (crm's bulk rule), not one per message.
    receivable = set(
        contacts_receivable(
            Contact.objects.filter(pk__in=[d.contact_id for d in deliveries]), "email"
        ).values_list("pk", flat=True)
    )
    suppressed = [d.pk for d in deliveries if d.contact_id not in receivable]
    skipped = 0
    if suppressed:
        skipped = Delivery.objects.filter(
            pk__in=suppressed, claimed_by=me, status=DeliveryStatus.SENDING
        ).update(status=DeliveryStatus.SKIPPED, skip_reason="suppressed_since_snapshot")
        job_advance(job_id=campaign.job_id, done=skipped)
    deliveries = [d for d in deliveries if d.contact_id in receivable]
    with gateway_services.EmailBatch(workspace=campaign.workspace) as mailer:  # closed on every return
        settled = _Settled(job_id=campaign.job_id)
        # The claim is as fresh as a renewal: the first renewal is due a quarter lease from now.
        renewed_at = timezone.now()
        sent = failed = 0
        for delivery in deliveries:
            message_id = delivery.message_id or gateway_services.message_id_new(
                from_email=version.sender.email
            )
            try:
                message = message_build(
                    campaign=campaign,
                    version=variant_versions.get(delivery.variant_id, version),
                    delivery=delivery,
                    links=links,
                    custom_keys=keys,
                    message_id=message_id,
                    dkim_keys=dkim_keys,
                )
            except Exception as exc:  # a template error for this recipient: record it, go on with the others
                log.warning("campaign %s delivery %s: render failed: %s", campaign_id, delivery.pk, exc)
                _mark_failed(delivery, me, campaign.job_id, f"render: {exc}", str(exc))
                failed += 1
                continue
            wait, limit = limits.send_wait(campaign, version.sender)
            while 0 < wait <= MAX_INLINE_WAIT:
                time.sleep(wait)
                wait, limit = limits.send_wait(campaign, version.sender)
            if wait:
                settled.flush()
                retry_at = timezone.now() + timedelta(seconds=wait)
                _release(me, campaign_id, retry_at=retry_at, error=f"Speed limit: {limit}.")
                Campaign.objects.filter(pk=campaign_id).update(
                    waiting_reason=f"Waiting until {retry_at:%Y-%m-%d %H:%M:%S} UTC: {limit}."
                )
                return BatchOutcome(sent=sent, failed=failed, skipped=skipped, retry_at=retry_at)
            now = timezone.now()
            started = _start_mark(delivery.pk, me, campaign_id, message_id, now)
            if not started:
                if not _is_sending(campaign_id):  # paused or cancelled: hand back what was not started
                    settled.flush()
                    _release(me, campaign_id)
                    return BatchOutcome(sent=sent, failed=failed, skipped=skipped, stopped=True)
                continue  # our claim was recovered meanwhile: someone else owns the row now
            if now - renewed_at >= claim_lease() / LEASE_RENEWALS:
                # Renewed a few times per lease, not per message: a claim is never older than lease/4 + one call.
                Delivery.objects.filter(
                    campaign_id=campaign_id, claimed_by=me, status=DeliveryStatus.SENDING
                ).update(claimed_at=now)
                renewed_at = now
                settled.flush()  # so a sent row without its event is never older than the lease (`_sent_repair`)
            try:
                result = mailer.send(message)
            except ProvidersUnavailable as exc:
                settled.flush()
                # The chain already spent its retry budget: wait at least MIN_WAIT before the next round.
                retry_at = max(exc.retry_at or now + DEFAULT_WAIT, timezone.now() + MIN_WAIT)
                # The chain reports "nobody accepted the message": it waits and is sent again, not failed.
                Delivery.objects.filter(pk=delivery.pk, claimed_by=me, status=DeliveryStatus.SENDING).update(
                    send_started_at=None
                )
                _release(me, campaign_id, retry_at=retry_at, error=str(exc))
                Campaign.objects.filter(pk=campaign_id).update(
                    waiting_reason=f"Waiting until {retry_at:%Y-%m-%d %H:%M:%S} UTC: {exc}"[:2000]
                )
                return BatchOutcome(sent=sent, failed=failed, skipped=skipped, retry_at=retry_at)
            except ProviderError as exc:
                _mark_failed(delivery, me, campaign.job_id, str(exc), str(exc))
                failed += 1
                continue
            sent_at = timezone.now()
            answer = {
                "sent_at": sent_at,
                "provider": result.provider,
                "message_id": result.message_id or message_id,
            }
            # Marked uncertain meanwhile (our lease lapsed during a slow call)? The provider's answer settles it.
            was_uncertain = not _sent_mark(delivery.pk, me, DeliveryStatus.SENDING, **answer) and bool(
                _sent_mark(delivery.pk, me, DeliveryStatus.UNCERTAIN, **answer)
            )
            delivery.sent_at = sent_at
            settled.events.append(_sent_event(delivery, result.provider, sent_at))
            settled.done += 1
            settled.settled_uncertain += int(was_uncertain)
            sent += 1
    settled.flush()
    if sent and campaign.waiting_reason:
        Campaign.objects.filter(pk=campaign_id).update(waiting_reason="")
    return BatchOutcome(sent=sent, failed=failed, skipped=skipped, more=True)


def delivery_counts(campaign_id: int) -> dict[str, int]:
    rows = Delivery.objects.filter(campaign_id=campaign_id).values("status").annotate(n=Count("pk"))
    counts = {s: 0 for s in DeliveryStatus.values}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


def campaign_finish_if_complete(*, campaign_id: int) -> datetime | None:
    """sending → sent once every delivery is terminal (failed when none was sent and some failed). Otherwise the earliest ``retry_at`` still waiting
    (None when others are in flight)."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None or campaign.status != CampaignStatus.SENDING:
            return None
        open_rows = Delivery.objects.filter(
            campaign_id=campaign_id,
            status__in=(DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.HELD),
        )
        if open_rows.exists():
            waiting = open_rows.filter(status=DeliveryStatus.QUEUED, retry_at__isnull=False)
            return waiting.order_by("retry_at").values_list("retry_at", flat=True).first()
        now = timezone.now()
        _sent_repair(campaign_id, campaign.job_id, now)
        # Sent rows whose worker has not counted them yet (it flushes within a quarter lease), or whose
        # worker died and whose claim is not yet old enough to repair: finish once they are settled.
        unsettled = (
            Delivery.objects.filter(
                campaign_id=campaign_id, status=DeliveryStatus.SENT, claimed_at__isnull=False
            )
            .exclude(
                Exists(EngagementEvent.objects.filter(delivery=OuterRef("pk"), kind=EngagementKind.SENT))
            )
            .order_by("claimed_at")
            .values_list("claimed_at", flat=True)
            .first()
        )
        if unsettled is not None:
            return max(unsettled + claim_lease(), now + MIN_WAIT)
        counts = delivery_counts(campaign_id)
        # Nothing delivered and something failed (e.g. every address refused as bad input): failed, not sent.
        failed = counts[DeliveryStatus.SENT] == 0 and counts[DeliveryStatus.FAILED] > 0
        campaign.status = CampaignStatus.FAILED if failed else CampaignStatus.SENT
        campaign.finished_at = timezone.now()
        campaign.waiting_reason = ""
        campaign.save(update_fields=["status", "finished_at", "waiting_reason", "updated_at"])
        webhooks.campaign_event_emit(
            campaign=campaign,
            event_type=WebhookEventType.CAMPAIGN_FAILED if failed else WebhookEventType.CAMPAIGN_SENT,
            counts=counts,
        )
        if campaign.job_id:
            job_finish(
                job_id=campaign.job_id,
                status=JobStatus.FAILED if failed else JobStatus.SUCCEEDED,
                result={"deliveries": counts},
            )
    return None
