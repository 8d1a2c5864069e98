"""Cohort retention and revenue checked against pandas over the raw rows, in Europe/Berlin (DST on
2026-03-29 and 2026-10-25), with rows at local midnight, late rows, deleted and erased contacts; the API,
CSV, save-a-cell-as-a-list, roles and tenant isolation."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from aicmo.models import Role
from analytics.cohorts import CohortQuery, cohort_matrix, cohort_rows
from analytics.models import Order
from crm.models import Contact, ContactList
from crm.services import contact_delete, contact_erase
from publishing.models import EngagementEvent
from tests.analytics.generated import event, make_campaigns, make_contacts, make_deliveries

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")
URL = "/api/v1/analytics/cohorts/retention/"
SAVE = "/api/v1/analytics/cohorts/save-list/"
START = datetime(2026, 1, 1, tzinfo=BERLIN)


def _instant(rng: random.Random) -> datetime:
    """A random instant in 2026, one in four exactly at a local midnight (some on DST days)."""
    day = date(2026, 1, 1) + timedelta(days=rng.randrange(330))
    if rng.random() < 0.25:
        return datetime(day.year, day.month, day.day, tzinfo=BERLIN).astimezone(UTC)
    return (START + timedelta(seconds=rng.randrange(330 * 86400))).astimezone(UTC)


@pytest.fixture
def history(workspace, berlin):
    """Contacts created through 2026, engagement events (human and machine), orders in EUR and USD; one
    contact deleted and one erased afterwards."""
    rng = random.Random(11)
    [campaign] = make_campaigns(workspace, 1)
    contacts = make_contacts(workspace, 70)
    created = {}
    for c in contacts:
        created[c.pk] = _instant(rng)
        Contact.objects.filter(pk=c.pk).update(created_at=created[c.pk])
    # exactly at the DST switch nights
    Contact.objects.filter(pk=contacts[0].pk).update(created_at=datetime(2026, 3, 29, tzinfo=BERLIN))
    Contact.objects.filter(pk=contacts[1].pk).update(created_at=datetime(2026, 10, 26, tzinfo=BERLIN))
    deliveries = make_deliveries(campaign, contacts)
    events = []
    for _ in range(900):
        d = rng.choice(deliveries)
        kind = rng.choice(["open", "open", "click", "reply", "sent", "unsubscribe"])
        events.append(event(d, kind, _instant(rng), machine=kind == "open" and rng.random() < 0.3))
    EngagementEvent.objects.bulk_create(events)
    orders = []
    for i in range(160):
        c = rng.choice(contacts)
        orders.append(
            Order(
                workspace=workspace,
                contact=c,
                external_id=f"o{i}",
                ordered_at=_instant(rng),
                amount=Decimal(rng.randrange(100, 20000)) / 100,
                currency=rng.choice(["EUR", "EUR", "USD"]),
                source="api",
            )
        )
    Order.objects.bulk_create(orders)
    contact_delete(contact=contacts[5])
    contact_erase(contact=contacts[6])
    return contacts


def expected(
    workspace, basis: str, grain: str, activity: str, first: date, last: date, periods: int, cur: str
):
    """{cohort: (size, [active per k], [revenue per k])} from pandas Periods over the raw rows."""
    freq = "W-SUN" if grain == "week" else "M"

    def period(series):
        return pd.to_datetime(series, utc=True).dt.tz_convert(BERLIN).dt.tz_localize(None).dt.to_period(freq)

    contacts = pd.DataFrame(list(Contact.objects.filter(workspace=workspace).values("id", "created_at")))
    orders = pd.DataFrame(
        list(Order.objects.filter(workspace=workspace, contact__isnull=False).values(
            "contact_id", "ordered_at", "amount", "currency"
        ))
    )  # fmt: skip
    if basis == "first_seen":
        cohort = pd.Series(period(contacts["created_at"]).values, index=contacts["id"])
    else:
        firsts = orders.groupby("contact_id")["ordered_at"].min()
        cohort = pd.Series(period(firsts).values, index=firsts.index)
    lo, hi = pd.Period(first, freq), pd.Period(last, freq)
    cohort = cohort[(cohort >= lo) & (cohort <= hi)]
    if activity == "engagement":
        ev = pd.DataFrame(
            list(EngagementEvent.objects.filter(workspace=workspace, contact__isnull=False).values(
                "contact_id", "kind", "machine", "occurred_at"
            ))
        )  # fmt: skip
        ev = ev[((ev["kind"] == "open") & ~ev["machine"]) | ev["kind"].isin(["click", "reply"])]
        acts = pd.DataFrame({"contact_id": ev["contact_id"], "p": period(ev["occurred_at"])})
    else:
        acts = pd.DataFrame({"contact_id": orders["contact_id"], "p": period(orders["ordered_at"])})
    acts = acts[acts["contact_id"].isin(cohort.index)]
    acts["c"] = acts["contact_id"].map(cohort)
    acts["k"] = [(p - c).n for p, c in zip(acts["p"], acts["c"], strict=True)]
    money = orders[(orders["currency"] == cur) & orders["contact_id"].isin(cohort.index)].copy()
    money["c"] = money["contact_id"].map(cohort)
    money["k"] = [(p - c).n for p, c in zip(period(money["ordered_at"]), money["c"], strict=True)]
    out = {}
    c = lo
    while c <= hi:
        size = int((cohort == c).sum())
        active = [
            int(acts[(acts["c"] == c) & (acts["k"] == k)]["contact_id"].nunique()) for k in range(periods)
        ]
        revenue = [
            sum(money[(money["c"] == c) & (money["k"] == k)]["amount"], Decimal("0.00"))
            for k in range(periods)
        ]
        out[c.start_time.date().isoformat()] = (
            size,
            active,
            [str(Decimal(r).quantize(Decimal("0.01"))) for r in revenue],
        )
        c += 1
    return out


def actual(matrix) -> dict:
    return {c["cohort"]: (c["size"], c["active"], c["revenue"]) for c in matrix["cohorts"]}


@pytest.mark.parametrize(
    ("basis", "grain", "activity", "first", "last", "periods"),
    [
        ("first_seen", "month", "engagement", date(2026, 1, 1), date(2026, 11, 1), 12),
        ("first_seen", "week", "engagement", date(2026, 3, 16), date(2026, 11, 2), 10),
        ("first_order", "month", "order", date(2026, 1, 1), date(2026, 11, 1), 12),
        ("first_order", "week", "engagement", date(2026, 3, 23), date(2026, 6, 1), 8),
        ("first_seen", "month", "order", date(2026, 2, 1), date(2026, 10, 1), 6),
    ],
)
def test_matrix_matches_pandas(workspace, history, basis, grain, activity, first, last, periods):
    query = CohortQuery(basis, grain, activity, first, last, periods, "EUR")
    matrix = cohort_matrix(workspace, query)
    want = expected(workspace, basis, grain, activity, first, last, periods, "EUR")
    assert actual(matrix) == want
    assert sum(size for size, _, _ in want.values()) > 10  # the data fills the cohorts
    assert any(sum(active[1:]) for _, active, _ in want.values())
    for c in matrix["cohorts"]:
        assert c["retention"] == [(n / c["size"] if c["size"] else None) for n in c["active"]]


def test_first_order_cohorts_hold_everyone_in_period_zero(workspace, history):
    matrix = cohort_matrix(
        workspace, CohortQuery("first_order", "month", "order", date(2026, 1, 1), date(2026, 6, 1), 3, "EUR")
    )
    assert all(c["active"][0] == c["size"] for c in matrix["cohorts"])


def test_api_csv_and_isolation(
    api_client_for, workspace, other_workspace, history, django_assert_max_num_queries
):
    client = api_client_for(role=Role.VIEWER)
    params = "?basis=first_seen&grain=month&activity=engagement&date_from=2026-01-15&date_to=2026-11-03&periods=12&currency=eur"
    with django_assert_max_num_queries(10):  # auth, tenant, the workspace zone, then the 3 cohort queries
        body = client.get(URL + params).json()
    assert body["zone"] == "Europe/Berlin" and body["currency"] == "EUR"
    assert actual(body) == expected(
        workspace, "first_seen", "month", "engagement", date(2026, 1, 1), date(2026, 11, 1), 12, "EUR"
    )
    response = client.get(URL + params + "&format=csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "cohort,period,size,active,retention,revenue"
    assert len(lines) == 1 + len(cohort_rows(body))
    stranger = api_client_for(role=Role.ADMIN, workspace_=other_workspace)
    theirs = stranger.get(URL + params).json()
    assert all(c["size"] == 0 for c in theirs["cohorts"])


@pytest.mark.parametrize(
    "params",
    ["?grain=day", "?basis=x", "?periods=0", "?periods=61", "?date_from=2026-05-01&date_to=2026-01-01",
     "?grain=week&date_from=2020-01-01&date_to=2026-01-01", "?currency=euro", "?date_to=9999-12-31"],
)  # fmt: skip
def test_bad_queries_are_400(api_client_for, params):
    assert api_client_for(role=Role.VIEWER).get(URL + params).status_code == 400


def test_save_cell_as_static_list(api_client_for, workspace, history):
    client = api_client_for(role=Role.MARKETER)
    query = CohortQuery("first_seen", "month", "engagement", date(2026, 1, 1), date(2026, 11, 1), 12, "EUR")
    matrix = cohort_matrix(workspace, query)
    cohort, k = next((c["cohort"], k) for c in matrix["cohorts"] for k in range(1, 12) if c["active"][k] > 1)
    n = next(c["active"][k] for c in matrix["cohorts"] if c["cohort"] == cohort)
    body = {"basis": "first_seen", "grain": "month", "activity": "engagement", "cohort": cohort, "period": k}
    response = client.post(SAVE, {**body, "name": "Came back"}, format="json")
    assert response.status_code == 201, response.content
    saved = ContactList.objects.get(pk=response.json()["id"])
    assert response.json()["contacts"] == n == saved.contacts.count()
    assert (
        client.post(SAVE, {**body, "name": "Came back"}, format="json").status_code == 409
    )  # name taken: a conflict (aicmo.conflicts)
    viewer = api_client_for(role=Role.VIEWER)
    assert viewer.post(SAVE, {**body, "name": "Other"}, format="json").status_code == 403
    assert ContactList.objects.count() == 1
