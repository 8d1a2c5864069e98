"""Rollup services: fold engagement events into daily and per-campaign rollups.

A day is a *workspace-local* calendar day in the workspace's own zone (``Workspace.time_zone``, one place:
`workspace_zone`); when the zone changes, `rollup_rebuild_all` re-rolls every day into the new calendar. Each rebuild of a day range is one aggregate query
(`INSERT` of `SELECT … GROUP BY campaign, channel, variant, local day`) after deleting that range, inside one
transaction, so re-running is idempotent and a range rebuilt by `rollup_backfill` is exact.

Unique opens/clicks are COUNT(DISTINCT delivery) per row: in `DailyRollup` unique *that day*; in
`CampaignRollup` unique over the campaign's whole life (recomputed from events for each campaign touched), so
campaign totals never sum daily uniques.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    DateField,
    DecimalField,
    F,
    Func,
    Max,
    Min,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Left, TruncDate
from django.utils import timezone

from aicmo.models import Workspace
from aicmo.timezones import workspace_zone_name
from publishing.models import EngagementEvent, EngagementKind

from .models import COUNTER_FIELDS, UNIQUE_FIELDS, CampaignRollup, DailyRollup, RollupWatermark

DEFAULT_REROLL_DAYS = 3
KEY = ("campaign_id", "channel", "variant")
_ZERO_MONEY = Value(0, output_field=DecimalField(max_digits=16, decimal_places=2))


def workspace_zone(workspace_id: int) -> ZoneInfo:
    """The time zone whose calendar days the workspace's rollups count: the workspace's own (one query)."""
    return ZoneInfo(workspace_zone_name(workspace_id))


def local_day_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in aware datetimes: local midnight of ``first`` to local midnight after ``last``
    (a DST day is 23 or 25 hours long; zoneinfo resolves both midnights)."""
    start = datetime.combine(first, time.min, tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def offset_changes(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[datetime, timedelta]]:
    """[(from_instant, utc_offset)] covering [start, end): the zone's offset and every change of it in
    the range, found to the minute inside each local day whose midnights have different offsets."""

    def offset(at: datetime) -> timedelta:
        return at.astimezone(zone).utcoffset()

    changes = [(start, offset(start))]
    day = start
    while day < end:
        following = min(day + timedelta(days=1), end)
        if offset(following) != offset(day):
            low, high = day, following  # bisect to the first instant with the new offset
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == offset(day) else (low, middle)
            changes.append((high, offset(high)))
        day = following
    return changes


class LocalDay(Func):
    """The workspace-local calendar date of a timestamp column, for rows in [start, end).

    PostgreSQL: ``(col AT TIME ZONE zone)::date`` (Django's TruncDate). SQLite has no time zone database, and
    Django's TruncDate there calls a Python function per row; this builds the same day from built-ins:
    ``date(col, CASE WHEN col < change1 THEN '+3600 seconds' … END)`` with the offsets of the range
    (SQLite stores UTC text ``YYYY-MM-DD HH:MM:SS[.ffffff]``, compared as text)."""

    output_field = DateField()

    def __init__(self, expression, *, zone: ZoneInfo, start: datetime, end: datetime):
        super().__init__(expression)
        self.zone, self.start, self.end = zone, start, end

    def as_sql(self, compiler, connection, **extra):
        return TruncDate(self.source_expressions[0], tzinfo=self.zone).as_sql(compiler, connection)

    def as_sqlite(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        # whole seconds first: SQLite's date arithmetic rounds to milliseconds (23:59:59.9999 → next day)
        seconds = f"substr({column}, 1, 19)"
        changes = offset_changes(self.start, self.end, self.zone)
        modifier = "'%+d seconds'"
        if len(changes) == 1:
            return f"date({seconds}, {modifier % changes[0][1].total_seconds()})", params
        cases, case_params = [], []
        for (_, off), (until, _) in zip(changes, changes[1:], strict=False):
            cases.append(f"WHEN {column} < %s THEN {modifier % off.total_seconds()}")
            case_params += [*params, connection.ops.adapt_datetimefield_value(until)]
        last = modifier % changes[-1][1].total_seconds()
        return f"date({seconds}, CASE {' '.join(cases)} ELSE {last} END)", [*params, *case_params]


class JsonText(Func):
    """``json ->> 'key'``: a top-level key of a JSON column as text (PostgreSQL jsonb and SQLite ≥ 3.38 share
    the operator; Django's KeyTextTransform wraps SQLite's in a per-row JSON_TYPE CASE, 2× slower here)."""

    output_field = CharField()

    def __init__(self, expression, key: str):
        super().__init__(expression)
        self.key = key

    def as_sql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        return f"({column} ->> %s)", [*params, self.key]


def _variant():
    """``metadata.variant`` of the event (an A/B split's label), "" when absent; at most 40 characters."""
    return Left(Coalesce(JsonText("metadata", "variant"), Value(""), output_field=CharField()), 40)


def _insert_from(queryset, model, constants: dict, zeros: tuple[str, ...]) -> int:
    """``INSERT INTO model (constants…, the queryset's columns…, zeros…) SELECT … FROM (queryset)``: the
    grouped rows go from the events to the rollup table inside the database, never through Python."""
    names = [*queryset.query.values_select, *queryset.query.annotation_select]
    inner, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    quote = connection.ops.quote_name
    columns = [*constants, *names, *zeros]
    select = [*["%s"] * len(constants), *[f"sub.{quote(n)}" for n in names], *["0"] * len(zeros)]
    targets = ", ".join(quote(model._meta.get_field(c).column) for c in columns)
    # identifiers from model metadata, values as parameters, the inner query compiled by Django
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({targets}) SELECT {', '.join(select)} FROM ({inner}) sub"  # noqa: S608
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*constants.values(), *params])
        return cursor.rowcount


