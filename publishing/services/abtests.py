"""A/B test decision statistics: which variant leads on a metric and whether the lead is significant.

Flow: ``abtest_create`` on a draft; at send start ``abtest_hold_remainder`` (called by
``campaign_send_now`` inside its snapshot transaction) gives the variants, round robin, to a seeded sample
and marks every other recipient ``held``; the campaign keeps ``sending`` while rows are held. After the
wait, ``abtests_tick`` evaluates; the winner goes to the held rows (``abtest_choose_winner``:
held → queued with the winner's variant, then the same claim path as any send) automatically, or when a
person chooses. The test is the two-proportion z-test with a pooled proportion
(statsmodels ``proportions_ztest``, two-sided), comparing the leader with the runner-up; "significant" at
p < ``ALPHA`` (0.05). Rates are hits / recipients of each variant (unique human opens, clicks or
conversions per delivered recipient, as the caller counts them).
"""

from __future__ import annotations

import math
import random
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from statsmodels.stats.proportion import proportions_ztest

from aicmo.jobs import job_set_total

from ..models import (
    ABMetric,
    ABPhase,
    ABTest,
    ABVariant,
    Campaign,
    CampaignStatus,
    Channel,
    Content,
    ContentVersion,
    Delivery,
    DeliveryStatus,
    EngagementEvent,
    EngagementKind,
)
from ..personalization import custom_field_keys, template_check

ALPHA = 0.05


@dataclass(frozen=True)
class VariantRate:
    label: str
    recipients: int
    hits: int

    @property
    def rate(self) -> float:
        return self.hits / self.recipients if self.recipients else 0.0


@dataclass(frozen=True)
class Comparison:
    """``leader`` is None while no variant has a higher rate than every other; ``p_value`` is None when it
    cannot be computed (a variant without recipients, or no variance: all hits or none)."""

    variants: tuple[VariantRate, ...]
    leader: str | None
    p_value: float | None
    significant: bool


def variants_compare(counts: dict[str, tuple[int, int]], *, alpha: float = ALPHA) -> Comparison:
    """``counts``: label → (recipients, hits), at least two variants, 0 ≤ hits ≤ recipients.

    Raises ``ValueError`` for fewer than two variants or impossible counts."""
    if len(counts) < 2:
        raise ValueError("An A/B comparison needs at least two variants.")
    variants = tuple(VariantRate(label, int(n), int(h)) for label, (n, h) in counts.items())
    if any(v.recipients < 0 or not 0 <= v.hits <= v.recipients for v in variants):
        raise ValueError("Hits must be between 0 and the number of recipients.")
    ranked = sorted(variants, key=lambda v: v.rate, reverse=True)
    best, second = ranked[0], ranked[1]
    leader = best.label if best.rate > second.rate else None
    p_value = None
    if best.recipients and second.recipients:
        total_hits = best.hits + second.hits
        if 0 < total_hits < best.recipients + second.recipients:
            _, p = proportions_ztest([best.hits, second.hits], [best.recipients, second.recipients])
            p_value = float(p) if math.isfinite(p) else None
    significant = leader is not None and p_value is not None and p_value < alpha
    return Comparison(variants=variants, leader=leader, p_value=p_value, significant=significant)


def sample_pick(ids: list[int], *, share_percent: int, seed: int) -> list[int]:
    """The test sample: ``share_percent`` (1–100) of ``ids``, rounded half up, chosen by a seeded random
    generator over the sorted ids, so the same seed and audience always give the same sample."""
    if not 1 <= share_percent <= 100:
        raise ValueError("The test share is a percentage from 1 to 100.")
    population = sorted(ids)
    k = min(len(population), math.floor(len(population) * share_percent / 100 + 0.5))
    return sorted(random.Random(seed).sample(population, k))  # noqa: S311 (sampling, not security)


METRIC_KINDS = {
    ABMetric.OPENS: EngagementKind.OPEN,
    ABMetric.CLICKS: EngagementKind.CLICK,
    ABMetric.CONVERSIONS: EngagementKind.CONVERSION,
}


