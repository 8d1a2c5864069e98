"""Campaign writes: the state machine and the operator actions (schedule, send now, pause, resume, cancel,
resend uncertain) that admin, API, dashboard and beat all call.

States: draft → scheduled → sending ↔ paused → sent, plus missed (a schedule the platform slept through
by more than ``PUBLISHING_MISSED_GRACE_SECONDS``: waits for a person to send or cancel it), cancelled and
failed. Any other move raises `CampaignStateError` (a ValidationError: a 400 / form error / admin message).
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from aicmo.audit import audit_record
from aicmo.conflicts import Conflict
from aicmo.jobs import job_advance, job_enqueue, job_finish, job_mark_running, job_start
from aicmo.models import Job, JobStatus, Workspace
from aicmo.timezones import zone_clean

from ..models import (
    Campaign,
    CampaignStatus,
    Channel,
    Content,
    ContentVersion,
    Delivery,
    DeliveryStatus,
    WebhookEventType,
)
from ..personalization import custom_field_keys, sample_context
from ..selectors import campaigns_to_wake
from . import abtests, tracking, webhooks
from .approval import approval_withdraw, require_approved
from .audience import audience_clean, audience_snapshot
from .content import email_render, email_version_check, links_in, url_is_web

S = CampaignStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.SCHEDULED, S.SENDING, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.DRAFT, S.SENDING, S.MISSED, S.CANCELLED}),
    S.MISSED: frozenset({S.SENDING, S.CANCELLED}),
    S.SENDING: frozenset({S.PAUSED, S.SENT, S.CANCELLED, S.FAILED}),
    S.PAUSED: frozenset({S.SENDING, S.CANCELLED}),
    S.SENT: frozenset({S.SENDING}),  # only to resend uncertain deliveries
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}
ACTION_WORDS = {
    S.SCHEDULED: "schedule",
    S.DRAFT: "unschedule",
    S.SENDING: "send",
    S.PAUSED: "pause",
    S.CANCELLED: "cancel",
    S.MISSED: "mark missed",
    S.SENT: "finish",
    S.FAILED: "fail",
}


class CampaignStateError(Conflict):
    """An action the campaign's current state does not allow."""


def _require(campaign: Campaign, to: str) -> None:
    if to not in TRANSITIONS[campaign.status]:
        raise CampaignStateError(
            f"Cannot {ACTION_WORDS[to]} a campaign that is {campaign.get_status_display().lower()}."
        )


def _audit(campaign: Campaign, by, verb: str, changes: dict | None = None) -> None:
    audit_record(
        workspace=campaign.workspace,
        actor=by,
        verb=f"publishing.campaign.{verb}",
        target=campaign,
        changes=changes,
    )