def _count(kind: str, **extra) -> Count:
    """``COUNT(kind) FILTER (WHERE …)``: ``kind`` is read by the filters anyway, so the grouping's sort
    carries no extra column (``COUNT(id)`` made it carry the id)."""
    return _count_where(Q(kind=kind, **extra))


def _count_where(condition: Q) -> Count:
    return Count("kind", filter=condition)


def _unique(kind: str, **extra) -> Count:
    """``COUNT(DISTINCT CASE WHEN <kind…> THEN delivery_id END)``: deliveries with such an event; events
    without a delivery add nothing.

    Not ``COUNT(DISTINCT delivery_id) FILTER (…)``, though the number is the same: PostgreSQL ≥ 16 sorts
    the group's rows by the first distinct aggregate's argument along with the group key, and this argument
    is NULL for every other kind of event, so the sort key has about as many distinct values as there are
    groups plus deliveries with such events, instead of one per (group, delivery). At 1 M events that sort is
    about half as long (docs/BENCHMARKS.md, "Analytics")."""
    return Count(Case(When(Q(kind=kind, **extra), then=F("delivery_id"))), distinct=True)


def _counter_aggregates(*, with_uniques: bool = True) -> dict:
    """Column → aggregate over EngagementEvent. Definitions: bounces = hard + soft; engagements = human
    opens + clicks + replies; revenue = sum of conversion values; spend/impressions come from ad insights,
    which no channel records yet (0)."""
    aggregates = {
        "sent": _count(EngagementKind.SENT),
        "delivered": _count(EngagementKind.DELIVERED),
        "opens": _count(EngagementKind.OPEN),
        "clicks": _count(EngagementKind.CLICK),
        "replies": _count(EngagementKind.REPLY),
        "bounces": _count_where(Q(kind__in=[EngagementKind.BOUNCE_HARD, EngagementKind.BOUNCE_SOFT])),
        "unsubscribes": _count(EngagementKind.UNSUBSCRIBE),
        "complaints": _count(EngagementKind.COMPLAINT),
        "conversions": _count(EngagementKind.CONVERSION),
        "revenue": Coalesce(Sum("value", filter=Q(kind=EngagementKind.CONVERSION)), _ZERO_MONEY),
        "engagements": _count_where(
            Q(kind=EngagementKind.OPEN, machine=False)
            | Q(kind__in=[EngagementKind.CLICK, EngagementKind.REPLY])
        ),
    }
    if with_uniques:
        aggregates.update(_unique_aggregates())
    return aggregates


