"""Buffered open/click ingestion: the endpoints write to a Redis Stream only, a flush bulk-inserts, nothing
is lost or doubled when the flusher dies mid-batch, and the endpoints still work with Redis down."""

from __future__ import annotations

from unittest import mock

import pytest
import redis
from django.test import Client

from crm.models import Contact
from publishing.models import Delivery, EngagementEvent
from publishing.services import campaigns, event_buffer, tracking
from publishing.services.event_buffer import (
    tracking_buffer_length,
    tracking_events_drain,
    tracking_events_flush,
)

from .conftest import make_campaign

pytestmark = pytest.mark.django_db
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
TARGET = "https://acme.example/offer"


def opens(deliveries, *, user_agent: str = "", times: int = 1) -> None:
    """Pixel hits through the service the view calls (signed tokens as in the sent mail)."""
    for d in deliveries:
        for _ in range(times):
            tracking.track_open(
                token=tracking.open_url(d).rstrip("/").rsplit("/", 1)[1], user_agent=user_agent
            )


def path(url: str, settings) -> str:
    return url[len(settings.PUBLIC_BASE_URL) :]


@pytest.fixture
def recipients(workspace):
    """A campaign whose snapshot is taken (deliveries with tokens) and one tracked link."""

    def build(n: int = 5):
        campaign = make_campaign(workspace, n)
        campaigns.campaign_send_now(campaign=campaign)
        link = tracking.links_ensure(campaign, [TARGET])[TARGET]
        return list(Delivery.objects.filter(campaign=campaign, status="queued")), link

    return build


def test_a_burst_is_buffered_then_bulk_inserted_once(redis_client, recipients, settings):
    deliveries, link = recipients(5)
    client = Client()
    for d in deliveries:
        for _ in range(4):
            assert client.get(path(tracking.open_url(d), settings), HTTP_USER_AGENT="").status_code == 200
        assert client.get(path(tracking.click_url(d, link), settings), HTTP_USER_AGENT="").status_code == 302
    assert not EngagementEvent.objects.filter(kind__in=["open", "click"]).exists()
    assert tracking_buffer_length() == 25

    result = tracking_events_drain()

    assert (result.read, result.inserted) == (25, 25)
    assert tracking_buffer_length() == 0
    assert EngagementEvent.objects.filter(kind="open").count() == 20
    assert EngagementEvent.objects.filter(kind="click", metadata__url=TARGET).count() == 5
    assert set(EngagementEvent.objects.filter(kind="open").values_list("machine", flat=True)) == {True}
    assert tracking_events_drain().read == 0 and EngagementEvent.objects.filter(kind="open").count() == 20