def _locked(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def _enqueue_senders(campaign_id: int) -> None:
    """Queue the sender tasks on commit. With the broker unreachable the send is only logged (no job is
    failed): the campaign stays `sending` and beat's tick wakes it once the queue is back (a sending campaign
    nobody holds a claim on, `campaigns_to_wake`), so the request that started it answers as usual."""
    from ..tasks import campaign_send_task

    for _ in range(max(1, settings.PUBLISHING_SEND_CONCURRENCY)):
        job_enqueue(campaign_send_task, campaign_id)


def _time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The campaign's zone, checked by the one zone-name rule (``aicmo.timezones.zone_clean``)."""
    return zoneinfo.ZoneInfo(zone_clean(name))


# ------------------------------------------------------------------------------------------ create/edit


@transaction.atomic
def campaign_create(
    *,
    workspace: Workspace,
    name: str,
    content: Content,
    audience: dict | None = None,
    time_zone: str = "",
    utm: dict | None = None,
    max_per_second: int | None = None,
    max_per_hour: int | None = None,
    by=None,
) -> Campaign:
    """A draft email campaign. ``utm``: defaults for tracked links (`tracking.utm_clean`); ``max_per_*``:
    messages per second / hour for this campaign (`limit_clean`; None: no cap of its own). ValidationError
    keyed by field."""
    if content.workspace_id != workspace.pk:
        raise ValidationError({"content": "Unknown content."})
    if not (name or "").strip():
        raise ValidationError({"name": "This field may not be blank."})
    tz = time_zone or workspace.time_zone
    _time_zone(tz)
    campaign = Campaign.objects.create(
        workspace=workspace,
        name=name.strip()[:200],
        content=content,
        channel=Channel.EMAIL,
        audience=audience_clean(workspace, audience),
        time_zone=tz,
        utm=tracking.utm_clean(utm),
        max_per_second=limit_clean("max_per_second", max_per_second),
        max_per_hour=limit_clean("max_per_hour", max_per_hour),
        created_by=by if getattr(by, "is_authenticated", False) else None,
    )
    _audit(campaign, by, "created")
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, by=None, **fields) -> Campaign:
    """Edit name, content, audience, time zone, ``utm`` or ``max_per_second``/``max_per_hour`` of a draft
    (any edit withdraws its approval). CampaignStateError (a 409 in the API) unless it is a draft."""
    campaign = _locked(campaign)
    if campaign.status != S.DRAFT:
        raise CampaignStateError("Only a draft can be edited; unschedule it first.")
    if "audience" in fields:
        campaign.audience = audience_clean(campaign.workspace_id, fields.pop("audience"))
    if "time_zone" in fields:
        _time_zone(fields["time_zone"])
    content = fields.get("content")
    if content is not None and content.workspace_id != campaign.workspace_id:
        raise ValidationError({"content": "Unknown content."})
    if "utm" in fields:
        fields["utm"] = tracking.utm_clean(fields["utm"])
    for name in ("max_per_second", "max_per_hour"):
        if name in fields:
            fields[name] = limit_clean(name, fields[name])
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.save()
    approval_withdraw(campaigns=Campaign.objects.filter(pk=campaign.pk), by=by, reason="campaign edited")
    campaign.refresh_from_db()
    return campaign


def limit_clean(name: str, value) -> int | None:
    """A speed limit: a positive whole number of messages, or None/"" for no limit."""
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or str(number) != str(value).strip():
        raise ValidationError({name: "Enter a whole number of messages of at least 1, or leave it empty."})
    return number


# ------------------------------------------------------------------------------------------ checks


def _version(campaign: Campaign) -> ContentVersion | None:
    return (
        ContentVersion.objects.select_related("sender", "layout")
        .filter(content_id=campaign.content_id, channel=Channel.EMAIL)
        .first()
    )


def campaign_check(campaign: Campaign) -> dict:
    """Pre-send checks of the email version plus an audience that is not empty (see email_version_check)."""
    report = email_version_check(_version(campaign))
    if not any((campaign.audience or {}).get(k) for k in ("segments", "lists")):
        report.errors.append("Choose at least one segment or list.")
    return report.as_dict()


def _require_sendable(campaign: Campaign) -> None:
    check = campaign_check(campaign)
    if not check["ok"]:
        raise ValidationError({"campaign": check["errors"]})


# ------------------------------------------------------------------------------------------ schedule


def schedule_to_utc(when: datetime, time_zone: str) -> datetime:
    """A wall-clock time in ``time_zone`` (naive) or an aware datetime → aware UTC. Nonexistent local
    times (a DST gap) are refused rather than silently shifted."""
    if timezone.is_aware(when):
        return when.astimezone(zoneinfo.ZoneInfo("UTC"))
    tz = _time_zone(time_zone)
    local = when.replace(tzinfo=tz)
    roundtrip = local.astimezone(zoneinfo.ZoneInfo("UTC")).astimezone(tz)
    if roundtrip.replace(tzinfo=None) != when:
        raise ValidationError({"scheduled_at": f"{when:%Y-%m-%d %H:%M} does not exist in {time_zone} (DST)."})
    return local.astimezone(zoneinfo.ZoneInfo("UTC"))


