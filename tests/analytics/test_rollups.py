"""Rollups against an independent computation (pandas over raw events), incrementality, late events,
midnight and DST boundaries, erased contacts, idempotency and the backfill command."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone

from analytics.models import COUNTER_FIELDS, CampaignRollup, DailyRollup, RollupWatermark
from analytics.rollups import rollup_backfill, rollup_tick, rollup_workspace
from crm.services import contact_erase
from publishing.models import EngagementEvent, EngagementKind
from tests.analytics.generated import (
    event,
    events_frame,
    expected_counters,
    make_campaigns,
    make_contacts,
    make_deliveries,
    random_events,
)

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def rollup_rows(model, keys):
    return {
        tuple(getattr(r, k) for k in keys): {f: getattr(r, f) for f in COUNTER_FIELDS}
        for r in model.objects.all()
    }


def world(workspace, *, n_campaigns=3, n_contacts=40, n_events=3000, start=None, days=20, seed=7):
    campaigns = make_campaigns(workspace, n_campaigns)
    contacts = make_contacts(workspace, n_contacts)
    deliveries = [d for c in campaigns for d in make_deliveries(c, contacts)]
    start = start or datetime(2026, 3, 15, tzinfo=UTC)  # spans the Europe/Berlin DST change of 29 March
    random_events(deliveries, n_events, start=start, days=days, seed=seed)
    return campaigns, contacts, deliveries


def test_daily_and_campaign_rollups_equal_pandas_over_raw_events_across_dst(
    berlin, workspace, other_workspace
):
    world(workspace)
    world(other_workspace, n_events=500, seed=9)  # must not leak into the first workspace's rows
    rollup_backfill(workspace_id=workspace.pk, first=date(2026, 3, 1), last=date(2026, 4, 30))

    df = events_frame(workspace, "Europe/Berlin")
    daily = {
        (k[0], k[1], k[2], k[3]): v
        for k, v in expected_counters(df, ["campaign_id", "channel", "variant", "day"]).items()
    }
    got = rollup_rows(DailyRollup, ["campaign_id", "channel", "variant", "day"])
    assert got == daily
    assert {r.workspace_id for r in DailyRollup.objects.all()} == {workspace.pk}

    totals = expected_counters(df, ["campaign_id", "channel", "variant"])
    assert rollup_rows(CampaignRollup, ["campaign_id", "channel", "variant"]) == totals
    # campaign uniques are not the sum of daily uniques (a recipient opening on two days counts once)
    summed = sum(v["unique_opens_human"] for v in daily.values())
    assert sum(v["unique_opens_human"] for v in totals.values()) < summed


@pytest.mark.parametrize(
    ("utc_instant", "local_day"),
    [
        (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), date(2026, 3, 29)),  # Berlin midnight (CET, UTC+1)
        (datetime(2026, 3, 28, 22, 59, 59, tzinfo=UTC), date(2026, 3, 28)),
        (datetime(2026, 3, 29, 22, 0, tzinfo=UTC), date(2026, 3, 30)),  # Berlin midnight after DST (UTC+2)
        (datetime(2026, 3, 29, 21, 59, 59, tzinfo=UTC), date(2026, 3, 29)),  # the 23-hour day's last second
        (datetime(2026, 10, 24, 22, 0, tzinfo=UTC), date(2026, 10, 25)),  # the 25-hour day starts
        (datetime(2026, 10, 25, 22, 59, 59, tzinfo=UTC), date(2026, 10, 25)),  # …and ends
        (datetime(2026, 10, 25, 23, 0, tzinfo=UTC), date(2026, 10, 26)),
    ],
)
def test_events_at_local_midnight_and_across_dst_land_on_the_local_day(
    berlin, workspace, utc_instant, local_day
):
    (campaign,) = make_campaigns(workspace, 1)
    (delivery,) = make_deliveries(campaign, make_contacts(workspace, 1))
    EngagementEvent.objects.bulk_create([event(delivery, EngagementKind.OPEN, utc_instant)])
    rollup_backfill(
        workspace_id=workspace.pk, first=local_day - timedelta(days=2), last=local_day + timedelta(days=2)
    )
    assert list(DailyRollup.objects.values_list("day", "opens")) == [(local_day, 1)]
    assert utc_instant.astimezone(BERLIN).date() == local_day


def test_incremental_tick_picks_up_late_events_and_is_idempotent(berlin, workspace):
    campaigns, _, deliveries = world(workspace, n_events=800, start=datetime(2026, 5, 1, tzinfo=UTC), days=10)
    now = datetime(2026, 5, 20, 12, tzinfo=UTC)
    rollup_workspace(workspace_id=workspace.pk, now=now)
    first_pass = rollup_rows(DailyRollup, ["campaign_id", "channel", "variant", "day"])
    mark = RollupWatermark.objects.get(workspace=workspace)
    assert mark.last_event_id == EngagementEvent.objects.latest("id").id

    # a late event, 19 days old, far outside the re-roll window: the id watermark still finds its day
    late = event(deliveries[0], EngagementKind.CLICK, datetime(2026, 5, 1, 6, tzinfo=UTC), variant="A")
    EngagementEvent.objects.bulk_create([late])
    rollup_workspace(workspace_id=workspace.pk, now=now)
    rollup_workspace(workspace_id=workspace.pk, now=now)  # re-run: same rows
    df = events_frame(workspace, "Europe/Berlin")
    expected = expected_counters(df, ["campaign_id", "channel", "variant", "day"])
    assert rollup_rows(DailyRollup, ["campaign_id", "channel", "variant", "day"]) == expected
    assert rollup_rows(DailyRollup, ["campaign_id", "channel", "variant", "day"]) != first_pass
    assert rollup_rows(CampaignRollup, ["campaign_id", "channel", "variant"]) == expected_counters(
        df, ["campaign_id", "channel", "variant"]
    )


def test_rerolled_recent_days_see_deleted_events_and_backfill_is_exact(berlin, workspace):
    world(workspace, n_events=600, start=datetime(2026, 6, 1, tzinfo=UTC), days=5)
    now = datetime(2026, 6, 6, 12, tzinfo=UTC)
    rollup_workspace(workspace_id=workspace.pk, now=now)
    EngagementEvent.objects.filter(occurred_at__gte=datetime(2026, 6, 5, tzinfo=UTC)).delete()
    rollup_workspace(workspace_id=workspace.pk, now=now)  # no new ids, but the last 3 days are re-rolled
    expected = expected_counters(
        events_frame(workspace, "Europe/Berlin"), ["campaign_id", "channel", "variant", "day"]
    )
    assert rollup_rows(DailyRollup, ["campaign_id", "channel", "variant", "day"]) == expected

    DailyRollup.objects.update(opens=999)  # corrupted rows: the command rebuilds them exactly
    call_command(
        "analytics_backfill", "--from", "2026-05-31", "--to", "2026-06-07", "--workspace", workspace.slug
    )
    assert rollup_rows(DailyRollup, ["campaign_id", "channel", "variant", "day"]) == expected


def test_erased_and_deleted_contacts_keep_totals_consistent(berlin, workspace):
    campaigns, contacts, deliveries = world(workspace, n_contacts=10, n_events=400)
    contact_erase(contact=contacts[0])
    contacts[1].delete()  # deliveries cascade; the events stay, anonymous (delivery and contact null)
    rollup_backfill(workspace_id=workspace.pk, first=date(2026, 3, 1), last=date(2026, 4, 30))
    df = events_frame(workspace, "Europe/Berlin")
    assert df["delivery_id"].isna().any()
    assert rollup_rows(CampaignRollup, ["campaign_id", "channel", "variant"]) == expected_counters(
        df, ["campaign_id", "channel", "variant"]
    )
    totals = CampaignRollup.objects.all()
    assert sum(r.opens for r in totals) == int((df["kind"] == "open").sum())  # anonymous events still count


def test_zero_events_roll_up_to_nothing_and_tick_covers_every_workspace(workspace, other_workspace):
    assert rollup_tick(now=timezone.now()) == 0
    assert DailyRollup.objects.count() == 0
    assert RollupWatermark.objects.count() == 2


def test_revenue_sums_conversion_values_exactly(workspace):
    (campaign,) = make_campaigns(workspace, 1)
    d1, d2 = make_deliveries(campaign, make_contacts(workspace, 2))
    at = datetime(2026, 7, 1, 10, tzinfo=UTC)
    EngagementEvent.objects.bulk_create(
        [
            event(d1, EngagementKind.CONVERSION, at, value=Decimal("0.10")),
            event(d2, EngagementKind.CONVERSION, at, value=Decimal("0.20")),
            event(d2, EngagementKind.CONVERSION, at),  # a conversion without a value adds 0
        ]
    )
    rollup_backfill(workspace_id=workspace.pk, first=date(2026, 7, 1), last=date(2026, 7, 1))
    row = CampaignRollup.objects.get()
    assert (row.conversions, row.revenue) == (3, Decimal("0.30"))


@pytest.mark.parametrize(
    "zone",
    ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham"],
)
def test_local_day_matches_python_for_every_instant_of_a_year(workspace, zone):
    """The database's local day (SQL built-ins on SQLite, AT TIME ZONE on PostgreSQL) equals zoneinfo's for
    instants around every offset change of a year (half-hour DST of Lord Howe, +12:45 of Chatham)."""
    import random

    from analytics.rollups import LocalDay, offset_changes

    tz = ZoneInfo(zone)
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    (delivery,) = make_deliveries(make_campaigns(workspace, 1)[0], make_contacts(workspace, 1))
    rng = random.Random(zone)
    instants = [start + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(300)]
    for change, _ in offset_changes(start, end, tz):
        instants += [change - timedelta(seconds=1), change, change + timedelta(seconds=1)]
        midnight = datetime.combine(change.astimezone(tz).date(), datetime.min.time(), tzinfo=tz)
        instants += [midnight - timedelta(microseconds=1), midnight]
    instants = [i for i in instants if start <= i < end]
    EngagementEvent.objects.bulk_create([event(delivery, EngagementKind.OPEN, at) for at in instants])
    got = list(
        EngagementEvent.objects.annotate(day=LocalDay("occurred_at", zone=tz, start=start, end=end))
        .order_by("id")
        .values_list("occurred_at", "day")
    )
    assert [(at, at.astimezone(tz).date()) for at in instants] == got


def test_a_zone_change_rerolls_every_day_into_the_new_calendar(
    berlin, workspace, other_workspace, django_capture_on_commit_callbacks
):
    from aicmo.timezones import workspace_time_zone_set
    from analytics.rollups import rollup_rebuild_all

    world(workspace, n_events=900, start=datetime(2026, 3, 20, tzinfo=UTC), days=15)
    world(other_workspace, n_events=200, seed=3)
    rollup_backfill(workspace_id=workspace.pk, first=date(2026, 3, 1), last=date(2026, 4, 30))
    rollup_backfill(workspace_id=other_workspace.pk, first=date(2026, 3, 1), last=date(2026, 4, 30))
    others_before = set(DailyRollup.objects.filter(workspace=other_workspace).values_list("day", "opens"))

    with django_capture_on_commit_callbacks() as callbacks:
        workspace_time_zone_set(workspace=workspace, time_zone="America/Los_Angeles")
    assert len(callbacks) == 1  # the AICMO_WORKSPACE_ZONE_CHANGED hook, queued for after the commit
    rollup_rebuild_all(workspace_id=workspace.pk)  # what that hook's task runs

    df = events_frame(workspace, "America/Los_Angeles")
    expected = expected_counters(df, ["campaign_id", "channel", "variant", "day"])
    got = {
        (r.campaign_id, r.channel, r.variant, r.day): {f: getattr(r, f) for f in COUNTER_FIELDS}
        for r in DailyRollup.objects.filter(workspace=workspace)
    }
    assert got == expected  # no Berlin day is left behind
    assert set(DailyRollup.objects.filter(workspace=other_workspace).values_list("day", "opens")) == (
        others_before
    )


def test_events_without_a_delivery_count_in_the_counters_but_never_as_uniques(berlin, workspace):
    """Every kind (machine and human opens) without a delivery — on a day with delivered events and on a day
    with none — beside the same kinds with deliveries, some twice: daily and campaign rows equal pandas."""
    from tests.analytics.generated import KINDS

    (campaign,) = make_campaigns(workspace, 1)
    d1, d2 = make_deliveries(campaign, make_contacts(workspace, 2))
    shared_day, orphan_day = datetime(2026, 5, 4, 9, tzinfo=UTC), datetime(2026, 5, 6, 9, tzinfo=UTC)
    events = []
    for i, kind in enumerate(KINDS):
        for machine in (False, True) if kind == EngagementKind.OPEN else (False,):
            value = Decimal("2.50") if kind == EngagementKind.CONVERSION else None
            at = shared_day + timedelta(minutes=i)
            events += [event(d1, kind, at, machine=machine, value=value) for _ in range(2)]
            events.append(event(d2, kind, at, machine=machine, value=value, variant="B"))
            for day in (shared_day, orphan_day):
                orphan = event(d1, kind, day + timedelta(minutes=i), machine=machine, value=value)
                orphan.delivery = None
                events += [orphan]
    EngagementEvent.objects.bulk_create(events)
    rollup_backfill(workspace_id=workspace.pk, first=date(2026, 5, 1), last=date(2026, 5, 10))

    df = events_frame(workspace, "Europe/Berlin")
    assert df["delivery_id"].isna().sum() == 2 * (len(KINDS) + 1)
    daily = expected_counters(df, ["campaign_id", "channel", "variant", "day"])
    assert rollup_rows(DailyRollup, ["campaign_id", "channel", "variant", "day"]) == daily
    orphan_row = DailyRollup.objects.get(day=date(2026, 5, 6))
    assert (orphan_row.opens, orphan_row.unique_opens_human, orphan_row.unique_clicks) == (2, 0, 0)
    totals = expected_counters(df, ["campaign_id", "channel", "variant"])
    assert rollup_rows(CampaignRollup, ["campaign_id", "channel", "variant"]) == totals
