"""Engagement scores and tiers: checked against an independent pandas computation over the raw events
(machine opens excluded, decay, thresholds), incremental upkeep equal to a full recompute, erased and
deleted contacts, history, query counts, the settings and history API."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from aicmo.models import Job, JobStatus, Role
from analytics.models import ContactScore, ScoreHistory, ScoreSettings
from analytics.scoring import (
    DEFAULTS,
    score_settings_for,
    score_settings_update,
    scores_job_run,
    scores_recompute_start,
    scores_refresh,
)
from crm.models import Contact
from crm.services import contact_delete, contact_erase
from publishing.models import EngagementEvent
from tests.analytics.generated import event, make_campaigns, make_contacts, make_deliveries, random_events

UTC = ZoneInfo("UTC")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SETTINGS_URL = "/api/v1/analytics/scores/settings/"


def expected_scores(workspace, now: datetime, rule: dict) -> dict[int, tuple[int, str]]:
    """Score and tier of every contact with events, from the raw events with pandas (vectorized)."""
    rows = list(
        EngagementEvent.objects.filter(workspace=workspace, contact__isnull=False).values(
            "contact_id", "kind", "occurred_at", "machine"
        )
    )
    df = pd.DataFrame(rows)
    everyone = {int(c): (0, "inactive") for c in df["contact_id"].unique()}
    df = df[~df["machine"]]
    df["w"] = df["kind"].map(rule["weights"]).fillna(0.0)
    df = df[df["w"] > 0]
    age = (pd.Timestamp(now) - pd.to_datetime(df["occurred_at"], utc=True)).dt.total_seconds() / 86400
    df["part"] = df["w"] * np.power(0.5, age.clip(lower=0) / rule["half_life_days"])
    grouped = df.groupby("contact_id").agg(raw=("part", "sum"), last=("occurred_at", "max"))
    out = everyone
    for contact_id, row in grouped.iterrows():
        score = int(np.floor(100 * (1 - np.exp(-row["raw"] / rule["scale"])) + 0.5))
        if now - row["last"].to_pydatetime() > timedelta(days=rule["inactive_days"]):
            tier = "inactive"
        elif score >= rule["high_threshold"]:
            tier = "high"
        elif score >= rule["medium_threshold"]:
            tier = "medium"
        elif score >= rule["low_threshold"]:
            tier = "low"
        else:
            tier = "inactive"
        out[int(contact_id)] = (score, tier)
    return out


def stored(workspace) -> dict[int, tuple[int, str]]:
    return {
        c.pk: (c.engagement_score, c.engagement_tier)
        for c in Contact.objects.filter(workspace=workspace, engagement_tier__gt="")
    }


@pytest.fixture
def audience(workspace):
    [campaign] = make_campaigns(workspace, 1)
    contacts = make_contacts(workspace, 60)
    deliveries = make_deliveries(campaign, contacts)
    return contacts, deliveries


def test_scores_match_pandas_over_raw_events(workspace, audience):
    _, deliveries = audience
    random_events(deliveries, 1500, start=NOW - timedelta(days=200), days=200, seed=3)
    result = scores_refresh(workspace_id=workspace.pk, now=NOW, full=True)
    expected = expected_scores(workspace, NOW, DEFAULTS)
    assert stored(workspace) == expected
    assert result.contacts == len(expected)
    assert {t for _, t in expected.values()} >= {"high", "medium", "low"}  # the data exercises the tiers


def test_custom_rule_weights_half_life_and_thresholds(workspace, audience):
    _, deliveries = audience
    random_events(deliveries, 800, start=NOW - timedelta(days=60), days=60, seed=9)
    rule = {
        "weights": {"open": 2, "click": 0.5, "unsubscribe": 4},
        "half_life_days": 7.5,
        "scale": 4.0,
        "high_threshold": 80,
        "medium_threshold": 50,
        "low_threshold": 20,
        "inactive_days": 30,
    }
    score_settings_update(workspace=workspace, changes=rule)
    scores_refresh(workspace_id=workspace.pk, now=NOW, full=True)
    assert stored(workspace) == expected_scores(workspace, NOW, rule)


def test_machine_opens_never_count(workspace, audience):
    _, [d1, d2, *_] = audience
    EngagementEvent.objects.bulk_create(
        [event(d1, "open", NOW - timedelta(hours=h), machine=True) for h in range(30)]
        + [event(d2, "open", NOW - timedelta(hours=1))]
    )
    scores_refresh(workspace_id=workspace.pk, now=NOW)
    one_open = round(100 * (1 - np.exp(-1 * 0.5 ** (1 / 24 / 30) / 10)))
    assert stored(workspace) == {
        d1.contact_id: (0, "inactive"),
        d2.contact_id: (one_open, "inactive" if one_open < 10 else "low"),
    }
    assert ContactScore.objects.get(contact_id=d1.contact_id).score == 0


def test_decay_halves_the_raw_sum_each_half_life(workspace, audience):
    _, [d, *_] = audience
    EngagementEvent.objects.bulk_create([event(d, "click", NOW) for _ in range(10)])
    scores_refresh(workspace_id=workspace.pk, now=NOW)
    assert ContactScore.objects.get(contact_id=d.contact_id).raw == pytest.approx(30.0)
    scores_refresh(workspace_id=workspace.pk, now=NOW + timedelta(days=30), decay=True)
    row = ContactScore.objects.get(contact_id=d.contact_id)
    assert row.raw == pytest.approx(15.0)
    assert row.score == 78 and Contact.objects.get(pk=d.contact_id).engagement_score == 78  # 100(1 − e^-1.5)
    # 91 days without a human event: inactive whatever the score
    scores_refresh(workspace_id=workspace.pk, now=NOW + timedelta(days=91), decay=True)
    assert Contact.objects.get(pk=d.contact_id).engagement_tier == "inactive"


def test_incremental_with_decay_equals_full_recompute(workspace, audience):
    _, deliveries = audience
    random_events(deliveries, 600, start=NOW - timedelta(days=100), days=100, seed=5)
    scores_refresh(workspace_id=workspace.pk, now=NOW)
    later = NOW + timedelta(days=3, hours=5)
    # new events for some contacts, including late ones stamped weeks back
    random_events(deliveries[:15], 120, start=NOW - timedelta(days=40), days=43, seed=6)
    scores_refresh(workspace_id=workspace.pk, now=later, decay=True)
    incremental = stored(workspace)
    raws = dict(ContactScore.objects.values_list("contact_id", "raw"))
    scores_refresh(workspace_id=workspace.pk, now=later, full=True)
    assert stored(workspace) == incremental == expected_scores(workspace, later, DEFAULTS)
    for contact_id, raw in ContactScore.objects.values_list("contact_id", "raw"):
        assert raw == pytest.approx(raws[contact_id], rel=1e-9)


def test_only_contacts_with_new_events_are_recomputed(workspace, audience):
    _, deliveries = audience
    random_events(deliveries, 300, start=NOW - timedelta(days=20), days=20, seed=2)
    scores_refresh(workspace_id=workspace.pk, now=NOW)
    EngagementEvent.objects.bulk_create([event(deliveries[0], "click", NOW)])
    result = scores_refresh(workspace_id=workspace.pk, now=NOW + timedelta(days=2))
    assert result.contacts == 1
    again = scores_refresh(workspace_id=workspace.pk, now=NOW + timedelta(days=2))
    assert again.contacts == 0 and again.changed == 0


def test_erased_and_deleted_contacts_are_skipped(workspace, audience):
    contacts, deliveries = audience
    random_events(deliveries, 400, start=NOW - timedelta(days=10), days=10, seed=4)
    scores_refresh(workspace_id=workspace.pk, now=NOW)
    erased, deleted = contacts[0], contacts[1]
    assert ScoreHistory.objects.filter(contact=erased).exists()
    contact_erase(contact=erased)
    contact_delete(contact=deleted)
    EngagementEvent.objects.bulk_create([event(deliveries[0], "click", NOW)])  # an erased contact's event
    scores_refresh(workspace_id=workspace.pk, now=NOW + timedelta(hours=1), full=True)
    assert not ContactScore.objects.filter(contact_id__in=[erased.pk, deleted.pk]).exists()
    assert not ScoreHistory.objects.filter(contact_id__in=[erased.pk, deleted.pk]).exists()
    assert Contact.objects.get(pk=erased.pk).engagement_score == 0


def test_history_keeps_one_row_per_changed_day(workspace, audience, berlin):
    _, [d, *_] = audience
    EngagementEvent.objects.bulk_create([event(d, "reply", NOW)])
    scores_refresh(workspace_id=workspace.pk, now=NOW)
    EngagementEvent.objects.bulk_create([event(d, "reply", NOW + timedelta(hours=2))])
    scores_refresh(workspace_id=workspace.pk, now=NOW + timedelta(hours=2))  # same local day: row updated
    scores_refresh(workspace_id=workspace.pk, now=NOW + timedelta(hours=3), decay=True)  # unchanged score
    # 22:30 UTC is 00:30 the next day in Berlin (summer time): a new history day
    scores_refresh(workspace_id=workspace.pk, now=datetime(2026, 6, 7, 22, 30, tzinfo=UTC), decay=True)
    days = list(ScoreHistory.objects.filter(contact_id=d.contact_id).values_list("day", "score"))
    assert [day.isoformat() for day, _ in days] == ["2026-06-01", "2026-06-08"]
    assert days[0][1] == 63  # two replies: raw ≈ 10 → 63


def test_query_count_is_bounded_per_chunk(workspace, django_assert_max_num_queries):
    [campaign] = make_campaigns(workspace, 1)
    deliveries = make_deliveries(campaign, make_contacts(workspace, 300))
    random_events(deliveries, 2000, start=NOW - timedelta(days=30), days=30, seed=8)
    with django_assert_max_num_queries(30):  # SQLite splits a 300-row bulk write into 3 statements
        result = scores_refresh(workspace_id=workspace.pk, now=NOW, full=True)
    assert result.changed > 250


def test_other_workspaces_are_untouched(workspace, other_workspace, audience):
    _, deliveries = audience
    [theirs] = make_campaigns(other_workspace, 1)
    their_deliveries = make_deliveries(theirs, make_contacts(other_workspace, 5, prefix="o"))
    random_events(their_deliveries, 50, start=NOW - timedelta(days=5), days=5, seed=1)
    random_events(deliveries, 50, start=NOW - timedelta(days=5), days=5, seed=1)
    scores_refresh(workspace_id=workspace.pk, now=NOW, full=True)
    assert not ContactScore.objects.filter(workspace=other_workspace).exists()
    assert stored(other_workspace) == {}


def test_settings_change_starts_a_full_recompute_job(workspace, audience, django_capture_on_commit_callbacks):
    _, deliveries = audience
    random_events(deliveries, 300, start=NOW - timedelta(days=20), days=20, seed=2)
    with django_capture_on_commit_callbacks() as callbacks:
        _, job = score_settings_update(workspace=workspace, changes={"weights": {"click": 10}})
    assert job is not None and job.kind == "scores" and len(callbacks) == 1
    scores_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.done == job.total > 0
    now = ContactScore.objects.values_list("raw_at", flat=True).first()
    rule = {**DEFAULTS, "weights": {"click": 10.0}}
    assert stored(workspace) == expected_scores(workspace, now, rule)
    _, unchanged = score_settings_update(workspace=workspace, changes={"weights": {"click": 10}})
    assert unchanged is None


def test_decay_job_runs_the_daily_pass(workspace, audience):
    _, [d, *_] = audience
    EngagementEvent.objects.bulk_create([event(d, "click", NOW - timedelta(days=1))])
    scores_refresh(workspace_id=workspace.pk, now=NOW - timedelta(days=1))
    job = scores_recompute_start(workspace=workspace, decay=True)
    scores_job_run(job_id=job.pk)
    assert Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED
    assert ContactScore.objects.get(contact_id=d.contact_id).raw < 3.0


@pytest.mark.parametrize(
    "changes",
    [
        {"weights": {"bogus": 1}},
        {"weights": {"open": -1}},
        {"weights": ["open"]},
        {"high_threshold": 30},
        {"low_threshold": 0},
        {"half_life_days": 0},
        {"nonsense": 1},
    ],
)
def test_settings_api_rejects_bad_rules(api_client_for, changes):
    client = api_client_for(role=Role.ADMIN)
    response = client.patch(SETTINGS_URL, changes, format="json")
    assert response.status_code == 400, response.content
    assert not ScoreSettings.objects.exists()


def test_settings_api_roles_and_isolation(api_client_for, other_workspace):
    admin = api_client_for(role=Role.ADMIN)
    body = admin.get(SETTINGS_URL).json()
    assert body["weights"] == DEFAULTS["weights"] and body["half_life_days"] == 30.0
    viewer = api_client_for(role=Role.VIEWER)
    assert viewer.get(SETTINGS_URL).status_code == 200
    assert viewer.patch(SETTINGS_URL, {"scale": 5}, format="json").status_code == 403
    marketer = api_client_for(role=Role.MARKETER)
    assert marketer.patch(SETTINGS_URL, {"scale": 5}, format="json").status_code == 403
    response = admin.patch(SETTINGS_URL, {"scale": 5, "weights": {"click": 4}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["scale"] == 5.0 and response.json()["job"] is not None
    theirs = api_client_for(role=Role.ADMIN, workspace_=other_workspace)
    assert theirs.get(SETTINGS_URL).json()["scale"] == 10.0
    assert score_settings_for(admin.workspace).scale == 5.0


def test_contact_history_api(api_client_for, other_workspace):
    client = api_client_for(role=Role.VIEWER)
    [campaign] = make_campaigns(client.workspace, 1)
    [d] = make_deliveries(campaign, make_contacts(client.workspace, 1))
    EngagementEvent.objects.bulk_create([event(d, "click", NOW)])
    scores_refresh(workspace_id=client.workspace.pk, now=NOW)
    url = f"/api/v1/analytics/scores/contacts/{d.contact_id}/history/"
    body = client.get(url).json()
    assert body["contact"] == d.contact_id and body["score"] == 26 and body["tier"] == "low"
    assert body["history"] == [{"day": "2026-06-01", "score": 26, "tier": "low"}]
    csv_body = b"".join(client.get(url + "?format=csv").streaming_content).decode()
    assert csv_body.splitlines() == ["day,score,tier", "2026-06-01,26,low"]
    stranger = api_client_for(role=Role.ADMIN, workspace_=other_workspace)
    assert stranger.get(url).status_code == 404


def test_score_tasks_are_on_the_beat_schedule_and_the_rollups_queue(db):
    from django_celery_beat.models import PeriodicTask

    from aicmo.celery import app

    tick = PeriodicTask.objects.get(task="analytics.tasks.score_tick_task")
    decay = PeriodicTask.objects.get(task="analytics.tasks.score_decay_task")
    assert (tick.interval.every, tick.interval.period) == (5, "minutes")
    assert (decay.interval.every, decay.interval.period) == (1, "days")
    for name in ("score_tick_task", "score_decay_task", "scores_job_task"):
        assert app.amqp.router.route({}, f"analytics.tasks.{name}")["queue"].name == "rollups"


def test_a_rule_change_is_recomputed_by_a_rollups_worker(celery_worker_on):
    from tests.crm.test_celery import wait_finished
    from tests.factories import WorkspaceFactory

    workspace = WorkspaceFactory(slug="scores-worker")
    [campaign] = make_campaigns(workspace, 1)
    deliveries = make_deliveries(campaign, make_contacts(workspace, 20))
    random_events(deliveries, 200, start=NOW - timedelta(days=20), days=20, seed=2)
    with celery_worker_on(["rollups"]):
        _, job = score_settings_update(workspace=workspace, changes={"weights": {"click": 6}})
        job = wait_finished(job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.done == job.total == 20
    now = ContactScore.objects.values_list("raw_at", flat=True).first()
    assert stored(workspace) == expected_scores(workspace, now, {**DEFAULTS, "weights": {"click": 6.0}})