@transaction.atomic
def campaign_schedule(
    *, campaign: Campaign, when: datetime, by=None, now: datetime | None = None
) -> Campaign:
    """draft → scheduled at ``when`` (naive: wall-clock in the campaign's time zone). Stored in UTC; beat
    starts it (`campaigns_tick`), never a broker ETA."""
    campaign = _locked(campaign)
    _require(campaign, S.SCHEDULED)
    at = schedule_to_utc(when, campaign.time_zone)
    if at <= (now or timezone.now()):
        raise ValidationError({"scheduled_at": "The time must be in the future."})
    _require_sendable(campaign)
    require_approved(campaign)
    campaign.status, campaign.scheduled_at = S.SCHEDULED, at
    campaign.save(update_fields=["status", "scheduled_at", "updated_at"])
    webhooks.campaign_event_emit(campaign=campaign, event_type=WebhookEventType.CAMPAIGN_SCHEDULED)
    _audit(
        campaign,
        by,
        "scheduled",
        {"scheduled_at": at.isoformat()},
    )
    return campaign


@transaction.atomic
def campaign_unschedule(*, campaign: Campaign, by=None) -> Campaign:
    campaign = _locked(campaign)
    _require(campaign, S.DRAFT)
    campaign.status, campaign.scheduled_at = S.DRAFT, None
    campaign.save(update_fields=["status", "scheduled_at", "updated_at"])
    return campaign


# ------------------------------------------------------------------------------------------ sending


def _tracked_urls(campaign: Campaign, version: ContentVersion) -> list[str]:
    rendered = email_render(
        version,
        sample_context(custom_field_keys(campaign.workspace_id)),
        unsubscribe_url="https://u.invalid/",
    )
    return [h for _line, h in links_in(rendered.html) if url_is_web(h) and h != "https://u.invalid/"]


@transaction.atomic
def campaign_send_now(*, campaign: Campaign, by=None) -> Campaign:
    """draft/scheduled/missed → sending: freeze the recipient snapshot, start the job, enqueue senders."""
    campaign = _locked(campaign)
    _require(campaign, S.SENDING)
    if campaign.status in (S.SENT,):
        raise CampaignStateError(
            "A sent campaign is not sent again; resend its uncertain deliveries instead."
        )
    _require_sendable(campaign)
    require_approved(campaign)
    version = _version(campaign)
    report = audience_snapshot(campaign)
    abtests.abtest_hold_remainder(campaign=campaign)
    tracking.links_ensure(campaign, _tracked_urls(campaign, version))
    queued = Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.QUEUED).count()
    job = job_start(
        workspace=campaign.workspace,
        kind="campaign_send",
        total=queued,
        by=by,
        label=campaign.name,
        params={"campaign_id": campaign.pk},
    )
    job_mark_running(job_id=job.pk)
    campaign.status, campaign.job = S.SENDING, job
    campaign.started_at = timezone.now()
    campaign.snapshot = report.as_dict() | {"queued": queued}
    campaign.save(update_fields=["status", "job", "started_at", "snapshot", "updated_at"])
    _audit(campaign, by, "send_started", campaign.snapshot)
    if queued:
        _enqueue_senders(campaign.pk)
    else:
        transaction.on_commit(lambda: _finish(campaign.pk))
    return campaign


def _finish(campaign_id: int) -> None:
    from .sending import campaign_finish_if_complete

    campaign_finish_if_complete(campaign_id=campaign_id)


