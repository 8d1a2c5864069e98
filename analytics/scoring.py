"""Engagement score 0–100 and tier per contact, kept up to date incrementally and written onto contacts
through crm's `contacts_set_scores`.

Formula (per contact, at instant ``now``)::

    raw   = Σ weight[kind] × 0.5 ^ (age_days / half_life_days)     over the contact's *human* events
    score = round(100 × (1 − e^(−raw / scale)))                     (0–100)

- *Human* events: ``machine`` is false (privacy-proxy and scanner opens are flagged by publishing's
  tracking and never count). ``age_days = (now − occurred_at) / 86 400 s``; an event stamped in the future
  counts as age 0.
- Normalization: ``1 − e^(−raw/scale)`` is the saturating exponential. It is monotonic, 0 at no activity,
  never reaches 100 (so a very active contact does not hide how much more active another one is only up
  to a cap), needs no workspace-wide maximum (a capped linear scale divided by the busiest contact would
  move every contact's score whenever one contact engages), and ``scale`` has a plain meaning: a raw sum
  equal to ``scale`` scores 63, twice it 86, three times 95.
- Defaults (`DEFAULTS`): open 1, click 3, reply 5, conversion 8 points, other kinds 0; half-life 30 days;
  scale 10; so one click today scores 26, a click a day for a week about 88.
- Tier: ``inactive`` when the contact has no human event of a weighted kind in the last ``inactive_days``
  (default 90) or the score is below ``low_threshold`` (default 10); else ``high`` from ``high_threshold``
  (70), ``medium`` from ``medium_threshold`` (40), otherwise ``low``.

Incremental upkeep (`scores_refresh`): every contact with an event above the workspace's watermark is
recomputed from all its events; on the daily decay pass every other scored contact is aged without reading
events, ``raw × 0.5^((now − raw_at)/half_life)``, which equals a full recompute because the decay factor of a
sum is the product of the factors. Erased contacts are never scored and lose their score rows; deleted
contacts lose them by cascade. Each written change leaves a `ScoreHistory` row for its local day.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from aicmo.audit import audit_record
from aicmo.jobs import job_advance, job_enqueue, job_finish, job_mark_running, job_start
from aicmo.models import Job, Workspace
from crm.models import Contact, Tier
from crm.services import contacts_set_scores
from publishing.models import EngagementEvent, EngagementKind

from .models import ContactScore, ScoreHistory, ScoreSettings, ScoreWatermark
from .rollups import local_today

CHUNK = 500
SECONDS_PER_DAY = 86_400.0
MAX_WEIGHT = 100.0
DEFAULT_WEIGHTS = {"open": 1.0, "click": 3.0, "reply": 5.0, "conversion": 8.0}
DEFAULTS = {
    "weights": DEFAULT_WEIGHTS,
    "half_life_days": 30.0,
    "scale": 10.0,
    "high_threshold": 70,
    "medium_threshold": 40,
    "low_threshold": 10,
    "inactive_days": 90,
}
# Changing any of these makes every stored raw sum or tier stale: a full recompute follows.
RULE_FIELDS = tuple(DEFAULTS)
JOB_KIND = "scores"


def score_settings_for(workspace: Workspace | int) -> ScoreSettings:
    """The workspace's rule; an unsaved row with the defaults when it never changed them."""
    workspace_id = getattr(workspace, "pk", workspace)
    found = ScoreSettings.objects.filter(workspace_id=workspace_id).first()
    if found is not None:
        return found
    return ScoreSettings(workspace_id=workspace_id, **{**DEFAULTS, "weights": dict(DEFAULT_WEIGHTS)})


def clean_weights(value) -> dict[str, float]:
    """``{kind: points}`` with known kinds and points in [0, 100]; ValidationError naming the bad entry."""
    if not isinstance(value, dict):
        raise ValidationError({"weights": "An object of event kind → points."})
    clean: dict[str, float] = {}
    for kind, points in value.items():
        if kind not in EngagementKind.values:
            raise ValidationError({"weights": f"Unknown event kind {str(kind)[:40]!r}."})
        if isinstance(points, bool) or not isinstance(points, int | float) or not math.isfinite(points):
            raise ValidationError({"weights": f"Points of {kind!r} must be a number."})
        if not 0 <= points <= MAX_WEIGHT:
            raise ValidationError({"weights": f"Points of {kind!r} must be between 0 and {MAX_WEIGHT:g}."})
        if points:
            clean[kind] = float(points)
    return clean


def check_thresholds(high: int, medium: int, low: int) -> None:
    if not 0 < low < medium < high <= 100:
        raise ValidationError({"thresholds": "Need 0 < low < medium < high ≤ 100."})


