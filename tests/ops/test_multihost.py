"""Two worker hosts on one Redis and one PostgreSQL: one host is killed mid-run, the other finishes, and
every contact is handled exactly once.

Each "host" is a real `celery worker` process (prefork pool) in its own process group with its own
`--hostname`, consuming a different set of queues; both take `enrichment`. Separate network namespaces
are not used: a fresh namespace cannot reach servers on the parent's loopback without veth plumbing, so
the test says which mode ran (process groups) in its output. PostgreSQL only: SQLite is not a database
several hosts share; the PostgreSQL phase of `make test` (tests/pgrun.py) runs it.

Workloads are listed in WORKLOADS: each starts its work in a workspace and then checks it; the campaign
send joins as one more function when the publishing app lands.
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
from crm.models import Contact, EnrichmentRecord
from gateway.models import ProviderAccount
from tests.crm.factories import ContactFactory
from tests.factories import WorkspaceFactory
from tests.fixtures.services import _reset_celery_connections, subprocess_database_url, wait_until

ROOT = Path(__file__).resolve().parents[2]
CONTACTS = 240

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


def enrichment_start(ws, monkeypatch) -> int:
    ProviderAccount.objects.create(
        workspace=ws, capability="enrich_person", adapter="demo_enrichment", name="Demo"
    )
    contacts = ContactFactory.create_batch(CONTACTS, workspace=ws)
    monkeypatch.setattr(services.runs, "ENRICH_CHUNK", 2)  # many small tasks: the kill lands mid-run
    return services.enrichment_start(workspace=ws, contact_ids=[c.pk for c in contacts]).pk


def enrichment_check(ws, job_id: int) -> None:
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


WORKLOADS = [(enrichment_start, enrichment_check)]


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
    settings.REDIS_URL = redis_server.url
    saved = {k: app.conf.get(k) for k in ("broker_url", "result_backend")}
    app.conf.update(broker_url=broker, result_backend=broker)
    _reset_celery_connections(app)
    app.backend.client.flushdb()
    hosts = [
        start_host("host-a", "enrichment,sending", env, tmp_path),
        start_host("host-b", "enrichment,default,imports", env, tmp_path),
    ]
    try:
        wait_ready(hosts)
        print("multi-host mode: separate process groups with distinct --hostname (no network namespaces)")
        ws = WorkspaceFactory(slug="multihost")
        started = [(start(ws, monkeypatch), check) for start, check in WORKLOADS]

        # Kill host A once both hosts have done part of the work.
        wait_until(
            lambda: hosts[0].successes() >= 10 and hosts[1].successes() >= 10,
            120,
            "both hosts working",
            detail=diagnostics,
        )
        done_at_kill = Job.objects.get(pk=started[0][0]).done
        hosts[0].kill()
        assert done_at_kill < CONTACTS, "the run finished before the kill: nothing was proven"
        b_at_kill = hosts[1].successes()

        for job_id, _check in started:
            wait_until(
                lambda job_id=job_id: Job.objects.get(pk=job_id).is_finished,
                180,
                f"job {job_id}",
                detail=diagnostics,
            )
        for job_id, check in started:
            check(ws, job_id)
        assert hosts[1].successes() > b_at_kill, "the survivor finished the work"
    finally:
        for host in hosts:
            host.stop()
        app.conf.update(saved)
        _reset_celery_connections(app)
        connection.close()