@transaction.atomic
def campaign_pause(*, campaign: Campaign, by=None) -> Campaign:
    """sending → paused. Workers notice before their next message and give back unstarted claims."""
    campaign = _locked(campaign)
    _require(campaign, S.PAUSED)
    campaign.status = S.PAUSED
    campaign.save(update_fields=["status", "updated_at"])
    _audit(campaign, by, "paused")
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign, by=None) -> Campaign:
    campaign = _locked(campaign)
    if campaign.status != S.PAUSED:
        raise CampaignStateError(f"Cannot resume a campaign that is {campaign.get_status_display().lower()}.")
    campaign.status = S.SENDING
    campaign.save(update_fields=["status", "updated_at"])
    _audit(campaign, by, "resumed")
    _enqueue_senders(campaign.pk)
    return campaign


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, by=None) -> Campaign:
    """Stop for good: queued deliveries become skipped ("cancelled"); rows in flight finish as they land."""
    campaign = _locked(campaign)
    _require(campaign, S.CANCELLED)
    campaign.status = S.CANCELLED
    campaign.finished_at = timezone.now()
    campaign.save(update_fields=["status", "finished_at", "updated_at"])
    Delivery.objects.filter(
        campaign=campaign, status__in=(DeliveryStatus.QUEUED, DeliveryStatus.HELD)
    ).update(status=DeliveryStatus.SKIPPED, skip_reason="cancelled")
    if campaign.job_id:
        job_finish(job_id=campaign.job_id, status=JobStatus.CANCELLED, message="Campaign cancelled")
    _audit(campaign, by, "cancelled")
    return campaign


@transaction.atomic
def campaign_resend_uncertain(*, campaign: Campaign, by=None) -> int:
    """Operator decision: queue the uncertain deliveries again (their recipients may get a second copy).
    A sent campaign goes back to sending until they are done. Returns how many were queued."""
    campaign = _locked(campaign)
    if campaign.status not in (S.SENDING, S.PAUSED, S.SENT):
        raise CampaignStateError(
            f"Cannot resend deliveries of a campaign that is {campaign.get_status_display().lower()}."
        )
    n = Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.UNCERTAIN).update(
        status=DeliveryStatus.QUEUED,
        claimed_by="",
        claimed_at=None,
        send_started_at=None,
        retry_at=None,
        error="",
    )
    if not n:
        return 0
    if campaign.job_id:
        Job.objects.filter(pk=campaign.job_id).update(status=JobStatus.RUNNING, finished_at=None)
        job_advance(job_id=campaign.job_id, failed=-n)
    if campaign.status == S.SENT:
        campaign.status, campaign.finished_at = S.SENDING, None
        campaign.save(update_fields=["status", "finished_at", "updated_at"])
    _audit(campaign, by, "resend_uncertain", {"queued": n})
    if campaign.status == S.SENDING:
        _enqueue_senders(campaign.pk)
    return n


# ------------------------------------------------------------------------------------------ beat


def missed_grace() -> timedelta:
    return timedelta(seconds=settings.PUBLISHING_MISSED_GRACE_SECONDS)


def campaigns_tick(*, now: datetime | None = None) -> dict:
    """Beat, every minute: start due schedules (or mark them missed past the grace), and wake sending
    campaigns nobody has worked on for a lease period whose waiting deliveries are due, whose workers died
    (their tasks were lost with them) or that only need finishing."""
    from .sending import claim_lease

    now = now or timezone.now()
    started = missed = woken = 0
    for campaign in Campaign.objects.filter(status=S.SCHEDULED, scheduled_at__lte=now).order_by(
        "scheduled_at"
    ):
        if now - campaign.scheduled_at > missed_grace():
            with transaction.atomic():
                locked = _locked(campaign)
                if locked.status == S.SCHEDULED:
                    locked.status = S.MISSED
                    locked.save(update_fields=["status", "updated_at"])
                    missed += 1
            continue
        try:
            campaign_send_now(campaign=campaign, by=None)
            started += 1
        except ValidationError as exc:
            with transaction.atomic():
                locked = _locked(campaign)
                if locked.status == S.SCHEDULED:
                    locked.status, locked.waiting_reason = S.FAILED, "; ".join(exc.messages)[:2000]
                    locked.save(update_fields=["status", "waiting_reason", "updated_at"])
    from ..tasks import campaign_send_task

    for campaign_id in campaigns_to_wake(now=now, lease=claim_lease()):
        campaign_send_task.delay(campaign_id)
        woken += 1
    return {"started": started, "missed": missed, "woken": woken}
