"""A Celery worker SIGKILLed in the middle of real work at the issue's sizes, then restarted: a 50,000-row
contacts import, an enrichment run, a rendition build and a 2,000-recipient campaign send.

Each test starts a real ``celery worker`` process (prefork, the deployment's concurrency for its queue:
docs/OPERATIONS.md) on the test database and the test Redis, waits until the work is demonstrably part
done (a checkpoint, a count at the vendor server or the SMTP sink, a file appearing — never a sleep),
SIGKILLs the worker's whole process group, starts a new worker and checks the guarantee
(docs/RELIABILITY.md, section 1). The killed task comes back through the broker: every task is
``acks_late`` and Redis redelivers it after the visibility timeout (shortened here, see crash_app.py)."""

from __future__ import annotations

import collections
import io
import time

import pytest

from aicmo.models import Job, JobStatus
from crm import services as crm_services
from crm.importing import import_create
from crm.models import Contact, EnrichmentRecord, ImportRun, ImportStatus
from crm.services.runs import ENRICH_CHUNK, ENRICH_LANES
from tests.fixtures.services import wait_until
from tests.gateway.factories import ProviderAccountFactory
from tests.publishing.conftest import celery_on_redis  # noqa: F401 - this process publishes to the workers

from .crash import ApolloServer, CrashWorkers

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.django_db(transaction=True)]

IMPORT_ROWS = 50_000
RECIPIENTS = 2_000
LEASE_SECONDS = 10  # publishing claim lease: above a batch's duration here, short for the recovery
SEND_WORKER_CONCURRENCY = 8
MEDIA_WORKER_CONCURRENCY = (
    2  # docs/OPERATIONS.md: media, concurrency = cores (2 here)  # docs/OPERATIONS.md: sending, 8–32 per host
)
ENRICH_CONTACTS = 600


@pytest.fixture
def workers(tmp_path, celery_on_redis, redis_server, settings):  # noqa: F811
    settings.MEDIA_ROOT = tmp_path / "media"
    made = []

    def make(**kwargs) -> CrashWorkers:
        kwargs.setdefault("MEDIA_ROOT", settings.MEDIA_ROOT)
        crash = CrashWorkers(tmp_path, celery_on_redis, redis_server.url, **kwargs)
        made.append(crash)
        return crash

    yield make
    for crash in made:
        crash.stop()


def people_csv(n: int) -> bytes:
    out = io.StringIO()
    out.write("Email,First Name,Last Name\n")
    for i in range(n):
        out.write(f"row{i}@import.example,First{i},Last{i}\n")
    return out.getvalue().encode()


def test_import_killed_mid_file_resumes_from_its_checkpoint_every_row_once(workspace, workers):
    crash = workers(visibility=45)  # above the longest run of the import task
    run = import_create(workspace=workspace, fh=io.BytesIO(people_csv(IMPORT_ROWS)), name="people.csv")
    started = time.monotonic()
    first = crash.start("imports-1", queues="imports", concurrency=2)

    def checkpoint() -> int:
        return ImportRun.objects.get(pk=run.pk).checkpoint_line

    # When the worker is killed with a part of the file committed and the rest still to come
    at = wait_until(lambda: checkpoint() >= 15_000 and checkpoint(), 120, "two batches committed",
                    detail=lambda: crash.log("imports-1"), interval=0.05)  # fmt: skip
    crash.kill(first)
    killed_at = checkpoint()
    print(f"killed at checkpoint line {killed_at} (seen {at}) after {time.monotonic() - started:.1f} s")
    assert ImportRun.objects.get(pk=run.pk).status == ImportStatus.RUNNING
    assert killed_at < IMPORT_ROWS, "the import finished before the kill: nothing was proven"
    assert Contact.objects.for_workspace(workspace).count() == killed_at - 1  # only committed batches

    # And a new worker starts: the unacknowledged task comes back and the import goes on
    crash.start("imports-2", queues="imports", concurrency=2)
    wait_until(
        lambda: ImportRun.objects.get(pk=run.pk).status in (ImportStatus.DONE, ImportStatus.FAILED),
        150,
        "the import to finish after the restart",
        detail=lambda: crash.log("imports-2") + crash.broker_state(),
        interval=0.5,
    )
    print(f"finished {time.monotonic() - started:.1f} s after the start")

    crash.check_runs_within_visibility()

    # Then every row is there exactly once, and the counts say each was created once (a restart from
    # the top would have counted the first rows again as updated)
    run.refresh_from_db()
    emails = list(Contact.objects.for_workspace(workspace).values_list("email", flat=True))
    assert len(emails) == IMPORT_ROWS
    assert set(emails) == {f"row{i}@import.example" for i in range(IMPORT_ROWS)}
    assert (run.status, run.created, run.updated, run.skipped, run.failed) == (
        ImportStatus.DONE, IMPORT_ROWS, 0, 0, 0,
    )  # fmt: skip
    assert not run.row_errors.exists()
    job = Job.objects.get(pk=run.job_id)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"created": IMPORT_ROWS, "updated": 0, "skipped": 0, "failed": 0}


