"""The beat schedule and the tick task: rollups and orders from conversion events."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from analytics.models import CampaignRollup, Order, RollupWatermark
from analytics.tasks import rollup_tick_task
from publishing.models import EngagementEvent, EngagementKind
from tests.analytics.generated import event, make_campaigns, make_contacts, make_deliveries


def test_rollup_tick_is_on_the_beat_schedule(db):
    task = PeriodicTask.objects.get(task="analytics.tasks.rollup_tick_task")
    assert task.enabled and (task.interval.every, task.interval.period) == (5, "minutes")


def test_tick_task_rolls_up_and_turns_conversions_into_orders_once(workspace):
    (campaign,) = make_campaigns(workspace, 1)
    d1, d2 = make_deliveries(campaign, make_contacts(workspace, 2))
    now = timezone.now()
    EngagementEvent.objects.bulk_create(
        [
            event(d1, EngagementKind.SENT, now - timedelta(hours=1)),
            event(d1, EngagementKind.CONVERSION, now, value=Decimal("30.00")),
            EngagementEvent(
                workspace=workspace, kind=EngagementKind.CONVERSION, campaign=campaign, delivery=d2,
                contact_id=d2.contact_id, occurred_at=now, value=Decimal("12.00"),
                metadata={"order_id": "SHOP-7", "currency": "gbp"},
            ),
        ]
    )  # fmt: skip
    rollup_tick_task.apply()
    rollup_tick_task.apply()  # a second tick changes nothing
    row = CampaignRollup.objects.get()
    assert (row.sent, row.conversions, row.revenue) == (1, 2, Decimal("42.00"))
    orders = {o.external_id: o for o in Order.objects.all()}
    conversion = EngagementEvent.objects.get(delivery=d1, kind="conversion")
    assert set(orders) == {f"event-{conversion.pk}", "SHOP-7"}
    assert (orders["SHOP-7"].currency, orders["SHOP-7"].amount, orders["SHOP-7"].source) == (
        "GBP",
        Decimal("12.00"),
        "conversion",
    )
    assert orders["SHOP-7"].contact_id == d2.contact_id
    assert (
        RollupWatermark.objects.get(workspace=workspace).last_event_id
        == EngagementEvent.objects.latest("id").pk
    )


def test_tick_finds_an_old_event_through_the_id_watermark(workspace):
    (campaign,) = make_campaigns(workspace, 1)
    (d,) = make_deliveries(campaign, make_contacts(workspace, 1))
    old = datetime(2026, 1, 10, 12, tzinfo=ZoneInfo("UTC"))
    EngagementEvent.objects.bulk_create([event(d, EngagementKind.OPEN, old)])
    rollup_tick_task.apply()
    assert CampaignRollup.objects.get().opens == 1  # found through the id watermark, not the window
