"""Two worker hosts on one Redis and one PostgreSQL: one host is killed mid-run, the other finishes, and
every contact is handled exactly once — an enrichment run and a campaign send at the same time.

Each "host" is a real `celery worker` process (prefork pool) in its own process group with its own
`--hostname`, consuming a different set of queues; both take `enrichment`. Separate network namespaces
are not used: a fresh namespace cannot reach servers on the parent's loopback without veth plumbing, so
the test says which mode ran (process groups) in its output. PostgreSQL only: SQLite is not a database
several hosts share; the PostgreSQL phase of `make test` (tests/pgrun.py) runs it.

Workloads are listed in WORKLOADS: each starts its work in a workspace, is nudged while the test waits
(the send needs beat's tick to take back the dead host's lapsed claims), and then checks it. The send goes
through the gateway's SMTP adapter to an aiosmtpd sink in its own process that holds each message a moment,
so host A is killed with messages in flight: those end *uncertain* (the publishing policy: never resent),
every other recipient receives exactly one copy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from aicmo.celery import app
from aicmo.models import Job, JobStatus
from crm import services
from crm.models import Contact, EnrichmentRecord, ListMembership
from gateway.models import ProviderAccount
from publishing.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from publishing.services import campaigns as campaign_services
from publishing.tasks import campaigns_tick_task
from tests.crm.factories import ContactFactory, ContactListFactory
from tests.factories import WorkspaceFactory
from tests.fixtures.services import _reset_celery_connections, subprocess_database_url, wait_until
from tests.publishing.conftest import Processes, make_content, smtp_account
from tests.publishing.test_worker_crash import received

ROOT = Path(__file__).resolve().parents[2]
CONTACTS = 600  # enough enrichment tasks that the run outlasts the kill (240 finished first once the
# gateway got faster)
RECIPIENTS = 90
SINK_DELAY = 0.4  # seconds the sink holds each message: the send outlasts the kill

ON_POSTGRES = os.environ.get("DATABASE_URL", "").split(":", 1)[0] in {"postgres", "postgresql"}


@dataclass
class Host:
    name: str
    queues: str
    process: subprocess.Popen
    log: Path

    def successes(self) -> int:
        return self.log.read_text(errors="replace").count("succeeded in")

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)  # the whole host: main process and its pool children
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(30)


def process_group(pgid: int) -> set[int]:
    """Pids whose process group is ``pgid`` (a host's main process and its pool children), from /proc."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.add(int(stat.parent.name))
    return pids


def start_sink(tmp_path: Path) -> tuple[subprocess.Popen, int, Path]:
    """The SMTP sink process (tests/publishing/sink_process.py), every recipient held ``SINK_DELAY``."""
    sinks = Processes(tmp_path, broker_url="", redis_url="")
    port, log, _marker = sinks.sink(
        slow=[f"multihost{i}@example.com" for i in range(RECIPIENTS)], delay=SINK_DELAY
    )
    return sinks.procs[0], port, log


def start_host(name: str, queues: str, env: dict, tmp_path: Path) -> Host:
    log = tmp_path / f"{name}.log"
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.ops.multihost_app",
        "worker",
        "-l",
        "info",
        "-Q",
        queues,
        "--hostname",
        f"{name}@%h",
        "--concurrency",
        "2",
        "--without-gossip",
        "--without-mingle",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(  # noqa: S603
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Host(name, queues, process, log)


def wait_ready(hosts: list[Host], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        seen = {name.split("@")[0] for reply in replies for name in reply}
        if {h.name for h in hosts} <= seen:
            return
        for h in hosts:
            assert h.process.poll() is None, h.log.read_text()[-3000:]
    raise AssertionError(f"workers not ready: {[h.log.read_text()[-2000:] for h in hosts]}")


def diagnostics() -> dict:
    return {str(j.pk): (j.status, j.done, j.failed, j.message[:200]) for j in Job.objects.all()}


# ------------------------------------------------------------------------------------------ workloads


def enrichment_start(ws, monkeypatch, sink) -> int:
    ProviderAccount.objects.create(
        workspace=ws, capability="enrich_person", adapter="demo_enrichment", name="Demo"
    )
    contacts = ContactFactory.create_batch(CONTACTS, workspace=ws)
    monkeypatch.setattr(services.runs, "ENRICH_CHUNK", 2)  # many small tasks: the kill lands mid-run
    return services.enrichment_start(workspace=ws, contact_ids=[c.pk for c in contacts]).pk


def enrichment_check(ws, job_id: int, sink) -> None:
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.SUCCEEDED and (job.done, job.failed) == (CONTACTS, 0), diagnostics()
    per_contact = {}
    for contact_id in EnrichmentRecord.objects.filter(contact__workspace=ws).values_list(
        "contact_id", flat=True
    ):
        per_contact[contact_id] = per_contact.get(contact_id, 0) + 1
    contacts = set(Contact.objects.filter(workspace=ws).values_list("pk", flat=True))
    assert set(per_contact) == contacts, "every contact handled"
    assert set(per_contact.values()) == {1}, "no contact handled twice"


def send_start(ws, monkeypatch, sink) -> int:
    _process, port, _log = sink
    smtp_account(ws, "127.0.0.1", port)
    contact_list = ContactListFactory(workspace=ws)
    contacts = [ContactFactory(workspace=ws, email=f"multihost{i}@example.com") for i in range(RECIPIENTS)]
    ListMembership.objects.bulk_create(
        [ListMembership(workspace=ws, contact_list=contact_list, contact=c) for c in contacts]
    )
    campaign = campaign_services.campaign_create(
        workspace=ws, name="Multi-host send", content=make_content(ws), audience={"lists": [contact_list.pk]}
    )
    campaign = campaign_services.campaign_send_now(campaign=campaign)
    return campaign.job_id


def send_nudge(ws, job_id: int) -> None:
    campaigns_tick_task.delay()  # what beat does every minute: wake campaigns whose claims lapsed


def send_check(ws, job_id: int, sink) -> None:
    _process, _port, log = sink
    campaign = Campaign.objects.get(job_id=job_id)
    assert campaign.status == CampaignStatus.SENT, diagnostics()
    time.sleep(SINK_DELAY + 1)  # a message held at the sink when its sender died lands now, if at all
    copies = received(log)
    statuses = dict(Delivery.objects.filter(campaign=campaign).values_list("email", "status"))
    assert len(statuses) == RECIPIENTS
    assert set(statuses.values()) <= {DeliveryStatus.SENT, DeliveryStatus.UNCERTAIN}, statuses
    for email, status in statuses.items():
        if status == DeliveryStatus.SENT:
            assert copies[email] == 1, f"{email}: {copies[email]} copies"
        else:  # in flight at the kill: 0 or 1 copies, never resent
            assert copies[email] <= 1, f"{email}: {copies[email]} copies"
    job = Job.objects.get(pk=job_id)
    assert job.done + job.failed == RECIPIENTS


def no_nudge(ws, job_id: int) -> None:
    return None


# The send first: the kill waits for host A to hold send claims, and the enrichment must still be running then.
WORKLOADS = [(send_start, send_nudge, send_check), (enrichment_start, no_nudge, enrichment_check)]


def send_claims_of(host: Host) -> int:
    """Deliveries host ``host`` has started sending (claimed by one of its processes)."""
    pids = process_group(host.process.pid)
    owners = Delivery.objects.filter(status=DeliveryStatus.SENDING, send_started_at__isnull=False)
    return sum(1 for owner in owners.values_list("claimed_by", flat=True) if int(owner.split(":")[1]) in pids)


# ------------------------------------------------------------------------------------------------ test


@pytest.mark.django_db
def test_a_chunk_delivered_twice_is_counted_once():
    """What a killed host leaves behind: its chunk is delivered again; progress and the chunk's mark commit
    together, so the second delivery adds nothing."""
    from crm.services.runs import ChunkOutcome, _mark_chunk_done

    ws = WorkspaceFactory()
    job = Job.objects.create(workspace=ws, kind="crm.enrichment", status=JobStatus.RUNNING, total=4)
    _mark_chunk_done(job.pk, 0, ChunkOutcome(done=2, failed=0, skipped=0))
    _mark_chunk_done(job.pk, 0, ChunkOutcome(done=0, failed=0, skipped=2))  # the redelivery
    _mark_chunk_done(job.pk, 2, ChunkOutcome(done=1, failed=1, skipped=0))
    job.refresh_from_db()
    assert (job.done, job.failed, job.result["offsets_done"]) == (3, 1, [0, 2])


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not ON_POSTGRES,
    reason="needs PostgreSQL shared by several processes: runs in the PostgreSQL phase (tests/pgrun.py)",
)
def test_a_killed_host_loses_nothing_and_the_survivor_finishes(redis_server, settings, monkeypatch, tmp_path):
    broker = redis_server.url_for_db(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env.update(
        {
            "AICMO_ENV": "test",
            "DATABASE_URL": subprocess_database_url(),
            "REDIS_URL": redis_server.url,
            "CELERY_BROKER_URL": broker,
            "CELERY_RESULT_BACKEND": broker,
            "PYTHONUNBUFFERED": "1",
        }
    )
    sink = start_sink(tmp_path)
    env.update(
        {
            "AICMO_GATEWAY_LOOPBACK_ALLOW": f"127.0.0.1:{sink[1]}",
            "PUBLISHING_CLAIM_LEASE_SECONDS": "3",
            "PUBLISHING_SEND_BATCH_SIZE": "5",
        }
    )
    settings.REDIS_URL = redis_server.url
    settings.PUBLISHING_SEND_CONCURRENCY = 3
    settings.GATEWAY_LOOPBACK_ALLOW = [f"127.0.0.1:{sink[1]}"]
    saved = {k: app.conf.get(k) for k in ("broker_url", "result_backend")}
    app.conf.update(broker_url=broker, result_backend=broker)
    _reset_celery_connections(app)
    app.backend.client.flushdb()
    hosts = [
        start_host("host-a", "enrichment,sending", env, tmp_path),
        start_host("host-b", "enrichment,sending,default,imports", env, tmp_path),
    ]
    try:
        wait_ready(hosts)
        print("multi-host mode: separate process groups with distinct --hostname (no network namespaces)")
        started = []  # (workspace, job id, nudge, check): each workload in a workspace of its own
        for i, (start, nudge, check) in enumerate(WORKLOADS):
            ws = WorkspaceFactory(slug=f"multihost-{i}")
            started.append((ws, start(ws, monkeypatch, sink), nudge, check))

        # Kill host A once both hosts have done part of the work and A has messages in flight.
        wait_until(
            lambda: hosts[0].successes() >= 10 and hosts[1].successes() >= 10 and send_claims_of(hosts[0]),
            120,
            "both hosts working, host A sending",
            detail=diagnostics,
        )
        finished_at_kill = [Job.objects.get(pk=job_id).is_finished for _ws, job_id, _n, _c in started]
        hosts[0].kill()
        assert not any(finished_at_kill), "a workload finished before the kill: nothing was proven"
        b_at_kill = hosts[1].successes()

        for ws, job_id, nudge, _check in started:

            def finished(ws=ws, job_id=job_id, nudge=nudge):
                nudge(ws, job_id)
                return Job.objects.get(pk=job_id).is_finished

            wait_until(finished, 180, f"job {job_id}", detail=diagnostics, interval=1)
        for ws, job_id, _nudge, check in started:
            check(ws, job_id, sink)
        assert hosts[1].successes() > b_at_kill, "the survivor finished the work"
    finally:
        for host in hosts:
            host.stop()
        sink[0].terminate()
        sink[0].wait(15)
        app.conf.update(saved)
        _reset_celery_connections(app)
        connection.close()