def apollo_run(workspace, httpserver, n: int) -> tuple[list[int], Job]:
    """An Apollo account on ``httpserver`` and an enrichment run over ``n`` new contacts (bulk-created)."""
    ProviderAccountFactory(
        workspace=workspace,
        capability="enrich_person",
        adapter="apollo",
        name="Apollo",
        base_url=httpserver.url_for("/"),
        credentials={"api_key": "apollo-key-9876"},
    )
    Contact.objects.bulk_create(
        [Contact(workspace=workspace, email=f"lead{i}@analytical.io", first_name="") for i in range(n)]
    )
    ids = list(Contact.objects.for_workspace(workspace).order_by("pk").values_list("pk", flat=True))
    return ids, crm_services.enrichment_start(workspace=workspace, contact_ids=ids)


def check_enriched_once(workspace, job_id: int, ids: list[int], vendor: ApolloServer, *, lost_chunks: int):
    """The run finished with every contact counted once, each contact's answer written once, and vendor calls
    within the at-least-once bound (docs/CRM.md): one call per contact, plus at most one more for each
    contact of a chunk whose delivery was lost (``lost_chunks`` chunks at most)."""
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.done, job.failed) == (JobStatus.SUCCEEDED, len(ids), 0), (job.status, job.message)
    records = collections.Counter(
        EnrichmentRecord.objects.filter(contact__workspace=workspace).values_list("contact_id", flat=True)
    )
    assert records == {pk: 1 for pk in ids}, "each contact's answer written exactly once"
    emails = dict(Contact.objects.for_workspace(workspace).values_list("email", "first_name"))
    assert set(vendor.calls) == set(emails), "every contact was asked"
    assert max(vendor.calls.values()) <= 2
    again = [email for email, calls in vendor.calls.items() if calls > 1]
    assert len(again) <= lost_chunks * ENRICH_CHUNK, len(again)
    assert set(emails.values()) == {"Ada"}
    return again


