"""Contact 360: the figures and the cross-app timeline equal a pandas computation over the raw rows (events,
orders, crm history, audit), newest first across pages; the page and the API agree; the prediction's
states; audit entries for admins only; query counts flat in the number of events; tenant isolation."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from aicmo.audit import audit_record
from aicmo.models import AuditEvent, Role
from analytics.models import CustomerValue, LifetimeFit, Order
from analytics.scoring import scores_refresh
from crm.models import ConsentEvent, EnrichmentRecord, LifecycleTransition
from publishing.models import EngagementEvent
from tests.analytics.generated import make_campaigns, make_contacts, make_deliveries, random_events
from tests.analytics.test_insight_pages import chart_data

START = datetime(2026, 3, 20, tzinfo=UTC)
NOW = datetime(2026, 4, 20, 12, tzinfo=UTC)


def _at(model, pk, when):
    """Stamp a row whose time field is auto_now_add."""
    field = {"LifecycleTransition": "at", "ConsentEvent": "at", "AuditEvent": "at"}[model.__name__]
    model.objects.filter(pk=pk).update(**{field: when})


@pytest.fixture
def history(workspace, other_workspace):
    """One contact with events in two campaigns, orders in two currencies, crm history and audit entries;
    a second contact of the workspace and one of another workspace with rows of their own."""
    campaigns = make_campaigns(workspace, 2)
    ours, neighbour = make_contacts(workspace, 2)
    for i, campaign in enumerate(campaigns):
        random_events(make_deliveries(campaign, [ours, neighbour]), 60, start=START, days=30, seed=7 + i)
    [foreign_campaign] = make_campaigns(other_workspace, 1, prefix="Theirs")
    [stranger] = make_contacts(other_workspace, 1)
    random_events(make_deliveries(foreign_campaign, [stranger]), 20, start=START, days=30, seed=3)
    amounts = [("EUR", "19.99"), ("EUR", "40.01"), ("EUR", "5.00"), ("USD", "100.00"), ("USD", "0.50")]
    for i, (currency, amount) in enumerate(amounts):
        Order.objects.create(
            workspace=workspace, contact=ours, external_id=f"o-{i}", ordered_at=START + timedelta(days=3 * i),
            amount=Decimal(amount), currency=currency, source="api",
        )  # fmt: skip
    Order.objects.create(
        workspace=workspace, contact=neighbour, external_id="n-1", ordered_at=START, amount=7, currency="EUR",
        source="api",
    )  # fmt: skip
    t = LifecycleTransition.objects.create(
        workspace=workspace, contact=ours, from_stage="lead", to_stage="customer", reason="first order"
    )
    _at(LifecycleTransition, t.pk, START + timedelta(days=2, hours=5))
    c = ConsentEvent.objects.create(
        workspace=workspace, contact=ours, kind="email", granted=False, source="link"
    )
    _at(ConsentEvent, c.pk, START + timedelta(days=9))
    EnrichmentRecord.objects.create(
        workspace=workspace,
        contact=ours,
        provider="hunter",
        fetched_at=START + timedelta(days=1),
        matched=True,
    )
    a = audit_record(workspace=workspace, actor=None, verb="crm.contact.merged", target=ours)
    _at(AuditEvent, a.pk, START + timedelta(days=4))
    audit_record(workspace=workspace, actor=None, verb="crm.contact.merged", target=neighbour)
    scores_refresh(workspace_id=workspace.pk, now=NOW)
    return ours


def expected_timeline(workspace, contact, *, include_audit: bool) -> list[tuple]:
    """(at, source, kind, title) of every row about the contact, straight from the tables, with pandas."""
    frames = []
    ev = pd.DataFrame(
        EngagementEvent.objects.filter(workspace=workspace, contact=contact).values(
            "id", "occurred_at", "kind", "machine", "campaign__name"
        )
    )
    ev["kind"] = ev["kind"].where(~((ev["kind"] == "open") & ev["machine"]), "open (machine)")
    frames.append(
        pd.DataFrame({"at": ev["occurred_at"], "source": "engagement", "kind": ev["kind"],
                      "title": ev["campaign__name"], "ref": ev["id"]})
    )  # fmt: skip
    od = pd.DataFrame(
        Order.objects.filter(workspace=workspace, contact=contact).values("id", "ordered_at", "external_id")
    )
    frames.append(pd.DataFrame({"at": od["ordered_at"], "source": "order", "kind": "order",
                                "title": od["external_id"], "ref": od["id"]}))  # fmt: skip
    lc = pd.DataFrame(
        LifecycleTransition.objects.filter(contact=contact).values("id", "at", "from_stage", "to_stage")
    )
    frames.append(pd.DataFrame({"at": lc["at"], "source": "crm", "kind": "lifecycle",
                                "title": lc["from_stage"] + " → " + lc["to_stage"], "ref": lc["id"]}))  # fmt: skip
    ce = pd.DataFrame(ConsentEvent.objects.filter(contact=contact).values("id", "at", "kind", "granted"))
    frames.append(pd.DataFrame({"at": ce["at"], "source": "crm",
                                "kind": ce["granted"].map({True: "consent given", False: "consent withdrawn"}),
                                "title": ce["kind"], "ref": ce["id"]}))  # fmt: skip
    er = pd.DataFrame(EnrichmentRecord.objects.filter(contact=contact).values("id", "fetched_at", "provider"))
    frames.append(pd.DataFrame({"at": er["fetched_at"], "source": "crm", "kind": "enrichment",
                                "title": er["provider"], "ref": er["id"]}))  # fmt: skip
    if include_audit:
        au = pd.DataFrame(
            AuditEvent.objects.filter(
                workspace=workspace, target_type="crm.contact", target_id=str(contact.pk)
            ).values("id", "at", "verb")
        )
        frames.append(pd.DataFrame({"at": au["at"], "source": "audit", "kind": "audit",
                                    "title": au["verb"], "ref": au["id"]}))  # fmt: skip
    df = pd.concat(frames, ignore_index=True)
    df["at"] = pd.to_datetime(df["at"], utc=True)
    df = df.sort_values(["at", "source", "ref"], ascending=False)
    return [(r.at.to_pydatetime(), r.source, r.kind, r.title) for r in df.itertuples()]


def test_figures_equal_pandas_over_the_raw_rows(api_client_for, history):
    client = api_client_for(role=Role.VIEWER)
    body = client.get(f"/api/v1/analytics/contacts/{history.pk}/").json()

    ev = pd.DataFrame(
        EngagementEvent.objects.filter(contact=history).values("kind", "machine", "occurred_at")
    )
    counts = ev.groupby("kind").size()
    for kind in ("sent", "click", "reply", "conversion", "unsubscribe", "complaint", "bounce_hard"):
        assert body["engagement"][kind] == int(counts.get(kind, 0)), kind
    opens = ev[ev["kind"] == "open"]
    assert body["engagement"]["open_human"] == int((~opens["machine"]).sum())
    assert body["engagement"]["open_machine"] == int(opens["machine"].sum())
    human = ev[ev["kind"].isin(["click", "reply", "conversion"]) | ((ev["kind"] == "open") & ~ev["machine"])]
    assert datetime.fromisoformat(body["engagement"]["last_human_at"]) == human["occurred_at"].max()

    od = pd.DataFrame(Order.objects.filter(contact=history).values("currency", "amount", "ordered_at"))
    od["amount"] = od["amount"].map(Decimal)
    expected = []
    for currency, g in od.groupby("currency"):
        revenue = sum(g["amount"], Decimal(0))
        expected.append(
            {
                "currency": currency, "orders": len(g), "revenue": f"{revenue:.2f}",
                "aov": f"{(revenue / len(g)).quantize(Decimal('0.01')):.2f}",
                "first_order_at": g["ordered_at"].min(), "last_order_at": g["ordered_at"].max(),
            }
        )  # fmt: skip
    got = [
        {**o, "first_order_at": datetime.fromisoformat(o["first_order_at"]),
         "last_order_at": datetime.fromisoformat(o["last_order_at"])}
        for o in body["orders"]
    ]  # fmt: skip
    assert got == expected
    assert expected[0]["revenue"] == "65.00" and expected[0]["aov"] == "21.67"  # 19.99 + 40.01 + 5.00, / 3

    history.refresh_from_db()
    assert body["score"]["score"] == history.engagement_score > 0
    assert [h["score"] for h in body["score"]["history"]] == [history.engagement_score]
    assert body["prediction"] == {"state": "no_fit", "fit": None, "value": None}


def test_timeline_is_every_row_newest_first_across_pages(api_client_for, history):
    admin = api_client_for(role=Role.ADMIN)
    rows, url = [], f"/api/v1/analytics/contacts/{history.pk}/timeline/?page_size=17"
    while url:
        page = admin.get(url).json()
        rows.extend(page["results"])
        url = page["next"]
    got = [(datetime.fromisoformat(r["at"]), r["source"], r["kind"], r["title"]) for r in rows]
    assert got == expected_timeline(history.workspace, history, include_audit=True)
    assert {r["source"] for r in rows} == {"engagement", "order", "crm", "audit"}
    order = next(r for r in rows if r["title"] == "o-3")
    assert (order["amount"], order["currency"]) == ("100.00", "USD")

    viewer = api_client_for(role=Role.VIEWER)
    seen = viewer.get(f"/api/v1/analytics/contacts/{history.pk}/timeline/?page_size=500").json()["results"]
    assert [r["source"] for r in seen if r["source"] == "audit"] == []  # the audit log is for admins
    assert len(seen) == len(expected_timeline(history.workspace, history, include_audit=False))


def test_csv_downloads_carry_the_same_figures(api_client_for, history):
    client = api_client_for(role=Role.ADMIN)
    resp = client.get(f"/api/v1/analytics/contacts/{history.pk}/timeline/?format=csv")
    lines = list(csv.DictReader(io.StringIO(b"".join(resp.streaming_content).decode())))
    api = client.get(f"/api/v1/analytics/contacts/{history.pk}/timeline/?page_size=500").json()["results"]
    assert [(r["at"], r["kind"], r["title"]) for r in lines] == [
        (r["at"], r["kind"], r["title"]) for r in api
    ]
    resp = client.get(f"/api/v1/analytics/contacts/{history.pk}/?format=csv")
    cells = {
        (r["section"], r["name"]): r["value"]
        for r in csv.DictReader(io.StringIO(b"".join(resp.streaming_content).decode()))
    }
    body = client.get(f"/api/v1/analytics/contacts/{history.pk}/").json()
    assert cells[("orders.EUR", "revenue")] == "65.00" and cells[("prediction", "state")] == "no_fit"
    assert cells[("engagement", "click")] == str(body["engagement"]["click"])
    assert cells[("score", "score")] == str(body["score"]["score"])


def _fit(workspace, **kw):
    return LifetimeFit.objects.create(
        workspace=workspace, observation_date=date(2026, 4, 19), currency="EUR", months=12,
        monthly_discount=0.01, finished_at=NOW, **kw,
    )  # fmt: skip


def _value(fit, contact, **kw):
    return CustomerValue.objects.create(
        workspace=fit.workspace, contact=contact, fit=fit, orders=3, revenue=Decimal("65.00"), aov=Decimal("21.67"),
        first_order=date(2026, 3, 20), last_order=date(2026, 3, 26), frequency=2, recency_days=6, age_days=30,
        r_score=4, f_score=5, m_score=3, segment="Loyal customers", **kw,
    )  # fmt: skip


def test_prediction_states_on_the_page_and_in_the_api(client_for, api_client_for, history):
    api = api_client_for(role=Role.VIEWER)
    page = client_for(role=Role.VIEWER)
    url, api_url = f"/analytics/contacts/{history.pk}/", f"/api/v1/analytics/contacts/{history.pk}/"
    assert "No fit yet" in page.get(url).content.decode()

    fit = _fit(history.workspace)
    assert api.get(api_url).json()["prediction"]["state"] == "not_in_fit"
    assert "Not in that fit" in page.get(url).content.decode()

    failed = _fit(history.workspace, error="Fewer than 10 customers.")
    _value(failed, history)
    body = api.get(api_url).json()["prediction"]
    assert body["state"] == "not_predicted" and body["fit"]["error"] == "Fewer than 10 customers."
    assert "Fewer than 10 customers." in page.get(url).content.decode()

    CustomerValue.objects.all().delete()
    LifetimeFit.objects.filter(pk=failed.pk).delete()
    _value(fit, history, expected_purchases=1.2345, p_alive=0.8123, expected_spend=22.5, clv=27.7777)
    body = api.get(api_url).json()["prediction"]
    assert body["state"] == "predicted" and body["fit"]["id"] == fit.pk
    assert (body["value"]["clv"], body["value"]["p_alive"], body["value"]["segment"]) == (
        27.7777, 0.8123, "Loyal customers",
    )  # fmt: skip
    html = page.get(url).content.decode()
    assert "27.78 EUR" in html and "0.812" in html and "Loyal customers" in html


def test_page_shows_the_api_figures_chart_beside_table_and_reader_zone(client_for, history, settings):
    client = client_for(role=Role.VIEWER)
    from aicmo.models import UserPreferences

    UserPreferences.objects.update_or_create(user=client.user, defaults={"time_zone": "Asia/Kathmandu"})
    client.force_login(client.user)  # the zone is mirrored into the session at login
    session = client.session
    session["aicmo_workspace_id"] = client.workspace.pk
    session.save()
    html = client.get(f"/analytics/contacts/{history.pk}/").content.decode()
    history.refresh_from_db()
    assert chart_data(html, "score-chart")["series"][0]["data"] == [history.engagement_score]
    assert 'id="score-history"' in html and 'id="timeline"' in html and 'id="orders"' in html
    newest = expected_timeline(history.workspace, history, include_audit=False)[0][0]
    from zoneinfo import ZoneInfo

    assert newest.astimezone(ZoneInfo("Asia/Kathmandu")).strftime("%Y-%m-%d %H:%M") in html
    assert "65.00" in html and "crm.contact.merged" not in html  # a viewer: no audit entries


def test_the_crm_contact_page_links_to_the_360_view(client_for, history):
    html = client_for(role=Role.VIEWER).get(f"/crm/contacts/{history.pk}/").content.decode()
    assert f'href="/analytics/contacts/{history.pk}/"' in html


@pytest.mark.parametrize("role", [Role.ADMIN, Role.VIEWER])
def test_query_count_does_not_grow_with_events(
    client_for, api_client_for, history, role, django_assert_max_num_queries
):
    page, api = client_for(role=role), api_client_for(role=role)
    urls = (
        f"/analytics/contacts/{history.pk}/",
        f"/api/v1/analytics/contacts/{history.pk}/",
        f"/api/v1/analytics/contacts/{history.pk}/timeline/",
    )
    for client, url in zip((page, api, api), urls, strict=True):
        with django_assert_max_num_queries(16):
            assert client.get(url).status_code == 200
    campaign = make_campaigns(history.workspace, 1, prefix="More")[0]
    random_events(make_deliveries(campaign, [history]), 600, start=START, days=30, seed=11)
    for client, url in zip((page, api, api), urls, strict=True):
        with django_assert_max_num_queries(16):
            assert client.get(url).status_code == 200


def test_another_workspaces_contact_is_404_everywhere(client_for, api_client_for, history, other_workspace):
    stranger_page = client_for(role=Role.ADMIN, workspace_=other_workspace)
    stranger_api = api_client_for(role=Role.ADMIN, workspace_=other_workspace)
    assert stranger_page.get(f"/analytics/contacts/{history.pk}/").status_code == 404
    for suffix in ("", "timeline/", "?format=csv", "timeline/?format=csv"):
        resp = stranger_api.get(f"/api/v1/analytics/contacts/{history.pk}/{suffix}")
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found", suffix


def test_the_timeline_holds_only_this_contacts_rows(api_client_for, history):
    rows = (
        api_client_for(role=Role.ADMIN)
        .get(f"/api/v1/analytics/contacts/{history.pk}/timeline/?page_size=500")
        .json()["results"]
    )
    refs = {(r["source"], r["ref"]) for r in rows if r["source"] == "engagement"}
    assert refs == {
        ("engagement", pk)
        for pk in EngagementEvent.objects.filter(contact=history).values_list("pk", flat=True)
    }
    assert "n-1" not in {r["title"] for r in rows}


def test_audit_entries_read_as_the_activity_sentence_for_admins(client_for, history):
    client = client_for(role=Role.ADMIN)
    url = f"/analytics/contacts/{history.pk}/"
    html = client.get(url).content.decode() + client.get(url, {"page": 2}).content.decode()
    assert f"AICMO merged contacts into “{history.email}”" in html  # the sentence, the verb as its detail
    assert "crm.contact.merged" in html


def test_engagement_counts_read_in_words(client_for, history):
    html = client_for(role=Role.VIEWER).get(f"/analytics/contacts/{history.pk}/").content.decode()
    assert "Hard bounce" in html and "Open (person)" in html
    assert ">bounce_hard<" not in html and ">open_human<" not in html
