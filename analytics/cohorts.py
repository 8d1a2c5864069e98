"""Cohort retention: contacts grouped by the workspace-local week or month they were first seen (contact
created) or first ordered, and how many of each cohort were active in each later period, with the revenue
their orders brought.

- Periods are workspace-local (`analytics.rollups.workspace_zone`: the workspace's own zone). Weeks start on Monday (ISO 8601); a DST week is 167 or 169 hours.
- Period k of a cohort starting at C is the k-th week/month after C (k = 0: the cohort's own period).
- Activity ``engagement``: a human open, a click or a reply (the rollups' ``engagements``); ``order``: an
  order (for first-order cohorts period 0 holds the first order, so k ≥ 1 are repeat orders). Activity
  before the cohort's start is ignored.
- Revenue: the sum of the cohort contacts' order amounts in one currency (orders in other currencies are
  left out, not converted), per period.
- Deleted contacts drop out (their orders and events keep no contact); erased contacts keep their rows and
  count as before.

Everything is grouped in SQL (``GROUP BY cohort, period`` with ``COUNT(DISTINCT contact)``); only the
cohorts × periods cells come back to Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Count, DateField, DecimalField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Trunc

from aicmo.models import Workspace
from crm.models import Contact
from crm.services import list_add_contacts, list_create
from publishing.models import EngagementEvent, EngagementKind

from .models import Order
from .rollups import LocalDay, local_day_bounds, workspace_zone

BASES = ("first_seen", "first_order")
GRAINS = ("week", "month")
ACTIVITIES = ("engagement", "order")
MAX_PERIODS = 60


class LocalPeriod(LocalDay):
    """The workspace-local Monday of the week, or the first of the month, of a timestamp expression, for
    values in [start, end). PostgreSQL: ``date_trunc(grain, col AT TIME ZONE zone)``; SQLite: the local day
    (`LocalDay`) moved back with ``date(day, '-6 days', 'weekday 1')`` or ``'start of month'``."""

    def __init__(self, expression, *, grain: str, zone: ZoneInfo, start: datetime, end: datetime):
        super().__init__(expression, zone=zone, start=start, end=end)
        self.grain = grain

    def as_sql(self, compiler, connection, **extra):
        trunc = Trunc(self.source_expressions[0], self.grain, output_field=DateField(), tzinfo=self.zone)
        sql, params = trunc.as_sql(compiler, connection)
        return f"CAST({sql} AS date)", params  # DATE_TRUNC answers a timestamp

    def as_sqlite(self, compiler, connection, **extra):
        day, params = super().as_sqlite(compiler, connection, **extra)
        modifier = "'-6 days', 'weekday 1'" if self.grain == "week" else "'start of month'"
        return f"date({day}, {modifier})", params


def period_start(day: date, grain: str) -> date:
    return day - timedelta(days=day.weekday()) if grain == "week" else day.replace(day=1)


def period_index(cohort: date, period: date, grain: str) -> int:
    if grain == "week":
        return (period - cohort).days // 7
    return (period.year - cohort.year) * 12 + period.month - cohort.month


def add_periods(start: date, n: int, grain: str) -> date:
    if grain == "week":
        return start + timedelta(weeks=n)
    month = start.month - 1 + n
    return date(start.year + month // 12, month % 12 + 1, 1)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


@dataclass(frozen=True)
class CohortQuery:
    basis: str
    grain: str
    activity: str
    first: date  # first cohort's period start (local)
    last: date  # last cohort's period start (local)
    periods: int
    currency: str


def _bounds(workspace_id: int, query: CohortQuery) -> tuple[ZoneInfo, datetime, datetime]:
    """The zone and [start, end): local start of the first cohort to the end of the last observable period."""
    zone = workspace_zone(workspace_id)
    end_day = add_periods(query.last, query.periods, query.grain) - timedelta(days=1)
    start, end = local_day_bounds(query.first, end_day, zone)
    return zone, start, end


def _cohort_expression(query: CohortQuery, zone, start, end, contact_path: str):
    """The cohort period of the contact at ``contact_path`` (``""``: the row is the contact)."""
    prefix = f"{contact_path}__" if contact_path else ""
    if query.basis == "first_seen":
        return LocalPeriod(f"{prefix}created_at", grain=query.grain, zone=zone, start=start, end=end)
    first_order = Order.objects.filter(contact_id=OuterRef(f"{contact_path}_id" if contact_path else "pk"))
    first_order = first_order.order_by("ordered_at").values("ordered_at")[:1]
    return LocalPeriod(Subquery(first_order), grain=query.grain, zone=zone, start=start, end=end)


def _cohort_contacts(workspace_id: int, query: CohortQuery, zone, start, end):
    """Contacts of the workspace whose cohort starts in [first, last], annotated with ``cohort``."""
    last_start = _local_midnight(add_periods(query.last, 1, query.grain), zone)
    contacts = Contact.objects.filter(workspace_id=workspace_id)
    if query.basis == "first_seen":
        contacts = contacts.filter(created_at__gte=start, created_at__lt=last_start)
    else:
        first_at = Subquery(
            Order.objects.filter(contact_id=OuterRef("pk")).order_by("ordered_at").values("ordered_at")[:1]
        )
        contacts = contacts.annotate(first_at=first_at).filter(first_at__gte=start, first_at__lt=last_start)
    return contacts.annotate(cohort=_cohort_expression(query, zone, start, end, ""))


def _activities(workspace_id: int, activity: str):
    """The rows that make a contact active, and their time column."""
    if activity == "engagement":
        human = Q(kind=EngagementKind.OPEN, machine=False) | Q(
            kind__in=[EngagementKind.CLICK, EngagementKind.REPLY]
        )
        return EngagementEvent.objects.filter(human, workspace_id=workspace_id), "occurred_at"
    return Order.objects.filter(workspace_id=workspace_id), "ordered_at"


def cohort_matrix(workspace: Workspace | int, query: CohortQuery) -> dict:
    """``{basis, grain, activity, currency, zone, periods: [0…n−1], cohorts: [{cohort, size, active: [n per
    period], retention: [active/size], revenue: [decimal string per period], revenue_total}]}``.

    Cells of periods that have not ended yet are still filled (partial). Queries: 3."""
    workspace_id = getattr(workspace, "pk", workspace)
    zone, start, end = _bounds(workspace_id, query)
    members = _cohort_contacts(workspace_id, query, zone, start, end)
    sizes = dict(members.values("cohort").annotate(n=Count("pk")).order_by().values_list("cohort", "n"))
    acts, at = _activities(workspace_id, query.activity)
    member_ids = members.values("pk")
    active = (
        acts.filter(contact_id__in=member_ids, **{f"{at}__gte": start, f"{at}__lt": end})
        .annotate(
            cohort=_cohort_expression(query, zone, start, end, "contact"),
            period=LocalPeriod(at, grain=query.grain, zone=zone, start=start, end=end),
        )
        .values("cohort", "period")
        .annotate(n=Count("contact_id", distinct=True))
        .order_by()
    )
    revenue = (
        Order.objects.filter(
            workspace_id=workspace_id,
            contact_id__in=member_ids,
            currency=query.currency,
            ordered_at__gte=start,
            ordered_at__lt=end,
        )
        .annotate(
            cohort=_cohort_expression(query, zone, start, end, "contact"),
            period=LocalPeriod("ordered_at", grain=query.grain, zone=zone, start=start, end=end),
        )
        .values("cohort", "period")
        .annotate(amount=Sum("amount", output_field=DecimalField(max_digits=16, decimal_places=2)))
        .order_by()
    )
    cells: dict[date, dict] = {}
    cohort = query.first
    while cohort <= query.last:
        cells[cohort] = {
            "active": [0] * query.periods,
            "revenue": [Decimal("0.00")] * query.periods,
        }
        cohort = add_periods(cohort, 1, query.grain)
    for row in active:
        k = period_index(row["cohort"], row["period"], query.grain)
        if row["cohort"] in cells and 0 <= k < query.periods:
            cells[row["cohort"]]["active"][k] = row["n"]
    for row in revenue:
        k = period_index(row["cohort"], row["period"], query.grain)
        if row["cohort"] in cells and 0 <= k < query.periods:
            cells[row["cohort"]]["revenue"][k] = Decimal(row["amount"]).quantize(Decimal("0.01"))
    cohorts = []
    for cohort, cell in cells.items():
        size = sizes.get(cohort, 0)
        cohorts.append(
            {
                "cohort": cohort.isoformat(),
                "size": size,
                "active": cell["active"],
                "retention": [(n / size if size else None) for n in cell["active"]],
                "revenue": [str(v) for v in cell["revenue"]],
                "revenue_total": str(sum(cell["revenue"], Decimal("0.00"))),
            }
        )
    return {
        "basis": query.basis,
        "grain": query.grain,
        "activity": query.activity,
        "currency": query.currency,
        "zone": str(zone),
        "periods": list(range(query.periods)),
        "cohorts": cohorts,
    }


def cohort_rows(matrix: dict) -> list[dict]:
    """The matrix as one row per cohort × period (the CSV shape)."""
    return [
        {
            "cohort": c["cohort"],
            "period": k,
            "size": c["size"],
            "active": c["active"][k],
            "retention": c["retention"][k],
            "revenue": c["revenue"][k],
        }
        for c in matrix["cohorts"]
        for k in matrix["periods"]
    ]


def cohort_cell_contact_ids(
    workspace: Workspace | int, query: CohortQuery, cohort: date, period: int
) -> list[int]:
    """Ids of the contacts of ``cohort`` active in period ``period`` (the cell a list is saved from)."""
    workspace_id = getattr(workspace, "pk", workspace)
    single = CohortQuery(**{**query.__dict__, "first": cohort, "last": cohort, "periods": period + 1})
    zone, start, end = _bounds(workspace_id, single)
    members = _cohort_contacts(workspace_id, single, zone, start, end).filter(cohort=cohort)
    lo = _local_midnight(add_periods(cohort, period, query.grain), zone)
    hi = _local_midnight(add_periods(cohort, period + 1, query.grain), zone)
    acts, at = _activities(workspace_id, query.activity)
    acts = acts.filter(**{f"{at}__gte": lo, f"{at}__lt": hi})
    return list(members.filter(pk__in=acts.values("contact_id")).order_by("pk").values_list("pk", flat=True))


def cohort_cell_save_list(
    *, workspace: Workspace, query: CohortQuery, cohort: date, period: int, name: str, by=None
):
    """Save a cell's contacts as a static crm list (crm's `list_create` + `list_add_contacts`, atomic).
    Returns ``(list, contacts added)``; ValidationError from crm for a bad or taken name."""
    ids = cohort_cell_contact_ids(workspace, query, cohort, period)
    with transaction.atomic():
        contact_list = list_create(
            workspace=workspace,
            name=name,
            description=f"Cohort {cohort.isoformat()} ({query.basis}, {query.grain}), period {period}, "
            f"active by {query.activity}",
            by=by,
        )
        added = list_add_contacts(contact_list=contact_list, contact_ids=ids)
    return contact_list, added
