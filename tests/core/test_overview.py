"""The home overview: per-area counts with their 7-day change, the getting-started checklist ticked from
real rows, jobs running now with a live (HTMX-polled) progress bar, recent activity in words; tenant
isolation, roles and a query-count guard."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from aicmo.models import JobStatus
from aicmo.overview import getting_started, overview_figures, verb_words
from crm.models import Contact, ImportRun
from publishing.models import Campaign, CampaignStatus
from tests.crm.factories import ContactFactory
from tests.factories import AuditEventFactory, JobFactory
from tests.gateway.factories import ProviderAccountFactory
from tests.media.factories import MediaAssetFactory
from tests.publishing.conftest import make_campaign


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _steps(workspace) -> dict[str, bool]:
    return {s.label: s.done for s in getting_started(workspace)}


def test_a_new_workspace_sees_the_checklist_with_nothing_done(client_for):
    client = client_for("marketer")
    page = client.get("/").content.decode()
    assert "Getting started" in page and "(4 of 4 left)" in page
    for label in ("Import contacts", "Connect a provider", "Upload brand assets", "Send a first campaign"):
        assert label in page
    assert _steps(client.workspace) == {
        "Import contacts": False,
        "Connect a provider": False,
        "Upload brand assets": False,
        "Send a first campaign": False,
    }


def test_checklist_steps_tick_from_real_rows(workspace):
    # A demo provider and an import that has not finished do not count.
    ProviderAccountFactory(workspace=workspace, adapter="demo_verification")
    job = JobFactory(workspace=workspace, kind="crm.import", status=JobStatus.RUNNING)
    ImportRun.objects.create(workspace=workspace, job=job, file="crm/imports/x.csv")
    assert not any(_steps(workspace).values())
    job.status = JobStatus.SUCCEEDED
    job.save()
    ProviderAccountFactory(workspace=workspace, adapter="hunter", capability="enrich_person")
    MediaAssetFactory(workspace=workspace)
    campaign = make_campaign(workspace, 1)
    assert _steps(workspace)["Send a first campaign"] is False  # a draft has not sent
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.SENT)
    assert _steps(workspace) == {
        "Import contacts": True,
        "Connect a provider": True,
        "Upload brand assets": True,
        "Send a first campaign": True,
    }


def test_a_disabled_real_provider_is_not_connected(workspace):
    ProviderAccountFactory(workspace=workspace, adapter="hunter", capability="enrich_person", enabled=False)
    assert _steps(workspace)["Connect a provider"] is False


def test_figures_count_totals_and_the_last_seven_days_for_this_workspace_only(workspace, other_workspace):
    now = timezone.now()
    old = ContactFactory.create_batch(3, workspace=workspace)
    Contact.objects.filter(pk__in=[c.pk for c in old]).update(created_at=now - dt.timedelta(days=8))
    ContactFactory.create_batch(2, workspace=workspace)
    ContactFactory.create_batch(4, workspace=other_workspace)
    figures = {f.label: (f.total, f.added) for f in overview_figures(workspace, now=now)}
    assert figures["Contacts"] == (5, 2) and figures["Assets"] == (0, 0)
    # The boundary: exactly seven days ago counts as inside the window.
    Contact.objects.filter(pk=old[0].pk).update(created_at=now - dt.timedelta(days=7))
    figures = {f.label: (f.total, f.added) for f in overview_figures(workspace, now=now)}
    assert figures["Contacts"] == (5, 3)


def test_home_shows_grouped_counts_and_hides_the_checklist_when_done(client_for):
    client = client_for("viewer")
    ContactFactory.create_batch(3, workspace=client.workspace)
    page = client.get("/").content.decode()
    assert '<strong class="figure-total">3</strong>' in page and "+3 in 7 days" in page
    job = JobFactory(workspace=client.workspace, kind="crm.import", status=JobStatus.SUCCEEDED)
    ImportRun.objects.create(workspace=client.workspace, job=job, file="crm/imports/x.csv")
    ProviderAccountFactory(workspace=client.workspace, adapter="hunter", capability="enrich_person")
    MediaAssetFactory(workspace=client.workspace)
    campaign = make_campaign(client.workspace, 1)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.SENT)
    assert "Getting started" not in client.get("/").content.decode()


def test_running_jobs_poll_their_progress_and_finished_ones_are_listed(client_for, other_workspace):
    client = client_for("marketer")
    running = JobFactory(workspace=client.workspace, label="Importing fair.csv", status=JobStatus.RUNNING)
    done = JobFactory(
        workspace=client.workspace, label="Old export", status=JobStatus.SUCCEEDED, finished_at=timezone.now()
    )
    JobFactory(workspace=other_workspace, label="Their secret job", status=JobStatus.RUNNING)
    page = client.get("/").content.decode()
    running_part, recent_part = page.split("Recent jobs", 1)
    assert f'hx-get="/jobs/{running.pk}/progress/"' in running_part and "Importing fair.csv" in running_part
    assert "Old export" in recent_part and f"/jobs/{done.pk}/progress/" not in page
    assert "Their secret job" not in page


@pytest.mark.parametrize(
    ("verb", "words"),
    [
        ("crm.contact.deleted", "deleted contact"),
        ("media.asset_usage.added", "added asset usage"),
        ("audit.exported", "exported audit"),
        ("login", "login"),
        ("", ""),
    ],
)
def test_verb_words(verb, words):
    assert verb_words(verb) == words


def test_home_query_count_is_flat(client_for, django_assert_max_num_queries):
    client = client_for("admin")
    ContactFactory.create_batch(30, workspace=client.workspace)
    for i in range(10):
        JobFactory(workspace=client.workspace, label=f"job {i}", status=JobStatus.RUNNING)
        AuditEventFactory(workspace=client.workspace, verb="crm.contact.created")
    with django_assert_max_num_queries(26):  # analytics' 7-day KPI panel: four rollup queries
        assert client.get("/").status_code == 200


def test_big_counts_are_grouped_on_the_overview_and_the_contact_list(client_for):
    client = client_for("viewer")
    Contact.objects.bulk_create(
        [Contact(workspace=client.workspace, email=f"bulk{i}@example.com") for i in range(1234)]
    )
    assert '<strong class="figure-total">1,234</strong>' in client.get("/").content.decode()
    assert "1,234 contacts" in client.get("/crm/").content.decode()


def test_home_shows_analytics_kpis_of_the_last_seven_days_with_sparklines(client_for, api_client_for):
    import json
    import re

    from analytics.models import DailyRollup
    from analytics.rollups import local_today

    client = client_for("viewer")
    campaign = make_campaign(client.workspace, 1)
    today = local_today(client.workspace.pk)
    DailyRollup.objects.bulk_create(
        [
            DailyRollup(workspace=client.workspace, campaign=campaign, channel="email",
                        day=today - dt.timedelta(days=i), sent=10 * (i + 1), unique_clicks=i)
            for i in range(14)
        ]
    )  # fmt: skip
    page = client.get("/").content.decode()
    api = api_client_for(role="viewer").get("/api/v1/analytics/figures/kpis/?days=7").json()
    sent = next(k for k in api["kpis"] if k["key"] == "sent")
    assert (sent["current"], sent["previous"]) == (280, 770)  # 10+…+70 against 80+…+140
    spark = json.loads(
        re.search(r'<script id="spark-sent" type="application/json">(.*?)</script>', page, re.S)[1]
    )
    assert spark["series"][0]["data"] == sent["series"] == [70, 60, 50, 40, 30, 20, 10]
    assert 'id="home-kpis"' in page and 'id="kpi-table"' in page and "<td>280</td><td>770</td>" in page