def _unique_aggregates() -> dict:
    return {
        "unique_opens_human": _unique(EngagementKind.OPEN, machine=False),
        "unique_opens_machine": _unique(EngagementKind.OPEN, machine=True),
        "unique_clicks": _unique(EngagementKind.CLICK),
    }


def _day_runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days → contiguous [first, last] runs, so a rebuild is one query per run."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


@dataclass(frozen=True)
class RollupResult:
    days: int
    rows: int
    campaigns: int


def events_rolled_up() -> dict[int, int]:
    """``{workspace id: highest engagement event id rolled up}`` (``PUBLISHING_EVENTS_ROLLED_UP``): raw
    events at or below it are counted in the daily rows, so publishing's retention may prune them."""
    return dict(RollupWatermark.objects.values_list("workspace_id", "last_event_id"))


def events_pruned(workspace_id: int, before: datetime) -> None:
    """``PUBLISHING_EVENTS_PRUNED`` hook: publishing's retention is about to delete raw events of this
    workspace older than ``before``; from then on days before it are not rebuilt (`first_rebuildable_day`).
    Called before the deletion, so a crash in between only protects days that still have their events."""
    mark, _ = RollupWatermark.objects.get_or_create(workspace_id=workspace_id)
    if mark.pruned_before is None or mark.pruned_before < before:
        RollupWatermark.objects.filter(pk=mark.pk).update(pruned_before=before)


def first_rebuildable_day(workspace_id: int) -> date | None:
    """The oldest local day whose raw events were never pruned (``None``: nothing pruned). Older days are
    never rebuilt: their raw events may be gone and their daily rows are the only record. A late event
    for such a day (older than the retention age when it arrives, which tracking never produces) is not
    counted."""
    pruned_before = (
        RollupWatermark.objects.filter(workspace_id=workspace_id)
        .values_list("pruned_before", flat=True)
        .first()
    )
    if pruned_before is None:
        return None
    return timezone.localtime(pruned_before, workspace_zone(workspace_id)).date() + timedelta(days=1)


def rollup_days(*, workspace_id: int, days: Iterable[date]) -> RollupResult:
    """Rebuild the daily rows of these local days and the totals of every campaign they touch. Days
    before `first_rebuildable_day` are left as they are (their raw events may have been pruned)."""
    zone = workspace_zone(workspace_id)
    oldest = first_rebuildable_day(workspace_id)
    runs = _day_runs(d for d in days if oldest is None or d >= oldest)
    rows = 0
    touched: set[int] = set()
    with transaction.atomic():
        for first, last in runs:
            start, end = local_day_bounds(first, last, zone)
            old = DailyRollup.objects.filter(workspace_id=workspace_id, day__gte=first, day__lte=last)
            touched.update(old.values_list("campaign_id", flat=True).distinct())
            old.delete()
            grouped = (
                EngagementEvent.objects.filter(
                    workspace_id=workspace_id,
                    occurred_at__gte=start,
                    occurred_at__lt=end,
                    campaign_id__isnull=False,
                )
                .annotate(variant=_variant(), day=LocalDay("occurred_at", zone=zone, start=start, end=end))
                .values(*KEY, "day")
                .annotate(**_counter_aggregates())
                .order_by()
            )
            rows += _insert_from(grouped, DailyRollup, {"workspace": workspace_id}, ("spend", "impressions"))
            touched.update(
                DailyRollup.objects.filter(workspace_id=workspace_id, day__gte=first, day__lte=last)
                .values_list("campaign_id", flat=True)
                .distinct()
            )
        campaign_totals_refresh(workspace_id=workspace_id, campaign_ids=touched)
    return RollupResult(days=sum((b - a).days + 1 for a, b in runs), rows=rows, campaigns=len(touched))


