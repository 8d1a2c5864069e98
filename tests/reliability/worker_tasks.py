"""Tasks for the worker-death tests, loaded by the test's worker subprocess with ``--include``.

Each run appends a line to ``log_path`` before doing anything else, so the test counts runs exactly."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from celery import shared_task

from aicmo.jobs import job_finish, job_mark_running


def _record_run(log_path: str) -> int:
    with Path(log_path).open("a") as log:
        log.write(f"{os.getpid()}\n")
    return len(Path(log_path).read_text().splitlines())


@shared_task(acks_late=True, reject_on_worker_lost=True)
def die_every_time_task(job_id: int, log_path: str) -> None:
    """Like a task whose memory use gets it OOM-killed: the process dies with SIGKILL, every time."""
    _record_run(log_path)
    job_mark_running(job_id=job_id)
    os.kill(os.getpid(), signal.SIGKILL)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def die_first_time_task(job_id: int, log_path: str) -> str:
    """Dies on its first delivery only (a worker lost once): the redelivery finishes the job."""
    if _record_run(log_path) == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    job_finish(job_id=job_id, status="succeeded", message="done")
    return "done"