@pytest.mark.parametrize("contacts", [1, 5])
def test_flush_queries_per_batch_do_not_grow_with_events(
    redis_client, recipients, django_assert_num_queries, contacts
):
    """Machine opens: one delivery read + one insert (in a savepoint pair) per batch of 80, whatever the
    mix of recipients (SQLite splits inserts past 999 parameters, hence 80 rows of 11 columns)."""
    deliveries, link = recipients(contacts)
    opens(deliveries, times=80 // contacts)
    with django_assert_num_queries(5):  # deliveries, SAVEPOINT, INSERT, webhook endpoints, RELEASE
        result = tracking_events_flush()
    assert result.inserted == 80 and EngagementEvent.objects.filter(kind="open").count() == 80


def test_human_events_move_each_contact_once_per_batch(
    redis_client, recipients, django_assert_max_num_queries
):
    deliveries, _ = recipients(3)
    opens(deliveries, user_agent=BROWSER, times=10)
    tracking_events_flush()  # warm-up batch (crm's first stage change writes its history)
    opens(deliveries, user_agent=BROWSER, times=10)
    with django_assert_max_num_queries(4 + 4 * 3):  # batch read/insert + 4 per engaged contact, not per event
        assert tracking_events_flush().inserted == 30
    assert EngagementEvent.objects.filter(kind="open", machine=False).count() == 60
    assert set(
        Contact.objects.filter(pk__in=[d.contact_id for d in deliveries]).values_list("lifecycle", flat=True)
    ) == {"engaged"}


def test_flusher_dying_before_commit_loses_nothing(redis_client, recipients, settings):
    deliveries, link = recipients(3)
    for d in deliveries:
        tracking.track_open(token=tracking.open_url(d).rstrip("/").rsplit("/", 1)[1], user_agent=BROWSER)
        tracking.track_click(
            token=tracking.click_url(d, link).rstrip("/").rsplit("/", 1)[1], user_agent=BROWSER
        )

    with (
        mock.patch("crm.services.contacts_record_engagement", side_effect=RuntimeError("worker killed")),
        pytest.raises(RuntimeError),
    ):
        tracking_events_flush()

    assert not EngagementEvent.objects.filter(kind__in=["open", "click"]).exists()  # rolled back
    assert tracking_buffer_length() == 6  # read but never acknowledged: still pending
    settings.PUBLISHING_EVENT_CLAIM_IDLE_SECONDS = 0  # the dead flusher's entries are claimable now
    assert tracking_events_drain().read == 6
    assert EngagementEvent.objects.filter(kind="open").count() == 3
    assert EngagementEvent.objects.filter(kind="click").count() == 3
    assert tracking_buffer_length() == 0


def test_flusher_dying_after_commit_before_ack_does_not_double(redis_client, recipients, settings):
    deliveries, _ = recipients(4)
    opens(deliveries)

    with (
        mock.patch.object(redis.client.Pipeline, "execute", side_effect=redis.ConnectionError("killed")),
        pytest.raises(redis.ConnectionError),
    ):
        tracking_events_flush()

    assert EngagementEvent.objects.filter(kind="open").count() == 4  # committed, not acknowledged
    settings.PUBLISHING_EVENT_CLAIM_IDLE_SECONDS = 0
    result = tracking_events_drain()
    assert (result.read, result.inserted) == (4, 4)  # re-drained ...
    assert EngagementEvent.objects.filter(kind="open").count() == 4  # ... and not doubled
    assert tracking_buffer_length() == 0


def test_a_young_pending_batch_is_left_to_its_flusher(redis_client, recipients, settings):
    """Another flusher does not steal entries read moments ago (idle below the claim timeout)."""
    deliveries, _ = recipients(2)
    opens(deliveries)
    with (
        mock.patch("crm.services.contacts_record_engagement"),
        mock.patch.object(
            event_buffer.EngagementEvent.objects, "bulk_create", side_effect=RuntimeError("killed")
        ),
        pytest.raises(RuntimeError),
    ):
        tracking_events_flush()
    settings.PUBLISHING_EVENT_CLAIM_IDLE_SECONDS = 60
    assert tracking_events_flush().read == 0
    assert tracking_buffer_length() == 2


def test_click_redirect_reads_the_link_and_writes_nothing(
    redis_client, recipients, settings, django_assert_num_queries
):
    deliveries, link = recipients(1)
    with django_assert_num_queries(1):
        response = Client().get(
            path(tracking.click_url(deliveries[0], link), settings), HTTP_USER_AGENT=BROWSER
        )
    assert response.status_code == 302 and response["Location"] == TARGET
    assert tracking_buffer_length() == 1


def test_pixel_touches_no_database(redis_client, recipients, settings, django_assert_num_queries):
    deliveries, _ = recipients(1)
    with django_assert_num_queries(0):
        response = Client().get(path(tracking.open_url(deliveries[0]), settings), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"


def test_redis_down_falls_back_to_a_direct_insert(recipients, settings):
    from aicmo.localredis import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    deliveries, link = recipients(1)
    client = Client()
    response = client.get(path(tracking.open_url(deliveries[0]), settings), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    response = client.get(path(tracking.click_url(deliveries[0], link), settings), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 302 and response["Location"] == TARGET
    events = EngagementEvent.objects.filter(kind__in=["open", "click"])
    assert sorted(events.values_list("kind", "machine")) == [("click", False), ("open", False)]
    assert Contact.objects.get(pk=deliveries[0].contact_id).lifecycle == "engaged"


def test_records_of_unknown_deliveries_or_foreign_links_are_dropped(redis_client, recipients, workspace):
    deliveries, link = recipients(1)
    other_campaign = campaigns.campaign_create(
        workspace=workspace, name="Other", content=deliveries[0].campaign.content, audience={"lists": []}
    )
    foreign = tracking.links_ensure(other_campaign, ["https://other.example/"])["https://other.example/"]
    make = event_buffer.record_make
    event_buffer.record_buffer(make(kind="open", delivery_token="gone", user_agent=""))
    event_buffer.record_buffer(
        make(kind="click", delivery_token=deliveries[0].token, user_agent="", link_key=foreign.key)
    )
    event_buffer.record_buffer(make(kind="open", delivery_token=deliveries[0].token, user_agent=""))
    result = tracking_events_drain()
    assert (result.read, result.inserted) == (3, 1)
    assert list(
        EngagementEvent.objects.filter(kind__in=["open", "click"]).values_list("kind", flat=True)
    ) == ["open"]
    assert tracking_buffer_length() == 0


def test_beat_drains_the_buffer_every_5_seconds_and_reads_mailto_requests_every_5_minutes(db):
    from django_celery_beat.models import PeriodicTask

    schedules = {
        t.task: (t.interval.every, t.interval.period, t.enabled)
        for t in PeriodicTask.objects.filter(task__startswith="publishing.tasks.")
    }
    assert schedules["publishing.tasks.tracking_events_flush_task"] == (5, "seconds", True)
    assert schedules["publishing.tasks.mailto_unsubscribes_task"] == (5, "minutes", True)