def test_enrichment_run_killed_mid_run_finishes_every_contact_once(workspace, workers, httpserver):
    vendor = ApolloServer(httpserver, delay=0.1)
    crash = workers(visibility=30, AICMO_GATEWAY_LOOPBACK_ALLOW=f"{httpserver.host}:{httpserver.port}")
    ids, job = apollo_run(workspace, httpserver, ENRICH_CONTACTS)
    first = crash.start("enrichment-1", queues="enrichment", concurrency=ENRICH_LANES)

    # When the worker is killed with a part of the contacts answered by the vendor
    wait_until(lambda: vendor.called() >= ENRICH_CONTACTS // 3, 120, "a third of the contacts asked",
               detail=lambda: crash.log("enrichment-1"), interval=0.05)  # fmt: skip
    crash.kill(first)
    asked, written = vendor.called(), EnrichmentRecord.objects.filter(contact__workspace=workspace).count()
    print(f"killed with {asked} contacts asked, {written} answers written")
    assert written < ENRICH_CONTACTS and not Job.objects.get(pk=job.pk).is_finished

    # And a new worker starts
    crash.start("enrichment-2", queues="enrichment", concurrency=ENRICH_LANES)
    wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, 120, "the run to finish after the restart",
               detail=lambda: crash.log("enrichment-2") + crash.broker_state(), interval=0.5)  # fmt: skip

    crash.check_runs_within_visibility()

    # Then each contact was enriched once; only contacts of the chunks in flight were asked twice, and
    # nothing is still asking once the run says it finished
    asked = vendor.called()
    time.sleep(3)
    assert vendor.called() == asked, "a contact was asked after the run finished"
    again = check_enriched_once(workspace, job.pk, ids, vendor, lost_chunks=ENRICH_LANES)
    print(f"{len(again)} contacts asked twice (chunks in flight at the kill)")


def test_send_to_2000_killed_mid_send_everyone_once_and_the_in_flight_uncertain(
    workspace, workers, tmp_path, settings
):
    from crm.models import ListMembership
    from publishing.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
    from publishing.selectors import campaign_report
    from publishing.services import campaigns
    from publishing.tasks import campaigns_tick_task
    from tests.crm.factories import ContactListFactory
    from tests.publishing.conftest import Processes, make_content, smtp_account
    from tests.publishing.test_worker_crash import received, statuses

    # Given 2,000 recipients and the SMTP sink in its own process (every message logged as it is accepted)
    sinks = Processes(tmp_path, broker_url="", redis_url="")
    port, log, _marker = sinks.sink(slow=[], delay=0)
    crash = workers(
        visibility=10,
        AICMO_GATEWAY_LOOPBACK_ALLOW=f"127.0.0.1:{port}",
        PUBLISHING_CLAIM_LEASE_SECONDS=LEASE_SECONDS,
    )
    smtp_account(workspace, "127.0.0.1", port)
    audience = ContactListFactory(workspace=workspace)
    Contact.objects.bulk_create(
        [
            Contact(workspace=workspace, email=f"reader{i}@example.com", first_name=f"R{i}")
            for i in range(RECIPIENTS)
        ]
    )
    ListMembership.objects.bulk_create(
        [
            ListMembership(workspace=workspace, contact_list=audience, contact=c)
            for c in Contact.objects.for_workspace(workspace)
        ]
    )
    campaign = campaigns.campaign_create(
        workspace=workspace, name="2,000", content=make_content(workspace), audience={"lists": [audience.pk]}
    )
    try:
        first = crash.start("sending-1", queues="sending", concurrency=SEND_WORKER_CONCURRENCY)
        started = time.monotonic()
        campaigns.campaign_send_now(campaign=campaign)

        # When the worker is killed once the sink has accepted 600 messages
        wait_until(lambda: sum(received(log).values()) >= 600, 120, "600 messages at the sink",
                   detail=lambda: crash.log("sending-1"), interval=0.02)  # fmt: skip
        crash.kill(first)
        at_kill = sum(received(log).values())
        in_flight = set(
            Delivery.objects.filter(
                campaign=campaign, status=DeliveryStatus.SENDING, send_started_at__isnull=False
            ).values_list("email", flat=True)
        )
        print(
            f"killed after {time.monotonic() - started:.1f} s: {at_kill} at the sink, {len(in_flight)} in flight"
        )
        assert at_kill < RECIPIENTS, "the send finished before the kill: nothing was proven"

        # And a new worker starts; beat's tick takes back the dead worker's lapsed claims
        crash.start("sending-2", queues="sending", concurrency=SEND_WORKER_CONCURRENCY)

        def finished():
            campaigns_tick_task.delay()
            return Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENT

        wait_until(finished, 120, "the campaign to finish", detail=lambda: crash.log("sending-2"), interval=1)
        print(f"sent {time.monotonic() - started:.1f} s after the start")
    finally:
        sinks.stop()

    crash.check_runs_within_visibility()

    # Then every address is at the sink exactly once, except the ones in flight at the kill: those are
    # uncertain (0 or 1 copies, never re-sent), counted as failed by the job and as uncertain by the report
    copies = received(log)
    by_status = statuses(campaign)
    want = {DeliveryStatus.SENT: RECIPIENTS - len(in_flight), DeliveryStatus.UNCERTAIN: len(in_flight)}
    # a kill between two batches leaves nothing in flight: then no status is uncertain (a Counter has no 0s)
    assert by_status == {status: n for status, n in want.items() if n}
    assert (
        set(
            Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.UNCERTAIN).values_list(
                "email", flat=True
            )
        )
        == in_flight
    )
    for email in Delivery.objects.filter(campaign=campaign).values_list("email", flat=True):
        expected = {0, 1} if email in in_flight else {1}
        assert copies[email] in expected, f"{email}: {copies[email]} copies"
    assert set(copies) <= {f"reader{i}@example.com" for i in range(RECIPIENTS)}
    campaign.refresh_from_db()
    assert (campaign.job.done, campaign.job.failed) == (RECIPIENTS - len(in_flight), len(in_flight))
    report = campaign_report(campaign).total
    assert (report.sent, report.uncertain) == (RECIPIENTS - len(in_flight), len(in_flight))


