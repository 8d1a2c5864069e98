"""Worker processes that a test SIGKILLs and starts again.

``CrashWorkers(tmp_path, broker_url, redis_url)`` starts real ``celery worker`` processes (prefork pool, the
deployment's concurrency for the queue, each in its own process group) on the test database
(``subprocess_database_url``) and the test Redis. ``kill()`` SIGKILLs a worker's whole process group — the
main process and its pool children, as a lost host or the OOM killer of a container would — and ``start``
again is the restart. Unacknowledged tasks (every task is ``acks_late``) come back after
``visibility`` seconds (``tests/reliability/crash_app.py``)."""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.fixtures.services import stop_process_group, worker_env

ROOT = Path(__file__).resolve().parents[2]


class CrashWorkers:
    def __init__(
        self, tmp_path: Path, broker_url: str, redis_url: str, *, visibility: int = 10, **env
    ) -> None:
        self.tmp_path, self.broker_url, self.redis_url = tmp_path, broker_url, redis_url
        self.visibility = visibility
        self.env = {k: str(v) for k, v in env.items()}
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, *, queues: str, concurrency: int) -> subprocess.Popen:
        env = worker_env(
            self.broker_url,
            self.redis_url,
            CELERY_VISIBILITY_TIMEOUT=str(self.visibility),
            PYTHONUNBUFFERED="1",
            **self.env,
        )
        argv = [sys.executable, "-m", "celery", "-A", "tests.reliability.crash_app", "worker", "-l", "info"]
        argv += ["-Q", queues, "-n", f"{name}@%h", "-P", "prefork", "--concurrency", str(concurrency)]
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        with (self.tmp_path / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(  # noqa: S603
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL the worker's process group: nothing runs its shutdown code, nothing is acknowledged."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def log(self, name: str) -> str:
        path = self.tmp_path / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def check_runs_within_visibility(self) -> None:
        """The precondition of every test here (and of production: docs/OPERATIONS.md): no task ran longer
        than the visibility timeout. Past it, Redis hands the still-running task to a second process, and
        two copies running at once is that misconfiguration, not the crash being tested."""
        runtimes = [
            float(seconds)
            for path in self.tmp_path.glob("*.log")
            for seconds in re.findall(r"succeeded in ([0-9.]+)s", path.read_text(errors="replace"))
        ]
        assert max(runtimes, default=0) < self.visibility, (
            f"a task ran {max(runtimes):.1f} s, longer than the visibility timeout ({self.visibility} s): "
            "the machine is too slow for this test's timing"
        )

    def broker_state(self) -> str:
        """What the broker holds: queued and unacknowledged messages (for failure messages)."""
        from aicmo.redis import get_redis

        client = get_redis(self.broker_url)
        queued = {key: client.llen(key) for key in client.keys("*") if client.type(key) == b"list"}
        return f"\nbroker: queued {queued}, unacked {client.zrange('unacked_index', 0, -1, withscores=True)}"

    def stop(self) -> None:
        for proc in self.procs:
            stop_process_group(proc)


class ApolloServer:
    """Apollo's ``POST /api/v1/people/bulk_match`` on pytest-httpserver (the shape of
    ``tests/crm/test_enrichment_apollo.py``): matches every detail in input order, holds each answer
    ``delay`` seconds (so a run lasts long enough to be killed in), and counts the details received per
    email — the vendor calls a contact cost."""

    def __init__(self, httpserver, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: collections.Counter = collections.Counter()
        self._lock = threading.Lock()
        httpserver.expect_request("/api/v1/people/bulk_match", method="POST").respond_with_handler(
            self._answer
        )

    def _answer(self, request):
        from werkzeug import Response

        details = request.get_json()["details"]
        time.sleep(self.delay)
        with self._lock:
            self.calls.update(d["email"] for d in details)
        matches = [
            {
                "id": f"ap-{d['email']}",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "title": "CTO",
                "email": d["email"],
                "email_status": "verified",
                "organization": {"name": "Analytical", "primary_domain": "analytical.io"},
            }
            for d in details
        ]
        return Response(
            json.dumps({"status": "success", "matches": matches}), content_type="application/json"
        )

    def called(self) -> int:
        with self._lock:
            return sum(self.calls.values())