def abtest_create(
    *,
    campaign: Campaign,
    variants: list[dict],
    test_share: int = 20,
    metric: str = ABMetric.OPENS,
    wait_minutes: int = 240,
    auto_winner: bool = True,
) -> ABTest:
    """A/B test of a draft campaign. ``variants``: 2–5 dicts with ``label`` and ``subject`` (a template,
    checked like the version's) and/or ``content`` (a Content of the workspace with an email version).
    ``ValidationError`` per field; nothing is written then."""
    errors: dict = {}
    if campaign.status != CampaignStatus.DRAFT:
        errors["campaign"] = "Only a draft campaign can get an A/B test."
    if ABTest.objects.filter(campaign=campaign).exists():
        errors["campaign"] = "This campaign already has an A/B test."
    if not 1 <= int(test_share) <= 90:
        errors["test_share"] = "The test share is a percentage from 1 to 90."
    if metric not in ABMetric.values:
        errors["metric"] = f"One of {', '.join(ABMetric.values)}."
    if not 2 <= len(variants) <= 5:
        errors["variants"] = "Two to five variants."
    labels = [str(v.get("label", "")).strip() for v in variants]
    if len(set(labels)) != len(labels) or not all(labels) or any(len(label) > 20 for label in labels):
        errors["variants"] = "Each variant needs a distinct label of up to 20 characters."
    keys = custom_field_keys(campaign.workspace_id)
    for i, v in enumerate(variants):
        content = v.get("content")
        if not v.get("subject") and content is None:
            errors[f"variants[{i}]"] = "A variant changes the subject, the content or both."
        problems = template_check(v.get("subject") or "", custom_keys=keys)
        if problems:
            errors[f"variants[{i}].subject"] = [str(p) for p in problems]
        if content is not None and (
            not isinstance(content, Content)
            or content.workspace_id != campaign.workspace_id
            or not ContentVersion.objects.filter(content=content, channel=Channel.EMAIL).exists()
        ):
            errors[f"variants[{i}].content"] = "A content of this workspace with an email version."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        abtest = ABTest.objects.create(
            workspace_id=campaign.workspace_id,
            campaign=campaign,
            test_share=int(test_share),
            metric=metric,
            wait_minutes=int(wait_minutes),
            auto_winner=bool(auto_winner),
            seed=secrets.randbits(62),
        )
        ABVariant.objects.bulk_create(
            [
                ABVariant(
                    workspace_id=campaign.workspace_id,
                    abtest=abtest,
                    label=label,
                    subject=v.get("subject") or "",
                    content=v.get("content"),
                )
                for label, v in zip(labels, variants, strict=True)
            ]
        )
    return abtest


def abtest_hold_remainder(*, campaign: Campaign) -> int:
    """Inside the snapshot transaction: variants round robin to the seeded sample of queued rows, the
    others ``held``. Returns the number held (0 without an A/B test)."""
    abtest = ABTest.objects.filter(campaign=campaign).first()
    if abtest is None:
        return 0
    queued = list(
        Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.QUEUED).values_list("pk", flat=True)
    )
    sample = sample_pick(queued, share_percent=abtest.test_share, seed=abtest.seed)
    variants = list(abtest.variants.order_by("label"))
    shuffled = sample[:]
    random.Random(abtest.seed + 1).shuffle(shuffled)  # noqa: S311 (assignment, not security)
    for i, variant in enumerate(variants):
        Delivery.objects.filter(pk__in=shuffled[i :: len(variants)]).update(variant=variant)
    return Delivery.objects.filter(
        campaign=campaign, status=DeliveryStatus.QUEUED, variant__isnull=True
    ).update(status=DeliveryStatus.HELD)


def variant_versions(campaign: Campaign, base: ContentVersion) -> dict[int, ContentVersion]:
    """variant id → the version its recipients get (another content's version and/or the subject)."""
    out: dict[int, ContentVersion] = {}
    for variant in ABVariant.objects.filter(abtest__campaign=campaign):
        version = base
        if variant.content_id:
            version = (
                ContentVersion.objects.select_related("sender", "layout")
                .filter(content_id=variant.content_id, channel=Channel.EMAIL)
                .first()
            ) or base
        if variant.subject:
            version = ContentVersion(
                **{f.attname: getattr(version, f.attname) for f in version._meta.concrete_fields}
            )
            version.subject = variant.subject
        out[variant.pk] = version
    return out


