"""Redis restarted in the middle of a send (the broker, the gateway's rate limits and breakers all live
there): a real worker process keeps going once Redis is back, with the exactly-once guarantees — every
recipient gets one copy, except messages in flight during the outage, which end *uncertain* (0 or 1
copies, never resent), and the campaign finishes.

Redis runs with its production persistence (AOF, as in docs/OPERATIONS.md), stopped with SIGTERM and
started again on the same port and data directory. The worker process is not restarted."""

from __future__ import annotations

import time

import pytest

from aicmo.localredis import free_port, start_redis
from publishing.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from publishing.services import campaigns
from publishing.tasks import campaigns_tick_task
from tests.crm.factories import ContactFactory
from tests.fixtures.services import _reset_celery_connections, wait_until

from .conftest import Processes
from .test_worker_crash import received, setup_campaign, statuses

N = 40


@pytest.fixture
def own_redis(tmp_path, settings, monkeypatch):
    """A Redis of this test's own (it is stopped mid-test), this process's Celery app pointed at it."""
    from aicmo.celery import app
    from aicmo.redis import reset_clients

    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    data_dir, port = tmp_path / "redis", free_port()
    box = {"server": start_redis(port=port, data_dir=data_dir, persist=True)}
    broker = box["server"].url_for_db(1)
    settings.REDIS_URL = box["server"].url
    saved = {k: app.conf.get(k) for k in ("broker_url", "result_backend", "task_always_eager")}
    app.conf.update(broker_url=broker, result_backend=broker, task_always_eager=False)
    _reset_celery_connections(app)
    reset_clients()

    def restart(down_for: float) -> None:
        box["server"].stop()
        time.sleep(down_for)
        box["server"] = start_redis(port=port, data_dir=data_dir, persist=True)

    box["restart"], box["broker"] = restart, broker
    try:
        yield box
    finally:
        box["server"].stop()
        _reset_celery_connections(app)
        app.conf.update(saved)
        reset_clients()


@pytest.mark.faults
@pytest.mark.django_db(transaction=True)
def test_redis_restarted_mid_send_the_worker_carries_on_and_nobody_gets_two(
    workspace, own_redis, tmp_path, settings
):
    settings.PUBLISHING_SEND_CONCURRENCY = 1
    ContactFactory.reset_sequence(0)
    procs = Processes(tmp_path, own_redis["broker"], own_redis["server"].url)
    try:
        # every recipient held 0.3 s at the sink: the send lasts ~12 s, the outage lands in the middle
        port, log, _marker = procs.sink(slow=[f"person{i}@example.com" for i in range(N)], delay=0.3)
        campaign, contacts = setup_campaign(workspace, port, N)
        procs.worker("steady")
        campaigns.campaign_send_now(campaign=campaign)
        wait_until(lambda: statuses(campaign)[DeliveryStatus.SENT] >= 8, 90, "a first part sent")

        own_redis["restart"](down_for=3)
        sent_before = statuses(campaign)[DeliveryStatus.SENT]
        assert sent_before < N, "the send finished before the outage: nothing was proven"

        def finished():
            campaigns_tick_task.delay()  # beat's minute tick: wakes the campaign, recovers lapsed claims
            return Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENT

        wait_until(finished, 120, "the campaign to finish after the restart", interval=1)
        assert statuses(campaign)[DeliveryStatus.SENT] > sent_before, "sending went on after the restart"
    finally:
        procs.stop()

    time.sleep(1)  # a message held at the sink during the outage lands now, if at all
    copies = received(log)
    by_status = statuses(campaign)
    assert set(by_status) <= {DeliveryStatus.SENT, DeliveryStatus.UNCERTAIN}, by_status
    for delivery in Delivery.objects.filter(campaign=campaign):
        if delivery.status == DeliveryStatus.SENT:
            assert copies[delivery.email] == 1, delivery.email
        else:
            assert copies[delivery.email] <= 1, delivery.email
    assert sum(by_status.values()) == N
