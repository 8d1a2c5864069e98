"""Retention of raw engagement events: only rolled-up events of cold campaigns past the age are pruned;
the daily and campaign rollups keep their figures, and later backfills or zone rebuilds never turn pruned
days into zeros."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from aicmo import retention
from analytics.models import COUNTER_FIELDS, CampaignRollup, DailyRollup
from analytics.rollups import rollup_backfill, rollup_rebuild_all, rollup_workspace
from publishing.models import EngagementEvent, EngagementKind
from publishing.retention import prune_events
from tests.analytics.generated import event, make_campaigns, make_contacts, make_deliveries

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
OLD = NOW - timedelta(days=800)  # past the 730-day default
RECENT = NOW - timedelta(days=5)


def figures(model, workspace):
    return {
        (r.campaign_id, getattr(r, "day", None), r.variant): {f: getattr(r, f) for f in COUNTER_FIELDS}
        for r in model.objects.filter(workspace=workspace)
    }


@pytest.fixture
def world(workspace, settings):
    settings.AICMO_RETENTION_EVENTS_DAYS = 730
    cold, hot = make_campaigns(workspace, 2)
    contacts = make_contacts(workspace, 4)
    cold_d, hot_d = make_deliveries(cold, contacts), make_deliveries(hot, contacts)
    EngagementEvent.objects.bulk_create(
        [event(d, EngagementKind.OPEN, OLD + timedelta(hours=i)) for i, d in enumerate(cold_d)]
        + [event(d, EngagementKind.CLICK, OLD + timedelta(hours=i)) for i, d in enumerate(cold_d[:2])]
        + [event(d, EngagementKind.OPEN, OLD) for d in hot_d]  # the hot campaign: old events …
        + [event(hot_d[0], EngagementKind.CLICK, RECENT)]  # … and a recent one
    )
    rollup_backfill(workspace_id=workspace.pk, first=(OLD - timedelta(days=2)).date(), last=NOW.date())
    rollup_workspace(workspace_id=workspace.pk, now=NOW)  # moves the watermark over every event
    return {"cold": cold, "hot": hot, "cold_deliveries": cold_d}


def test_rolled_up_events_of_cold_campaigns_past_the_age_go_and_the_figures_stay(world, workspace):
    daily, totals = figures(DailyRollup, workspace), figures(CampaignRollup, workspace)
    assert prune_events(now=NOW) == 6  # the cold campaign's 4 opens and 2 clicks
    assert not EngagementEvent.objects.filter(campaign=world["cold"]).exists()
    assert EngagementEvent.objects.filter(campaign=world["hot"]).count() == 5  # a recent event keeps it whole
    assert figures(DailyRollup, workspace) == daily and figures(CampaignRollup, workspace) == totals

    # a backfill over every day and a zone rebuild leave the pruned days' figures alone
    rollup_backfill(workspace_id=workspace.pk, first=(OLD - timedelta(days=2)).date(), last=NOW.date())
    rollup_rebuild_all(workspace_id=workspace.pk)
    assert figures(DailyRollup, workspace) == daily


def test_events_not_yet_rolled_up_are_kept_however_old(world, workspace):
    late = event(world["cold_deliveries"][0], EngagementKind.OPEN, OLD)
    EngagementEvent.objects.bulk_create([late])  # above the watermark: analytics has not counted it
    prune_events(now=NOW)
    assert list(
        EngagementEvent.objects.filter(campaign=world["cold"]).values_list("occurred_at", flat=True)
    ) == [OLD]


def test_events_without_campaign_and_other_workspaces_without_rollups_are_kept(
    world, workspace, other_workspace
):
    (campaign,) = make_campaigns(other_workspace, 1)
    (delivery,) = make_deliveries(campaign, make_contacts(other_workspace, 1))
    foreign = EngagementEvent.objects.bulk_create([event(delivery, EngagementKind.OPEN, OLD)])
    orphan = event(world["cold_deliveries"][0], EngagementKind.REPLY, OLD)
    orphan.campaign = None
    EngagementEvent.objects.bulk_create([orphan])
    rollup_workspace(workspace_id=workspace.pk, now=NOW)
    prune_events(now=NOW)
    assert EngagementEvent.objects.filter(pk=foreign[0].pk).exists()  # its workspace has no watermark
    assert EngagementEvent.objects.filter(campaign__isnull=True, kind=EngagementKind.REPLY).exists()


@pytest.mark.parametrize("days", [0, -1])
def test_zero_days_keeps_every_event(world, settings, days):
    settings.AICMO_RETENTION_EVENTS_DAYS = days
    before = EngagementEvent.objects.count()
    assert prune_events(now=NOW) == 0
    assert EngagementEvent.objects.count() == before


def test_without_a_rolled_up_source_nothing_is_pruned(world, settings):
    settings.PUBLISHING_EVENTS_ROLLED_UP = ""
    assert prune_events(now=NOW) == 0


def test_retention_runs_the_event_entry(settings):
    assert "publishing.retention.prune_events" in settings.AICMO_RETENTION
    assert retention.retention_run()["publishing.retention.prune_events"] == 0


def test_the_backfill_command_says_which_days_it_keeps(world, workspace, capsys):
    from django.core.management import call_command

    prune_events(now=NOW)
    call_command("analytics_backfill", "--from", str(date(2020, 1, 1)), "--to", str(NOW.date()))
    assert "kept as they are" in capsys.readouterr().out


def test_before_any_pruning_an_old_late_event_is_still_counted(world, workspace):
    """Only days whose raw events were actually pruned are protected; a workspace that never pruned
    rolls up an event of any age (e.g. a provider webhook carrying an old timestamp)."""
    late = event(world["cold_deliveries"][1], EngagementKind.BOUNCE_HARD, OLD - timedelta(days=30))
    EngagementEvent.objects.bulk_create([late])
    rollup_workspace(workspace_id=workspace.pk, now=NOW)
    day = (OLD - timedelta(days=30)).date()
    assert DailyRollup.objects.get(workspace=workspace, day=day).bounces == 1


def test_after_pruning_the_cut_off_is_recorded_and_older_days_are_not_rebuilt(world, workspace):
    from analytics.models import RollupWatermark

    prune_events(now=NOW)
    assert RollupWatermark.objects.get(workspace=workspace).pruned_before == NOW - timedelta(days=730)