def abtest_counts(abtest: ABTest) -> dict[str, tuple[int, int]]:
    """label → (recipients sent, unique contacts with a human event of the metric), two queries."""
    variants = {v.pk: v.label for v in abtest.variants.all()}
    sent = dict(
        Delivery.objects.filter(variant__abtest=abtest, status=DeliveryStatus.SENT)
        .values("variant")
        .annotate(n=Count("pk"))
        .values_list("variant", "n")
    )
    hits = dict(
        EngagementEvent.objects.filter(
            delivery__variant__abtest=abtest, kind=METRIC_KINDS[abtest.metric], machine=False
        )
        .values("delivery__variant")
        .annotate(n=Count("contact", distinct=True))
        .values_list("delivery__variant", "n")
    )
    return {label: (sent.get(pk, 0), min(hits.get(pk, 0), sent.get(pk, 0))) for pk, label in variants.items()}


def abtest_evaluate(abtest: ABTest) -> Comparison:
    """Compare the variants now and store the numbers on the test (shown as significant / not yet)."""
    comparison = variants_compare(abtest_counts(abtest))
    abtest.result = {
        "variants": [
            {"label": v.label, "recipients": v.recipients, "hits": v.hits, "rate": round(v.rate, 6)}
            for v in comparison.variants
        ],
        "leader": comparison.leader,
        "p_value": comparison.p_value,
        "significant": comparison.significant,
        "evaluated_at": timezone.now().isoformat(),
    }
    abtest.save(update_fields=["result"])
    return comparison


@transaction.atomic
def abtest_choose_winner(*, abtest: ABTest, variant: ABVariant) -> int:
    """Send ``variant`` to the held recipients: held → queued with the variant (the normal claim path does
    the rest). Returns how many were released. ``ValidationError`` once decided or for a foreign variant."""
    abtest = ABTest.objects.select_for_update().select_related("campaign").get(pk=abtest.pk)
    if abtest.phase == ABPhase.DECIDED:
        raise ValidationError({"winner": "The winner of this test was already sent."})
    if variant.abtest_id != abtest.pk:
        raise ValidationError({"winner": "Not a variant of this test."})
    campaign = abtest.campaign
    released = Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.HELD).update(
        status=DeliveryStatus.QUEUED, variant=variant
    )
    abtest.phase, abtest.winner, abtest.decided_at = ABPhase.DECIDED, variant, timezone.now()
    abtest.save(update_fields=["phase", "winner", "decided_at"])
    if campaign.job_id and released:
        job_set_total(job_id=campaign.job_id, total=campaign.job.total + released)
    from .campaigns import _enqueue_senders

    if campaign.status == CampaignStatus.SENDING:
        _enqueue_senders(campaign.pk)
    return released


def abtests_tick(*, now=None) -> int:
    """Beat: tests of sending campaigns whose wait is over and whose sample is all sent get evaluated;
    the leader (the first label on a tie) is sent on automatically, otherwise a person is waited for."""
    now = now or timezone.now()
    decided = 0
    for abtest in ABTest.objects.filter(
        phase=ABPhase.TESTING, campaign__status=CampaignStatus.SENDING, campaign__started_at__isnull=False
    ).select_related("campaign"):
        if abtest.campaign.started_at + timedelta(minutes=abtest.wait_minutes) > now:
            continue
        if Delivery.objects.filter(
            campaign=abtest.campaign, status__in=(DeliveryStatus.QUEUED, DeliveryStatus.SENDING)
        ).exists():
            continue
        comparison = abtest_evaluate(abtest)
        if abtest.auto_winner:
            label = comparison.leader or min(v.label for v in comparison.variants)
            abtest_choose_winner(abtest=abtest, variant=abtest.variants.get(label=label))
            decided += 1
        else:
            ABTest.objects.filter(pk=abtest.pk, phase=ABPhase.TESTING).update(phase=ABPhase.AWAITING_CHOICE)
    return decided
