"""Trends, cohorts and scores pages: what each role sees and may change, tenant isolation, bad input shown
as errors (never a 500), the chart data in a JSON block beside a table, query counts."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta

import pytest

from aicmo.models import Role
from analytics.cohorts import add_periods, period_start
from analytics.models import CampaignRollup, DailyRollup, ScoreSettings
from analytics.rollups import workspace_zone
from crm.models import Contact, ContactList
from publishing.models import EngagementEvent
from tests.analytics.generated import event, make_campaigns, make_contacts, make_deliveries

TRENDS, COHORTS, SCORES = "/analytics/trends/", "/analytics/cohorts/", "/analytics/scores/"


def chart_data(html: str, element_id: str) -> dict:
    found = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert found, f"no {element_id} JSON block"
    return json.loads(found.group(1))


@pytest.fixture
def series(workspace):
    [campaign] = make_campaigns(workspace, 1, prefix="Ours")
    first = date(2026, 1, 1)
    DailyRollup.objects.bulk_create(
        [
            DailyRollup(
                workspace=workspace, campaign=campaign, channel="email", day=first + timedelta(days=i),
                sent=100, unique_clicks=10 + (40 if i == 20 else i % 3),
            )
            for i in range(40)
        ]
    )  # fmt: skip
    return campaign


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ADMIN])
def test_trends_page_chart_table_and_anomaly(client_for, series, role, django_assert_max_num_queries):
    client = client_for(role=role)
    with django_assert_max_num_queries(12):
        response = client.get(TRENDS + "?metric=unique_clicks&date_from=2026-01-01&date_to=2026-02-09")
    assert response.status_code == 200
    html = response.content.decode()
    data = chart_data(html, "trend-chart")
    assert data["labels"][0] == "2026-01-01" and len(data["series"][0]["data"]) == 40
    assert data["series"][3]["data"][20] == 50  # the anomaly marker
    assert 'id="trend-table"' in html and "2026-01-21" in html.split('id="anomalies"')[1].split("</table>")[0]
    assert "Ours" in html


def test_the_csv_links_answer_the_choices_the_form_shows(client_for, api_client_for, series):
    """ "All" in a select is an empty value: the page leaves it out, and so does its CSV link (the API refuses
    an empty choice, aicmo.api.filters.query_value_errors)."""
    for page, fields in (
        (TRENDS, "metric=unique_clicks&campaign=&channel="),
        (COHORTS, "grain=month&basis="),
    ):
        html = client_for(role=Role.VIEWER).get(f"{page}?{fields}").content.decode()
        [link] = re.findall(r'href="(/api/v1/[^"]+format=csv)"', html)
        response = api_client_for(Role.VIEWER).get(link.replace("&amp;", "&"))
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv"), link


def test_pages_show_input_errors_not_500(client_for):
    client = client_for(role=Role.VIEWER)
    bad_trend = client.get(TRENDS + "?metric=nope&date_from=2026-13-01")
    assert bad_trend.status_code == 200 and "metric" in bad_trend.content.decode()
    bad_cohort = client.get(COHORTS + "?grain=day&periods=999")
    assert bad_cohort.status_code == 200 and "grain" in bad_cohort.content.decode()


def test_pages_are_tenant_isolated(client_for, series, other_workspace):
    stranger = client_for(role=Role.ADMIN, workspace_=other_workspace)
    html = stranger.get(
        TRENDS + "?metric=unique_clicks&date_from=2026-01-01&date_to=2026-02-09"
    ).content.decode()
    assert "Ours" not in html and set(chart_data(html, "trend-chart")["series"][0]["data"]) == {0.0}
    foreign = stranger.get(TRENDS + f"?campaign={series.pk}")
    assert foreign.status_code == 200 and "No such campaign" in foreign.content.decode()
    Contact.objects.bulk_create(
        [Contact(workspace=series.workspace, email="mine@example.com", engagement_tier="high")]
    )
    tiers = chart_data(stranger.get(SCORES).content.decode(), "tier-chart")
    assert tiers["series"][0]["data"][0] == 0  # their high tier holds none of ours


def test_cohort_page_and_save_list_by_role(client_for, workspace):
    contacts = make_contacts(workspace, 3)
    [campaign] = make_campaigns(workspace, 1)
    deliveries = make_deliveries(campaign, contacts)
    # The cohort is the workspace-local ISO week the contacts were first seen in (it starts on a Monday):
    # clicks in its fifth week after, whatever weekday the test runs on (created + 40 days was period 5 on
    # a Monday or Tuesday and period 6 on any other day).
    zone = workspace_zone(workspace.pk)
    cohort = period_start(contacts[0].created_at.astimezone(zone).date(), "week")
    click_at = datetime.combine(add_periods(cohort, 5, "week") + timedelta(days=3), time(12), tzinfo=zone)
    EngagementEvent.objects.bulk_create([event(d, "click", click_at) for d in deliveries[:2]])
    marketer = client_for(role=Role.MARKETER)
    page = marketer.get(COHORTS).content.decode()
    assert 'id="cohorts"' in page and "Save list" in page
    response = marketer.post(
        COHORTS,
        {"basis": "first_seen", "grain": "week", "activity": "engagement", "cohort": cohort.isoformat(),
         "period": 5, "name": "Week five"},
    )  # fmt: skip
    saved = ContactList.objects.get(name="Week five")
    assert response.status_code == 302 and saved.contacts.count() == 2
    viewer = client_for(role=Role.VIEWER)
    assert "Save list" not in viewer.get(COHORTS).content.decode()
    denied = viewer.post(COHORTS, {"basis": "first_seen", "cohort": "2026-01-01", "period": 0, "name": "No"})
    assert denied.status_code == 403 and not ContactList.objects.filter(name="No").exists()


def test_scores_page_viewer_reads_admin_changes(client_for, django_capture_on_commit_callbacks):
    viewer = client_for(role=Role.VIEWER)
    page = viewer.get(SCORES)
    assert page.status_code == 200 and 'id="rule"' in page.content.decode()
    assert viewer.post(SCORES, {"scale": "5"}).status_code == 403
    marketer = client_for(role=Role.MARKETER)
    assert marketer.post(SCORES, {"scale": "5"}).status_code == 403
    assert not ScoreSettings.objects.exists()
    admin = client_for(role=Role.ADMIN)
    assert "Save and recompute" in admin.get(SCORES).content.decode()
    with django_capture_on_commit_callbacks():
        response = admin.post(SCORES, {"scale": "5", "weight_click": "4", "weight_open": "0.5"})
    assert response.status_code == 302
    rule = ScoreSettings.objects.get(workspace=admin.workspace)
    assert rule.scale == 5 and rule.weights == {"click": 4.0, "open": 0.5}
    bad = admin.post(SCORES, {"high_threshold": "20"}, follow=True)
    assert "low &lt; medium &lt; high" in bad.content.decode() or "0 &lt; low" in bad.content.decode()
    assert ScoreSettings.objects.get(workspace=admin.workspace).high_threshold == 70


def test_overview_kpi_chart_matches_the_api(client_for, api_client_for, series):
    CampaignRollup.objects.create(
        workspace=series.workspace, campaign=series, channel="email", sent=100, bounces=5, unique_opens_human=38,
        unique_clicks=19,
    )  # fmt: skip
    page = client_for(role=Role.VIEWER).get("/analytics/").content.decode()
    data = chart_data(page, "kpi-chart")
    api = api_client_for(role=Role.VIEWER).get("/api/v1/analytics/figures/overview/").json()
    assert data["labels"][:2] == ["Open rate", "CTR"] and 'id="kpis"' in page
    keys = ["open_rate", "ctr", "ctor", "cvr", "unsubscribe_rate", "bounce_rate"]
    assert data["series"][0]["data"] == [api[k] for k in keys]
    assert data["series"][0]["data"][:3] == [0.4, 0.2, 0.5]


def test_contact_score_history_page(client_for, other_workspace):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from analytics.scoring import scores_refresh

    viewer = client_for(role=Role.VIEWER)
    [campaign] = make_campaigns(viewer.workspace, 1)
    [d] = make_deliveries(campaign, make_contacts(viewer.workspace, 1))
    now = datetime(2026, 6, 1, 12, tzinfo=ZoneInfo("UTC"))
    EngagementEvent.objects.bulk_create([event(d, "click", now)])
    scores_refresh(workspace_id=viewer.workspace.pk, now=now)
    url = f"/analytics/contacts/{d.contact_id}/scores/"
    html = viewer.get(url).content.decode()
    assert chart_data(html, "score-chart") == {
        "type": "line", "labels": ["2026-06-01"], "series": [{"label": "Score", "data": [26]}],
    }  # fmt: skip
    assert 'id="score-history"' in html
    stranger = client_for(role=Role.ADMIN, workspace_=other_workspace)
    assert stranger.get(url).status_code == 404