def stored_files(root) -> set[str]:
    """Every file under MEDIA_ROOT, as storage names (hidden partial files included)."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_rendition_build_killed_mid_build_completes_with_no_orphan_file(workspace, workers, settings):
    from media import renditions as rd
    from media.models import MediaAsset, Rendition
    from media.services import asset_upload, library_get_default
    from tests.media.conftest import make_image, upload

    # Given a 24-megapixel photograph whose six channel renditions take a while to build
    crash = workers(visibility=30)  # above a whole build, and the dead builder's lock TTL
    picture = make_image(6000, 4000, quality=95, seed=7)
    result = asset_upload(
        library=library_get_default(workspace=workspace),
        file=upload(picture, "big.jpg"),
        compute_suggestions=False,
    )
    asset = result.asset
    job = Job.objects.filter(kind="media.renditions", params__asset_id=asset.pk).get()
    specs = set(job.params["specs"])
    first = crash.start("media-1", queues="media", concurrency=MEDIA_WORKER_CONCURRENCY)

    # When the worker is killed after the first rendition is stored, with the others still to build
    wait_until(lambda: Rendition.objects.filter(asset=asset).exists(), 120, "a first rendition",
               detail=lambda: crash.log("media-1"), interval=0.01)  # fmt: skip
    crash.kill(first)
    built = Rendition.objects.filter(asset=asset).count()
    print(f"killed with {built} of {len(specs)} renditions built")
    assert built < len(specs), "the build finished before the kill: nothing was proven"

    # And a new worker starts
    crash.start("media-2", queues="media", concurrency=MEDIA_WORKER_CONCURRENCY)
    wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, 120, "the build to finish after the restart",
               detail=lambda: crash.log("media-2") + crash.broker_state(), interval=0.5)  # fmt: skip

    crash.check_runs_within_visibility()

    # Then every rendition is there, once, from the current source; the job counted each spec once; and
    # storage holds exactly the files the rows point at
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == (JobStatus.SUCCEEDED, len(specs), 0), job.message
    renditions = list(Rendition.objects.filter(asset=asset))
    assert {r.spec for r in renditions} == specs and len(renditions) == len(specs)
    assert all(r.source_key.startswith(f"v{rd.SPEC_VERSION}:{asset.sha256[:16]}") for r in renditions)
    rows = {MediaAsset.objects.get(pk=asset.pk).file.name} | {r.file.name for r in renditions}
    assert stored_files(settings.MEDIA_ROOT) == rows