def campaign_totals_refresh(*, workspace_id: int, campaign_ids: Iterable[int]) -> int:
    """Recompute CampaignRollup for these campaigns: counters summed from their daily rows, unique counts
    as COUNT(DISTINCT delivery) over their events (a recipient opening on two days counts once)."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return 0
    sums = {
        f: Coalesce(Sum(f), _ZERO_MONEY if f in ("revenue", "spend") else Value(0)) for f in COUNTER_FIELDS
    }
    for f in UNIQUE_FIELDS:
        sums.pop(f)
    totals = {
        tuple(row[k] for k in KEY): row
        for row in DailyRollup.objects.filter(workspace_id=workspace_id, campaign_id__in=ids)
        .values(*KEY)
        .annotate(first_day=Min("day"), last_day=Max("day"), **sums)
        .order_by()
    }
    for row in _campaign_uniques(workspace_id, ids):
        key = tuple(row[k] for k in KEY)
        if key in totals:
            totals[key].update({f: row[f] for f in UNIQUE_FIELDS})
    CampaignRollup.objects.filter(workspace_id=workspace_id, campaign_id__in=ids).delete()
    CampaignRollup.objects.bulk_create(
        [CampaignRollup(workspace_id=workspace_id, **row) for row in totals.values()], batch_size=2000
    )
    return len(totals)


def _campaign_uniques(workspace_id: int, campaign_ids: list[int]) -> list[dict]:
    """``[{campaign_id, channel, variant, unique_opens_human, unique_opens_machine, unique_clicks}]`` over the
    campaigns' whole life, in one query: the distinct (key, delivery, kind, machine-for-opens) tuples first,
    then plain counts per key. Same numbers as ``COUNT(DISTINCT delivery) FILTER (…)`` per key, which
    PostgreSQL computes with a sort per aggregate and group; one DISTINCT is one sort (or hash) of the
    campaign's opens and clicks (bench/analytics_bench.py, docs/BENCHMARKS.md)."""
    pairs = (
        EngagementEvent.objects.filter(
            workspace_id=workspace_id,
            campaign_id__in=campaign_ids,
            kind__in=[EngagementKind.OPEN, EngagementKind.CLICK],
            delivery_id__isnull=False,  # COUNT(DISTINCT delivery) skips events without one
        )
        .annotate(
            variant=_variant(),
            # a click is counted once per delivery whatever its machine flag; opens split by it
            robot=Case(When(kind=EngagementKind.OPEN, then=F("machine")), default=Value(False)),
        )
        .values(*KEY, "delivery_id", "kind", "robot")
        .distinct()
        .order_by()
    )
    inner, params = pairs.query.get_compiler(using=pairs.db).as_sql()
    quote = connection.ops.quote_name
    keys = ", ".join(f"sub.{quote(k)}" for k in KEY)
    # identifiers from KEY, values as parameters, the inner query compiled by Django
    sql = (
        f"SELECT {keys}, COUNT(*) FILTER (WHERE sub.kind = %s AND NOT sub.robot),"  # noqa: S608
        " COUNT(*) FILTER (WHERE sub.kind = %s AND sub.robot), COUNT(*) FILTER (WHERE sub.kind = %s)"
        f" FROM ({inner}) sub GROUP BY {keys}"
    )
    names = [*KEY, "unique_opens_human", "unique_opens_machine", "unique_clicks"]
    with connection.cursor() as cursor:
        cursor.execute(sql, [EngagementKind.OPEN, EngagementKind.OPEN, EngagementKind.CLICK, *params])
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def local_today(workspace_id: int, now: datetime | None = None) -> date:
    return timezone.localtime(now or timezone.now(), workspace_zone(workspace_id)).date()


