"""Analytics API: orders (idempotent create, conflicts, bad input, roles), reports, comparison, channels,
attribution, CSV downloads, tenant isolation and query counts."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from aicmo.models import AuditEvent, Role
from analytics.models import Order
from analytics.rollups import rollup_backfill
from publishing.models import EngagementEvent, EngagementKind
from tests.analytics.generated import event, make_campaigns, make_contacts, make_deliveries, random_events
from tests.crm.factories import ContactFactory

UTC = ZoneInfo("UTC")
ORDERS = "/api/v1/analytics/orders/"
CAMPAIGNS = "/api/v1/analytics/campaigns/"


def csv_rows(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def order_body(**extra):
    return {
        "external_id": "A-1",
        "ordered_at": "2026-07-01T10:00:00Z",
        "amount": "19.90",
        "currency": "eur",
        **extra,
    }


def test_order_create_is_idempotent_by_order_id(api_client_for):
    client = api_client_for(role=Role.MARKETER)
    contact = ContactFactory(workspace=client.workspace)
    first = client.post(ORDERS, order_body(contact=contact.pk), format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["currency"] == "EUR" and first.json()["source"] == "api"
    again = client.post(ORDERS, order_body(contact=contact.pk), format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    conflict = client.post(ORDERS, order_body(contact=contact.pk, amount="20.00"), format="json")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["fields"] == {"external_id": ["Already used by another order."]}
    assert Order.objects.count() == 1
    assert AuditEvent.objects.filter(verb="analytics.order.created").count() == 1


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"amount": "-1"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"currency": "E1R"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"external_id": ""}, "external_id"),
        ({"external_id": "x" * 101}, "external_id"),
        ({"ordered_at": "yesterday"}, "ordered_at"),
    ],
)
def test_bad_orders_are_400_with_the_field_and_write_nothing(api_client_for, extra, field):
    client = api_client_for(role=Role.MARKETER)
    resp = client.post(ORDERS, order_body(**extra), format="json")
    assert resp.status_code == 400, resp.content
    assert field in resp.json()["error"]["fields"]
    assert Order.objects.count() == 0


def test_orders_are_tenant_scoped(api_client_for, other_workspace):
    client = api_client_for(role=Role.MARKETER)
    foreign_contact = ContactFactory(workspace=other_workspace)
    resp = client.post(ORDERS, order_body(contact=foreign_contact.pk), format="json")
    assert resp.status_code == 404 and "contact" in resp.json()["error"]["fields"]
    theirs = Order.objects.create(
        workspace=other_workspace,
        external_id="A-1",
        ordered_at=datetime(2026, 1, 1, tzinfo=UTC),
        amount=Decimal(5),
        currency="EUR",
        source="api",
    )
    # the same order id in another workspace is another order
    assert client.post(ORDERS, order_body(), format="json").status_code == 201
    listed = client.get(ORDERS).json()["results"]
    assert theirs.pk not in {o["id"] for o in listed} and len(listed) == 1
    assert client.get(f"{ORDERS}{theirs.pk}/").status_code == 404
    assert client.delete(f"{ORDERS}{theirs.pk}/").status_code == 404
    assert Order.objects.filter(pk=theirs.pk).exists()


def test_viewer_reads_but_cannot_write_orders(api_client_for):
    viewer = api_client_for(role=Role.VIEWER)
    assert viewer.get(ORDERS).status_code == 200
    assert viewer.post(ORDERS, order_body(), format="json").status_code == 403
    assert viewer.get(f"{CAMPAIGNS}").status_code == 200


def rolled_world(workspace, n_campaigns=3, n_events=1500, seed=3):
    campaigns = make_campaigns(workspace, n_campaigns)
    contacts = make_contacts(workspace, 30)
    deliveries = [d for c in campaigns for d in make_deliveries(c, contacts)]
    random_events(deliveries, n_events, start=datetime(2026, 8, 1, tzinfo=UTC), days=10, seed=seed)
    rollup_backfill(workspace_id=workspace.pk, first=date(2026, 7, 31), last=date(2026, 8, 12))
    return campaigns, contacts, deliveries


def test_campaign_list_and_report_and_their_csv_agree(api_client_for):
    client = api_client_for(role=Role.VIEWER)
    campaigns, _, _ = rolled_world(client.workspace)
    listed = client.get(CAMPAIGNS).json()["results"]
    assert {r["id"] for r in listed} == {c.pk for c in campaigns}
    report = client.get(f"{CAMPAIGNS}{campaigns[0].pk}/").json()
    row = next(r for r in listed if r["id"] == campaigns[0].pk)
    assert report["totals"]["ctr"] == row["ctr"] and report["totals"]["unique_clicks"] == row["unique_clicks"]
    assert sum(d["opens"] for d in report["daily"]) == report["totals"]["opens"]
    assert [v["variant"] for v in report["variants"]] == ["A", "B"]
    assert report["variants"][0]["tests"]["ctr"]["verdict"] == "baseline"
    assert report["variants"][1]["tests"]["ctr"]["verdict"] in {"significant", "not yet"}

    rows = csv_rows(client.get(CAMPAIGNS, {"format": "csv"}))
    by_id = {int(r["id"]): r for r in rows}
    assert set(by_id) == {c.pk for c in campaigns}
    assert float(by_id[campaigns[0].pk]["ctr"]) == pytest.approx(row["ctr"])
    daily = csv_rows(client.get(f"{CAMPAIGNS}{campaigns[0].pk}/", {"format": "csv"}))
    assert [r["day"] for r in daily] == [d["day"] for d in report["daily"]]
    variants = csv_rows(client.get(f"{CAMPAIGNS}{campaigns[0].pk}/", {"format": "csv", "part": "variants"}))
    assert variants[1]["tests.ctr.p_value"] == str(report["variants"][1]["tests"]["ctr"]["p_value"] or "")


def test_csv_error_answers_are_the_json_error_object(api_client_for):
    client = api_client_for(role=Role.VIEWER)
    resp = client.get(f"{CAMPAIGNS}compare/", {"format": "csv", "campaigns": "1"})
    assert resp.status_code == 400 and resp["Content-Type"].startswith("application/json")
    assert resp.json()["error"]["fields"]["campaigns"]


def test_reports_are_tenant_scoped(api_client_for, other_workspace):
    client = api_client_for(role=Role.VIEWER)
    mine, _, _ = rolled_world(client.workspace, n_campaigns=1, n_events=200)
    theirs, _, _ = rolled_world(other_workspace, n_campaigns=1, n_events=200, seed=5)
    assert client.get(f"{CAMPAIGNS}{theirs[0].pk}/").status_code == 404
    assert [r["id"] for r in client.get(CAMPAIGNS).json()["results"]] == [mine[0].pk]
    resp = client.get(f"{CAMPAIGNS}compare/", {"campaigns": f"{mine[0].pk},{theirs[0].pk}"})
    assert resp.status_code == 404 and resp.json()["error"]["fields"] == {"campaigns": [str(theirs[0].pk)]}
    overview = client.get("/api/v1/analytics/figures/overview/").json()
    mine_opens = EngagementEvent.objects.filter(workspace=client.workspace, kind="open").count()
    assert overview["opens"] == mine_opens and overview["campaigns"] == 1
    channels = client.get("/api/v1/analytics/figures/channels/").json()["channels"]
    assert [c["opens"] for c in channels] == [mine_opens]


def test_report_query_counts_do_not_grow_with_events_or_campaigns(
    api_client_for, django_assert_max_num_queries
):
    client = api_client_for(role=Role.VIEWER)
    campaigns, _, deliveries = rolled_world(client.workspace, n_campaigns=2, n_events=300)
    with django_assert_max_num_queries(12) as small:
        client.get(f"{CAMPAIGNS}{campaigns[0].pk}/")
    random_events(deliveries, 3000, start=datetime(2026, 8, 1, tzinfo=UTC), days=10, seed=11)
    make_campaigns(client.workspace, 40, prefix="More")
    rollup_backfill(workspace_id=client.workspace.pk, first=date(2026, 7, 31), last=date(2026, 8, 12))
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get(f"{CAMPAIGNS}{campaigns[0].pk}/")
    with django_assert_max_num_queries(12):
        assert len(client.get(CAMPAIGNS, {"page_size": 50}).json()["results"]) == 42
    with django_assert_max_num_queries(10):
        client.get("/api/v1/analytics/figures/overview/")
    with django_assert_max_num_queries(10):
        client.get("/api/v1/analytics/figures/channels/")


def test_compare_reports_significance_with_sample_sizes(api_client_for):
    client = api_client_for(role=Role.VIEWER)
    a, b = make_campaigns(client.workspace, 2)
    contacts = make_contacts(client.workspace, 200)
    at = datetime(2026, 9, 1, 12, tzinfo=UTC)
    events = []
    for campaign, clickers in ((a, 20), (b, 60)):
        ds = make_deliveries(campaign, contacts)
        events += [event(d, EngagementKind.SENT, at) for d in ds]
        events += [event(d, EngagementKind.CLICK, at) for d in ds[:clickers]]
    EngagementEvent.objects.bulk_create(events)
    rollup_backfill(workspace_id=client.workspace.pk, first=date(2026, 9, 1), last=date(2026, 9, 1))
    resp = client.get(f"{CAMPAIGNS}compare/", {"campaigns": f"{a.pk},{b.pk}", "metric": "ctr"})
    assert resp.status_code == 200, resp.content
    rows = resp.json()["campaigns"]
    assert [r["id"] for r in rows] == [a.pk, b.pk]
    test = rows[1]["test"]
    assert test["successes"] == [20, 60] and test["trials"] == [200, 200]
    assert test["verdict"] == "significant" and test["p_value"] < 1e-6
    assert rows[0]["test"]["verdict"] == "baseline"
    download = csv_rows(client.get(f"{CAMPAIGNS}compare/", {"campaigns": f"{a.pk},{b.pk}", "format": "csv"}))
    assert download[1]["test.verdict"] == "significant" and download[1]["test.trials"] == "200/200"


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"campaigns": "1"},
        {"campaigns": "1,1"},
        {"campaigns": "a,b"},
        {"campaigns": "1,2", "metric": "x"},
        {"campaigns": ",".join(str(i) for i in range(1, 30))},
        {"campaigns": "1,99999999999999999999"},
    ],
)
def test_compare_bad_queries_are_400(api_client_for, query):
    client = api_client_for(role=Role.VIEWER)
    assert client.get(f"{CAMPAIGNS}compare/", query).status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        {"model": "first"},
        {"window_days": "0"},
        {"window_days": "366"},
        {"date_from": "2026-02-30"},
        {"date_from": "2026-03-02", "date_to": "2026-03-01"},
        {"date_from": "1990-01-01", "date_to": "2026-01-01"},
    ],
)
def test_attribution_bad_queries_are_400(api_client_for, query):
    client = api_client_for(role=Role.VIEWER)
    assert client.get("/api/v1/analytics/figures/attribution/", query).status_code == 400


def test_channel_ranking_orders_by_metric_with_undefined_last(api_client_for):
    client = api_client_for(role=Role.VIEWER)
    (email,) = make_campaigns(client.workspace, 1)
    (social,) = make_campaigns(client.workspace, 1, channel="social", prefix="S")
    (ads,) = make_campaigns(client.workspace, 1, channel="ads", prefix="Ads")
    contacts = make_contacts(client.workspace, 10)
    at = datetime(2026, 9, 2, 9, tzinfo=UTC)
    events = []
    for campaign, clicks in ((email, 2), (social, 5)):
        ds = make_deliveries(campaign, contacts)
        events += [event(d, EngagementKind.SENT, at, channel=campaign.channel) for d in ds]
        events += [event(d, EngagementKind.CLICK, at, channel=campaign.channel) for d in ds[:clicks]]
    ads_delivery = make_deliveries(ads, contacts[:1])[0]
    events.append(event(ads_delivery, EngagementKind.CLICK, at, channel="ads"))  # clicks without sends
    EngagementEvent.objects.bulk_create(events)
    rollup_backfill(workspace_id=client.workspace.pk, first=date(2026, 9, 2), last=date(2026, 9, 2))
    ranking = client.get("/api/v1/analytics/figures/channels/", {"metric": "ctr"}).json()["channels"]
    assert [(c["channel"], c["rank"], c["ctr"]) for c in ranking] == [
        ("social", 1, 0.5),
        ("email", 2, 0.2),
        ("ads", 3, None),
    ]
    rows = csv_rows(client.get("/api/v1/analytics/figures/channels/", {"metric": "ctr", "format": "csv"}))
    assert [(r["channel"], r["ctr"]) for r in rows] == [("social", "0.5"), ("email", "0.2"), ("ads", "")]
