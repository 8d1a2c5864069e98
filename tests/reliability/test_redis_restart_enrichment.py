"""Redis stopped and started again in the middle of an enrichment run: the worker process is not restarted,
and the run finishes with every contact enriched once (the mid-send case is
tests/publishing/test_redis_restart.py).

Redis holds the broker, the gateway's breakers and rate limits and the rendition/delivery bookkeeping; it
runs with its production persistence (AOF, docs/OPERATIONS.md), is stopped with SIGTERM and started again
on the same port and data directory after 3 s. The worker's visibility timeout is longer than the test, so
nothing comes back through a redelivery: the run has to go on by itself."""

from __future__ import annotations

import time

import pytest

from aicmo.models import Job
from crm.models import EnrichmentRecord
from crm.services.runs import ENRICH_LANES
from gateway import breaker, ratelimit
from gateway.models import ProviderAccount
from tests.fixtures.services import wait_until
from tests.publishing.test_redis_restart import own_redis  # noqa: F401 - a Redis of the test's own

from .crash import ApolloServer, CrashWorkers
from .test_worker_kill import apollo_run, check_enriched_once

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.django_db(transaction=True)]

CONTACTS = 600


def test_redis_restarted_mid_enrichment_the_run_goes_on_and_each_contact_once(
    workspace,
    own_redis,  # noqa: F811
    httpserver,
    tmp_path,
):
    vendor = ApolloServer(httpserver, delay=0.1)
    crash = CrashWorkers(
        tmp_path,
        own_redis["broker"],
        own_redis["server"].url,
        visibility=3600,
        AICMO_GATEWAY_LOOPBACK_ALLOW=f"{httpserver.host}:{httpserver.port}",
    )
    ids, job = apollo_run(workspace, httpserver, CONTACTS)
    account = ProviderAccount.objects.get(workspace=workspace, adapter="apollo")
    account.rate_limit_per_second, account.rate_limit_burst = 20, 4  # the limiter's bucket lives in Redis
    account.save(update_fields=["rate_limit_per_second", "rate_limit_burst"])
    worker = crash.start("enrichment", queues="enrichment", concurrency=ENRICH_LANES)
    try:
        # When Redis goes away for 3 s with a third of the contacts asked
        wait_until(lambda: vendor.called() >= CONTACTS // 3, 120, "a third of the contacts asked",
                   detail=lambda: crash.log("enrichment"), interval=0.05)  # fmt: skip
        own_redis["restart"](down_for=3)
        asked = vendor.called()
        print(f"Redis restarted with {asked} contacts asked")
        assert asked < CONTACTS and not Job.objects.get(pk=job.pk).is_finished

        # Then the same worker process finishes the run
        wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, 150, "the run to finish after the restart",
                   detail=lambda: crash.log("enrichment") + crash.broker_state(), interval=0.5)  # fmt: skip
        assert worker.poll() is None, "the worker process was not restarted (and did not die)"
        assert vendor.called() > asked, "contacts were asked after the restart"
        done_at = vendor.called()
        time.sleep(3)
        assert vendor.called() == done_at, "a contact was asked after the run finished"
    finally:
        crash.stop()

    # each contact enriched once; asked again only for the chunks in flight when Redis went away
    again = check_enriched_once(workspace, job.pk, ids, vendor, lost_chunks=ENRICH_LANES)
    print(f"{len(again)} contacts asked twice")
    assert EnrichmentRecord.objects.filter(contact__workspace=workspace).count() == CONTACTS
    # the breaker is closed, and the rate limiter limits again on the restarted Redis: a burst's worth of
    # tokens is granted at once, the next one is a wait
    assert breaker.status(account.pk).state == "closed"
    ratelimit.reset(account.pk)
    waits = [ratelimit.try_acquire(account) for _ in range(account.rate_limit_burst + 1)]
    assert waits[:-1] == [0.0] * account.rate_limit_burst and waits[-1] > 0, waits