@transaction.atomic
def score_settings_update(
    *, workspace: Workspace, changes: dict, by=None
) -> tuple[ScoreSettings, Job | None]:
    """Store a new rule (validated fields of `ScoreSettings`) and, when it changed, start a full recompute
    Job (enqueued after commit). Returns the settings and the Job (None when nothing changed)."""
    current = score_settings_for(workspace)
    before = {f: getattr(current, f) for f in RULE_FIELDS}
    row = ScoreSettings.objects.select_for_update().filter(workspace=workspace).first() or current
    for name, value in changes.items():
        if name not in RULE_FIELDS:
            raise ValidationError({name: "Not a score setting."})
        setattr(row, name, clean_weights(value) if name == "weights" else value)
    check_thresholds(row.high_threshold, row.medium_threshold, row.low_threshold)
    after = {f: getattr(row, f) for f in RULE_FIELDS}
    if after == before:
        return row, None
    row.workspace = workspace
    row.save()
    audit_record(
        workspace=workspace,
        actor=by,
        verb="analytics.scores.settings_changed",
        target=row,
        changes={f: [before[f], after[f]] for f in RULE_FIELDS if before[f] != after[f]},
    )
    return row, scores_recompute_start(workspace=workspace, by=by)


def scores_recompute_start(*, workspace: Workspace, by=None, decay: bool = False) -> Job:
    """A Job recomputing every contact's score (``decay``: the daily pass instead), run on the rollups
    queue after commit."""
    from .tasks import scores_job_task

    job = job_start(
        workspace=workspace,
        kind=JOB_KIND,
        by=by,
        label="Daily score decay" if decay else "Recompute engagement scores",
        params={"mode": "decay" if decay else "full"},
    )
    job_enqueue(scores_job_task, job.pk, job_id=job.pk)
    return job


def normalize(raw: float, scale: float) -> int:
    """100 × (1 − e^(−raw/scale)), rounded half away from zero, in [0, 100]."""
    if raw <= 0:
        return 0
    return min(100, int(math.floor(100.0 * (1.0 - math.exp(-raw / scale)) + 0.5)))


def tier_of(score: int, last_human_at: datetime | None, now: datetime, rule: ScoreSettings) -> str:
    if last_human_at is None or now - last_human_at > timedelta(days=rule.inactive_days):
        return Tier.INACTIVE
    if score >= rule.high_threshold:
        return Tier.HIGH
    if score >= rule.medium_threshold:
        return Tier.MEDIUM
    if score >= rule.low_threshold:
        return Tier.LOW
    return Tier.INACTIVE


def decay_factor(seconds: float, half_life_days: float) -> float:
    return 0.5 ** (max(0.0, seconds) / SECONDS_PER_DAY / half_life_days)


def raw_sums(
    events: Iterable[tuple[int, str, datetime]],
    weights: dict[str, float],
    now: datetime,
    half_life_days: float,
) -> dict[int, tuple[float, datetime]]:
    """``{contact_id: (raw, last human event)}`` from (contact_id, kind, occurred_at) rows."""
    out: dict[int, tuple[float, datetime]] = {}
    for contact_id, kind, at in events:
        raw, last = out.get(contact_id, (0.0, at))
        raw += weights[kind] * decay_factor((now - at).total_seconds(), half_life_days)
        out[contact_id] = (raw, max(last, at))
    return out


@dataclass(frozen=True)
class ScoreResult:
    contacts: int
    changed: int
    erased_removed: int


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def scores_refresh(
    *, workspace_id: int, now: datetime | None = None, full: bool = False, decay: bool = False, job_id=None
) -> ScoreResult:
    """One scoring step for a workspace, under its watermark's row lock (steps never interleave).

    - contacts with an event above the watermark (``full``: every contact with an event or a stored score)
      are recomputed from all their human events;
    - ``decay`` (the daily pass, implied by ``full``) also ages every other scored contact;
    - changed scores/tiers go to crm in bulk and leave a `ScoreHistory` row for today (workspace-local);
    - erased contacts lose their score rows and history.

    Queries: a fixed number per 500 contacts. Idempotent: a re-run at the same ``now`` changes nothing."""
    now = now or timezone.now()
    rule = score_settings_for(workspace_id)
    weights = {k: float(v) for k, v in (rule.weights or {}).items() if v}
    with transaction.atomic():
        mark, _ = ScoreWatermark.objects.get_or_create(workspace_id=workspace_id)
        mark = ScoreWatermark.objects.select_for_update().get(pk=mark.pk)
        high = EngagementEvent.objects.aggregate(m=Max("id"))["m"] or 0
        human = EngagementEvent.objects.filter(
            workspace_id=workspace_id,
            machine=False,
            kind__in=list(weights),
            contact_id__isnull=False,
            id__lte=high,
        )
        # every contact with an event gets a score and a tier (0 and inactive without weighted human events)
        fresh = set(
            EngagementEvent.objects.filter(
                workspace_id=workspace_id,
                id__gt=0 if full else mark.last_event_id,
                id__lte=high,
                contact_id__isnull=False,
            )
            .values_list("contact_id", flat=True)
            .distinct()
            .order_by()
        )
        stored = ContactScore.objects.filter(workspace_id=workspace_id)
        if full:  # a contact whose events no longer weigh anything goes back to 0
            fresh |= set(stored.values_list("contact_id", flat=True))
        aged = set(stored.values_list("contact_id", flat=True)) - fresh if decay else set()
        erased = Contact.objects.filter(workspace_id=workspace_id, erased_at__isnull=False)
        removed = stored.filter(contact__in=erased).delete()[0]
        ScoreHistory.objects.filter(workspace_id=workspace_id, contact__in=erased).delete()
        ids = sorted(fresh | aged)
        if job_id is not None:
            Job.objects.filter(pk=job_id).update(total=len(ids))
        changed = 0
        today = local_today(workspace_id, now)
        for chunk in _chunks(ids):
            changed += _score_chunk(workspace_id, chunk, fresh, human, weights, rule, now, today)
            if job_id is not None:
                job_advance(job_id=job_id, done=len(chunk))
        mark.last_event_id = max(mark.last_event_id, high)
        mark.scored_at = now
        if decay or full:
            mark.decayed_on = today
        mark.save(update_fields=["last_event_id", "scored_at", "decayed_on"])
    return ScoreResult(contacts=len(ids), changed=changed, erased_removed=removed)


