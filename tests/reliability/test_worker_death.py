"""A task that kills its worker process (as the kernel's OOM killer would) is redelivered a bounded number
of times, then refused: its job ends failed with the reason, and the queue is empty, never a loop.

A real worker subprocess (``celery -A aicmo worker``, prefork pool, one child) consumes from the test
Redis and uses the test database (a file: the SQLite test database, or the PostgreSQL one under
tests/pgrun.py). The tasks live in tests/reliability/worker_tasks.py, loaded with ``--include``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aicmo.celery import app
from aicmo.deliveries import died_message
from aicmo.jobs import job_start
from aicmo.models import Job, JobStatus
from tests.fixtures.services import stop_process_group, subprocess_database_url
from tests.reliability.worker_tasks import die_every_time_task, die_first_time_task

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker_process(redis_server, tmp_path, settings):
    """Start the worker subprocess; yields the broker URL. Stopped (SIGTERM, then SIGKILL) at teardown."""
    broker = redis_server.url_for_db(1)
    settings.REDIS_URL = redis_server.url
    from aicmo.redis import get_redis

    get_redis().flushdb()
    get_redis(broker).flushdb()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env |= {
        "AICMO_ENV": "test",
        "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": redis_server.url,
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "AICMO_TASK_MAX_DELIVERIES": str(settings.AICMO_TASK_MAX_DELIVERIES),
    }
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "aicmo",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--include=tests.reliability.worker_tasks",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield broker
    finally:
        stop_process_group(proc)
        log.close()
        print((tmp_path / "worker.log").read_text()[-5000:])


def _send(task, broker: str, *args) -> None:
    with app.connection_for_write(broker) as conn:
        task.apply_async(args=list(args), connection=conn)


def _wait_finished(job_id: int, timeout: float = 120) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {Job.objects.get(pk=job_id).status} after {timeout} s")


def _queue_is_empty(broker: str) -> bool:
    from aicmo.redis import get_redis

    client = get_redis(broker)
    return client.llen("celery") == 0 and client.hlen("unacked") == 0


def test_a_task_that_always_kills_its_worker_fails_its_job_after_a_bounded_number_of_runs(
    worker_process, workspace, tmp_path, settings
):
    job = job_start(workspace=workspace, kind="oom-test")
    runs = tmp_path / "runs.log"

    _send(die_every_time_task, worker_process, job.pk, str(runs))

    job = _wait_finished(job.pk)
    limit = settings.AICMO_TASK_MAX_DELIVERIES
    assert job.status == JobStatus.FAILED
    assert job.message == died_message(limit)
    assert len(runs.read_text().splitlines()) == limit
    assert len(set(runs.read_text().splitlines())) == limit  # each run in a fresh child process
    deadline = time.monotonic() + 10
    while not _queue_is_empty(worker_process) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _queue_is_empty(worker_process)
    time.sleep(2)  # nothing comes back: the message is gone, not waiting for another delivery
    assert len(runs.read_text().splitlines()) == limit


def test_a_worker_lost_once_is_recovered_by_the_redelivery(worker_process, workspace, tmp_path):
    job = job_start(workspace=workspace, kind="lost-once")
    runs = tmp_path / "runs.log"

    _send(die_first_time_task, worker_process, job.pk, str(runs))

    job = _wait_finished(job.pk)
    assert (job.status, job.message) == (JobStatus.SUCCEEDED, "done")
    assert len(runs.read_text().splitlines()) == 2