def rollup_workspace(*, workspace_id: int, reroll_days: int | None = None, now=None) -> RollupResult:
    """Incremental step for one workspace: every local day holding an event newer than the watermark (a late
    event of any age included) plus the last ``reroll_days`` days (events committed out of id order, edits
    and deletions), then the watermark moves to the newest event seen. Conversion events become orders.

    Idempotent: a re-run rebuilds the same days from the same events."""
    from .orders import orders_from_conversions

    reroll = (
        getattr(settings, "ANALYTICS_REROLL_DAYS", DEFAULT_REROLL_DAYS)
        if reroll_days is None
        else reroll_days
    )
    zone = workspace_zone(workspace_id)
    with transaction.atomic():
        mark, _ = RollupWatermark.objects.get_or_create(workspace_id=workspace_id)
        mark = RollupWatermark.objects.select_for_update().get(pk=mark.pk)
        events = EngagementEvent.objects.filter(workspace_id=workspace_id)
        # the table's highest id (a primary-key lookup), not the workspace's (a scan of its events)
        high = EngagementEvent.objects.aggregate(m=Max("id"))["m"] or 0
        fresh = events.filter(id__gt=mark.last_event_id, id__lte=high)
        fresh = fresh.filter(campaign_id__isnull=False)
        span = fresh.aggregate(start=Min("occurred_at"), end=Max("occurred_at"))
        days = set()
        if span["start"] is not None:
            end = span["end"] + timedelta(seconds=1)
            days.update(
                fresh.annotate(day=LocalDay("occurred_at", zone=zone, start=span["start"], end=end))
                .values_list("day", flat=True)
                .distinct()
                .order_by()
            )
        today = local_today(workspace_id, now)
        days.update(today - timedelta(days=i) for i in range(max(0, reroll)))
        orders_from_conversions(workspace_id=workspace_id, after_id=mark.last_event_id, upto_id=high)
        result = rollup_days(workspace_id=workspace_id, days=days)
        mark.last_event_id = high
        mark.rolled_at = timezone.now()
        mark.save(update_fields=["last_event_id", "rolled_at"])
    return result


def rollup_tick(*, now=None) -> int:
    """Beat entry point: one incremental step per workspace. Returns the number of rows written."""
    rows = 0
    for workspace_id in Workspace.objects.order_by("id").values_list("id", flat=True):
        rows += rollup_workspace(workspace_id=workspace_id, now=now).rows
    return rows


def rollup_rebuild_all(*, workspace_id: int) -> RollupResult:
    """Rebuild the workspace's daily rows for every local day holding an event, in its *current* zone, and
    drop rows outside that span (days of a former zone). Holds the watermark lock like the incremental step,
    so the two never interleave. Run after the workspace's zone changed (`workspace_zone_changed`).

    Days before `first_rebuildable_day` keep their rows and the calendar they were counted in: their raw
    events may have been pruned."""
    zone = workspace_zone(workspace_id)
    oldest = first_rebuildable_day(workspace_id)
    with transaction.atomic():
        mark, _ = RollupWatermark.objects.get_or_create(workspace_id=workspace_id)
        RollupWatermark.objects.select_for_update().get(pk=mark.pk)
        span = EngagementEvent.objects.filter(workspace_id=workspace_id, campaign_id__isnull=False).aggregate(
            start=Min("occurred_at"), end=Max("occurred_at")
        )
        daily = DailyRollup.objects.filter(workspace_id=workspace_id)
        if oldest is not None:
            daily = daily.filter(day__gte=oldest)
        if span["start"] is None:
            campaigns = set(daily.values_list("campaign_id", flat=True).distinct())
            daily.delete()
            campaign_totals_refresh(workspace_id=workspace_id, campaign_ids=campaigns)
            return RollupResult(days=0, rows=0, campaigns=len(campaigns))
        first = timezone.localtime(span["start"], zone).date() - timedelta(days=1)
        last = timezone.localtime(span["end"], zone).date() + timedelta(days=1)
        if oldest is not None:
            first = max(first, oldest)
        daily.exclude(day__gte=first, day__lte=last).delete()
        if last < first:
            return RollupResult(days=0, rows=0, campaigns=0)
        return rollup_backfill(workspace_id=workspace_id, first=first, last=last)


def workspace_zone_changed(workspace_id: int) -> None:
    """``AICMO_WORKSPACE_ZONE_CHANGED`` hook (run after commit): re-roll the workspace's history in its new
    zone (a task on the ``rollups`` queue). When the broker is unreachable the zone change stands and the
    error is logged; ``manage.py analytics_backfill --workspace <slug> --from … --to …`` re-rolls it."""
    from aicmo.jobs import task_send

    from .tasks import rollup_rebuild_task

    task_send(rollup_rebuild_task, workspace_id)


def rollup_backfill(*, workspace_id: int, first: date, last: date) -> RollupResult:
    """Rebuild every local day in [first, last] exactly from raw events (operator command)."""
    if last < first:
        raise ValueError("The range ends before it starts.")
    return rollup_days(
        workspace_id=workspace_id, days=(first + timedelta(days=i) for i in range((last - first).days + 1))
    )