def _score_chunk(workspace_id, chunk, fresh, human, weights, rule, now, today) -> int:
    live = set(
        Contact.objects.filter(workspace_id=workspace_id, pk__in=chunk, erased_at__isnull=True).values_list(
            "pk", flat=True
        )
    )
    existing = {
        s.contact_id: s for s in ContactScore.objects.filter(workspace_id=workspace_id, contact_id__in=chunk)
    }
    recompute = [c for c in chunk if c in fresh and c in live]
    sums = raw_sums(
        human.filter(contact_id__in=recompute).values_list("contact_id", "kind", "occurred_at").order_by(),
        weights,
        now,
        rule.half_life_days,
    )
    rows, scores, tiers, history = [], {}, {}, []
    for contact_id in chunk:
        if contact_id not in live:
            continue
        old = existing.get(contact_id)
        if contact_id in fresh:
            raw, last = sums.get(contact_id, (0.0, None))
        else:  # aged only: the stored sum, decayed from when it was computed
            raw = old.raw * decay_factor((now - old.raw_at).total_seconds(), rule.half_life_days)
            last = old.last_human_at
        score = normalize(raw, rule.scale)
        tier = tier_of(score, last, now, rule)
        rows.append(
            ContactScore(
                workspace_id=workspace_id,
                contact_id=contact_id,
                raw=raw,
                raw_at=now,
                last_human_at=last,
                score=score,
                tier=tier,
            )
        )
        if old is None or (old.score, old.tier) != (score, tier):
            scores[contact_id], tiers[contact_id] = score, tier
            history.append(
                ScoreHistory(
                    workspace_id=workspace_id, contact_id=contact_id, day=today, score=score, tier=tier
                )
            )
    ContactScore.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["contact"],
        update_fields=["raw", "raw_at", "last_human_at", "score", "tier"],
    )
    if scores:
        contacts_set_scores(workspace=workspace_id, scores=scores, tiers=tiers)
        ScoreHistory.objects.bulk_create(
            history, update_conflicts=True, unique_fields=["contact", "day"], update_fields=["score", "tier"]
        )
    return len(scores)


def score_tick(*, now: datetime | None = None) -> int:
    """Beat entry point (every 5 minutes): score the contacts with new events in every workspace."""
    return sum(
        scores_refresh(workspace_id=ws, now=now).changed
        for ws in Workspace.objects.order_by("id").values_list("id", flat=True)
    )


def score_decay_daily() -> list[int]:
    """Beat entry point (daily): one decay Job per workspace. Returns the job ids."""
    return [scores_recompute_start(workspace=ws, decay=True).pk for ws in Workspace.objects.order_by("id")]


def scores_job_run(*, job_id: int) -> int:
    """Run a scores Job (full recompute or decay pass); quiet when it is gone or already finished."""
    job = Job.objects.filter(pk=job_id, kind=JOB_KIND).first()
    if job is None or not job_mark_running(job_id=job_id):
        return 0
    mode = job.params.get("mode", "full")
    result = scores_refresh(
        workspace_id=job.workspace_id, full=mode == "full", decay=mode == "decay", job_id=job_id
    )
    job_finish(
        job_id=job_id,
        result={
            "contacts": result.contacts,
            "changed": result.changed,
            "erased_removed": result.erased_removed,
        },
    )
    return result.changed
