"""The analytics demo seed: on a fresh workspace every analytics page answers and shows figures computed by
the production services from the seeded campaigns, events and orders; a second run adds nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from aicmo.models import Role
from analytics import demo
from analytics.models import CampaignRollup, ContactScore, CustomerValue, DailyRollup, LifetimeFit, Order
from analytics.rollups import local_today
from crm.models import Contact
from media import demo as media_demo
from publishing.models import Campaign, Delivery, EngagementEvent

pytestmark = pytest.mark.django_db

API = "/api/v1/analytics/"


def _counts(workspace) -> tuple:
    return tuple(
        model.objects.filter(workspace=workspace).count()
        for model in (Contact, Campaign, Delivery, EngagementEvent, Order, DailyRollup, CampaignRollup,
                      ContactScore, CustomerValue, LifetimeFit)
    )  # fmt: skip


@pytest.fixture
def seeded(workspace, member_factory):
    users = {
        name: member_factory(workspace, role)
        for name, role in (("admin", Role.ADMIN), ("marketer", Role.MARKETER), ("reviewer", Role.REVIEWER))
    }
    media_demo.seed(workspace, users=users)  # approved images the demo emails embed
    with CaptureQueriesContext(connection) as queries:
        demo.seed(workspace, users=users)
    return users, len(queries)


def test_seed_fills_every_analytics_page_with_figures(seeded, workspace, client_for, api_client_for):
    _, queries = seeded
    assert queries < 3000  # bulk writes: a fixed number per campaign and per 2,000 rows, not per row
    today = local_today(workspace.pk)
    page, api = client_for(Role.VIEWER), api_client_for(Role.VIEWER)

    # overview: totals of every campaign and the last 30 days' KPIs
    assert page.get("/analytics/").status_code == 200
    kpis = api.get(f"{API}figures/kpis/", {"days": 30}).json()
    current = {k["key"]: k["current"] for k in kpis["kpis"]}
    assert current["sent"] > 0 and current["unique_clicks"] > 0 and Decimal(current["revenue"]) > 0
    assert kpis["campaigns_active"] >= 4

    # campaign comparison: the flash sale against a digest, with a significance test
    flash = Campaign.objects.get(workspace=workspace, name__startswith=demo.FLASH)
    digest = Campaign.objects.filter(workspace=workspace, name__startswith=demo.DIGEST).order_by("-pk")[1]
    assert page.get(f"/analytics/campaigns/{flash.pk}/").status_code == 200
    compared = api.get(f"{API}campaigns/compare/", {"campaigns": f"{digest.pk},{flash.pk}", "metric": "ctr"})
    rows = compared.json()["campaigns"]
    assert compared.status_code == 200 and all(r["sent"] > 100 for r in rows)
    assert rows[1]["test"]["p_value"] is not None

    # channel ranking
    channels = api.get(f"{API}figures/channels/", {"metric": "ctr"}).json()["channels"]
    assert channels and channels[0]["channel"] == "email" and channels[0]["ctr"] > 0

    # contact 360 of a repeat buyer: orders, engagement, score and prediction (of the buyers with 4+ orders,
    # the one sent the most: the demo is anchored to today, so who signed up first, or bought most, can be a
    # late signup with one send; that choice failed on one day's data)
    buyers = (
        Order.objects.filter(workspace=workspace).values("contact_id").annotate(n=Count("id"))
        .filter(n__gte=4).values_list("contact_id", flat=True)
    )  # fmt: skip
    buyer_id = (
        Delivery.objects.filter(workspace=workspace, contact_id__in=list(buyers)).values("contact_id")
        .annotate(n=Count("id")).order_by("-n", "contact_id").values_list("contact_id", flat=True)[0]
    )  # fmt: skip
    assert page.get(f"/analytics/contacts/{buyer_id}/").status_code == 200
    figures = api.get(f"{API}contacts/{buyer_id}/").json()
    assert figures["orders"][0]["orders"] >= 4 and Decimal(figures["orders"][0]["revenue"]) > 0
    assert figures["prediction"]["state"] == "predicted" and figures["prediction"]["value"]["clv"] is not None
    assert (
        figures["score"]["tier"]
        and figures["engagement"]["sent"] > 10
        and figures["engagement"]["open_human"] > 0
    )

    # cohorts: first seen (engagement) and first order (repeat orders) over many months
    assert page.get("/analytics/cohorts/").status_code == 200
    for basis, activity in (("first_seen", "engagement"), ("first_order", "order")):
        matrix = api.get(f"{API}cohorts/retention/", {"basis": basis, "activity": activity}).json()
        filled = [c for c in matrix["cohorts"] if c["size"] > 0]
        assert len(filled) >= 10, basis
        assert sum(sum(c["active"][1:]) for c in filled) > 0, basis  # later periods are active too

    # lifetime value / CLV, tiers and RFM distributions from a finished fit as of yesterday
    fit = LifetimeFit.objects.get(workspace=workspace)
    assert fit.finished_at and fit.observation_date == today - timedelta(days=1) and not fit.error
    assert fit.customers > 300 and fit.bgnbd["converged"]
    assert page.get("/analytics/lifetime/").status_code == 200
    distribution = api.get(f"{API}customer-values/distribution/").json()
    assert sum(b["customers"] for b in distribution["clv"]) > 300
    assert sum(1 for s in distribution["segments"] if s["customers"]) >= 6
    assert sum(c["customers"] for c in distribution["rfm_grid"]) == fit.customers

    # engagement scores: every tier present
    assert page.get("/analytics/scores/").status_code == 200
    tiers = set(
        Contact.objects.filter(workspace=workspace, source="demo").values_list("engagement_tier", flat=True)
    )
    assert {"high", "medium", "low", "inactive"} <= tiers

    # trends: the default page (engagements, the last 90 days) flags the flash sale
    response = page.get("/analytics/trends/")
    assert response.status_code == 200
    trend = api.get(f"{API}trends/series/", {"metric": "engagements"}).json()
    flagged = {a["day"] for a in trend["anomalies"]}
    assert flash.started_at.date().isoformat() in flagged  # sent at 11:00 local: the same day in UTC
    assert sum(1 for p in trend["points"] if p["value"]) >= 80

    # media assets: campaign figures of the embedded images and the channels' reported figures
    assert page.get("/analytics/assets/").status_code == 200
    assets = api.get(f"{API}figures/assets/").json()["assets"]
    assert assets[0]["sent"] > 1000 and assets[0]["unique_clicks"] > 0 and assets[0]["campaigns"] >= 2


def test_seed_twice_adds_nothing_and_other_workspaces_see_none(
    seeded, workspace, other_workspace, api_client_for
):
    users, _ = seeded
    before = _counts(workspace)
    with CaptureQueriesContext(connection) as queries:
        demo.seed(workspace, users=users)
    assert _counts(workspace) == before and len(queries) <= 2
    outsider = api_client_for(Role.ADMIN, workspace_=other_workspace)
    assert outsider.get(f"{API}figures/channels/").json()["channels"] == []
    assert outsider.get(f"{API}customer-values/").json()["results"] == []
