"""PostgreSQL stopped for 30 s under load: requests fail with a clean 503, workers retry, nothing is
half-written after it returns.

Everything is a real process: a private PostgreSQL (tests/pgrun.py's server, migrated from scratch),
gunicorn serving the project on it, and a Celery worker on the test Redis. A client thread keeps creating
contacts through the API (an API key) and loading the dashboard (a signed-in session) while the server is
stopped with a fast shutdown (SIGINT: clients disconnected, open transactions rolled back) and, 30 s
later, started again on the same port over the same data. An audit export is queued while it is down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests
from django.db.utils import DatabaseError, IntegrityError, OperationalError

from aicmo.dblocks import (
    UNAVAILABLE_CODE,
    UNAVAILABLE_MESSAGE,
    is_database_unavailable,
    transient_error,
)
from tests import pgrun
from tests.fixtures.services import stop_process_group, wait_until

ROOT = Path(__file__).resolve().parents[2]
OUTAGE_SECONDS = 30
TAG = "outage-load"


def refused_connection_error() -> psycopg.OperationalError:
    """The error psycopg raises for a server that is not listening (a closed loopback port)."""
    port = pgrun.free_port()
    try:
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2)
    except psycopg.OperationalError as exc:
        return exc
    raise AssertionError("a closed port accepted a connection")


def wrapped(cause: BaseException) -> OperationalError:
    """What Django raises: its own OperationalError with the driver's error as ``__cause__``."""
    error = OperationalError(str(cause))
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("make", "unavailable"),
    [
        (refused_connection_error, True),
        (lambda: wrapped(refused_connection_error()), True),
        (lambda: psycopg.errors.AdminShutdown("terminating connection due to administrator command"), True),
        (lambda: psycopg.errors.CrashShutdown("terminating connection because of crash"), True),
        (lambda: psycopg.errors.CannotConnectNow("the database system is starting up"), True),
        (lambda: wrapped(psycopg.errors.ConnectionFailure("")), True),  # SQLSTATE 08006, no text
        (lambda: OperationalError("server closed the connection unexpectedly"), True),
        (lambda: psycopg.OperationalError("consuming input failed: server closed the connection"), True),
        (lambda: psycopg.InterfaceError("the connection is closed"), True),
        (lambda: wrapped(psycopg.errors.UniqueViolation("duplicate key")), False),
        (lambda: wrapped(psycopg.errors.LockNotAvailable("could not obtain lock on row")), False),
        (lambda: wrapped(psycopg.errors.UndefinedTable('relation "x" does not exist')), False),
        (lambda: OperationalError("disk I/O error"), False),
        (lambda: IntegrityError("connection refused"), False),
        (lambda: DatabaseError("x"), False),
        (lambda: RuntimeError("connection refused"), False),
        (lambda: ConnectionRefusedError(111, "Connection refused"), False),  # Redis / SMTP, not ours
    ],
)
def test_only_a_lost_or_refused_server_connection_counts_as_unavailable(make, unavailable):
    exc = make()
    assert is_database_unavailable(exc) is unavailable
    transient = transient_error(exc)
    assert (transient is not None and (transient.status, transient.code) == (503, UNAVAILABLE_CODE)) is (
        unavailable
    )


SETUP = """
import json
from django.test import Client
from aicmo.apikeys import api_key_create
from aicmo.jobs import job_start
from aicmo.models import Membership, Role, Workspace
from django.contrib.auth import get_user_model
user = get_user_model().objects.create_user(username="ops", email="ops@example.com", password="x-Pass-4821")
ws = Workspace.objects.create(name="Outage", slug="outage")
Membership.objects.create(workspace=ws, user=user, role=Role.ADMIN)
key = api_key_create(workspace=ws, name="load", role=Role.MARKETER, by=user)
job = job_start(workspace=ws, kind="audit_export", by=user, label="Audit log export",
                params={"download_permission": "manage"})
client = Client()
client.force_login(user)
print(json.dumps({"workspace": ws.pk, "key": key.secret, "job": job.pk,
                  "session": client.cookies["sessionid"].value}))
"""

ENQUEUE = """
import sys
from aicmo.tasks import audit_export_task
audit_export_task.delay(int(sys.argv[1]))
"""

CHECK = """
import json
TAG = __import__("os").environ["OUTAGE_TAG"]
from aicmo.models import Job
from crm.models import Contact
job = Job.objects.get(pk=int(__import__("os").environ["OUTAGE_JOB"]))
print(json.dumps({"emails": list(Contact.objects.values_list("email", flat=True)),
                  "tagged": list(Contact.objects.filter(tags__name=TAG).values_list("email", flat=True)),
                  "job_status": job.status}))
"""


def _manage(env: dict, code: str, *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}", *args],
        cwd=ROOT,
        env=env | {"DJANGO_SETTINGS_MODULE": "aicmo.settings", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture
def private_postgres():
    user = pgrun.pick_user()
    bindir = next((c for c in pgrun.candidate_bindirs() if pgrun.usable(c, user)), None)
    if bindir is None:
        pytest.skip("no usable PostgreSQL binaries (pip install pgserver)")
    server = pgrun.Server(bindir, user)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Load(threading.Thread):
    """Creates a contact through the API and loads the dashboard, in turn, until stopped."""

    def __init__(self, base: str, setup: dict):
        super().__init__(daemon=True)
        self.base = base
        self.api = requests.Session()
        self.api.headers.update({"X-Api-Key": setup["key"], "X-Workspace": str(setup["workspace"])})
        self.page = requests.Session()
        self.page.cookies.set("sessionid", setup["session"])
        # (kind, email, status, headers, body, sent, answered): the two times are time.monotonic()
        self.results: list[tuple[str, str, int, dict, str, float, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            email = f"load{n}@example.com"
            for kind, call in (
                (
                    "api",
                    lambda e=email: self.api.post(
                        f"{self.base}/api/v1/crm/contacts/", json={"email": e, "tags": [TAG]}
                    ),
                ),
                ("page", lambda: self.page.get(f"{self.base}/", allow_redirects=False)),
            ):
                sent = time.monotonic()
                try:
                    resp = call()
                except requests.RequestException as exc:
                    self.results.append((kind, email, 0, {}, repr(exc), sent, time.monotonic()))
                    continue
                answer = (resp.status_code, dict(resp.headers), resp.text)
                self.results.append((kind, email, *answer, sent, time.monotonic()))
            time.sleep(0.05)

    def count(self, predicate) -> int:
        return sum(1 for r in list(self.results) if predicate(r))


@pytest.mark.slow
@pytest.mark.faults  # its own PostgreSQL server: the same run in either phase, so only in the PostgreSQL one
def test_postgresql_stopped_30s_under_load(private_postgres, redis_server, tmp_path):
    server = private_postgres
    broker = redis_server.url_for_db(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_URL"))}
    env |= {
        "AICMO_ENV": "test",
        "DATABASE_URL": server.url,
        "REDIS_URL": redis_server.url,
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "AICMO_DB_LOCKED_BASE_DELAY": "1",
        "AICMO_DB_LOCKED_MAX_DELAY": "8",
        "AICMO_DB_LOCKED_MAX_RETRIES": "20",
        "MEDIA_ROOT": str(tmp_path / "media"),
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, timeout=600
    )
    setup = json.loads(_manage(env, SETUP).strip().splitlines()[-1])

    port = pgrun.free_port()
    web_log = (tmp_path / "web.log").open("w")
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "aicmo.wsgi"],
        cwd=ROOT,
        env=env | {"PORT": str(port), "WEB_CONCURRENCY": "2", "FORWARDED_ALLOW_IPS": ""},
        stdout=web_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker_log_path = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "aicmo", "worker", "--pool=solo", "--without-gossip"]
        + ["--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
        cwd=ROOT,
        env=env,
        stdout=worker_log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    load = Load(base, setup)
    try:
        wait_until(lambda: _answers(f"{base}/healthz"), 60, "gunicorn to answer")
        load.start()
        wait_until(lambda: load.count(lambda r: r[0] == "api" and r[2] == 201) >= 3, 60, "writes before")

        stopping_at = time.monotonic()
        server.stop(remove=False)  # fast shutdown: clients are disconnected, open transactions roll back
        stopped_at = time.monotonic()
        during = len(load.results)
        _manage(env, ENQUEUE, str(setup["job"]))  # queued while the database is down
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
        outage = load.results[during:]
        assert server.launch(server.port), "PostgreSQL did not come back on its port"
        before = _created(load.results)
        wait_until(lambda: _created(load.results) >= before + 3, 60, "writes after the restart")
        load.stopping.set()
        load.join(10)
        results = list(load.results)
        # During the outage: every answer a clean 503 (the API's error body, the page's text) with
        # Retry-After, never a 500 or a dropped connection.
        problems = []
        if sum(1 for r in outage if r[2] == 503) < len(outage) // 2:
            problems.append(f"fewer than half the outage's requests were 503: {[r[:3] for r in outage]}")
        for kind, email, status, headers, body, _sent, _answered in results:
            if status not in {200, 201, 302, 503}:
                problems.append(f"{kind} {email}: {status} {body[-300:]}")
            elif status == 503 and not _clean_503(kind, headers, body):
                problems.append(f"{kind} {email}: unclean 503 {headers.get('Retry-After')} {body[-300:]}")
        # Nothing half-written: the contacts whose request got 201 exist, each once and whole (with its tag);
        # no other contact exists except one whose request was in flight when the server went down: its
        # COMMIT may have been durable with the acknowledgement lost (an in-doubt commit, which no client
        # of a database can rule out), so it may or may not be stored, whole or not at all, answered 503.
        check_env = env | {"OUTAGE_JOB": str(setup["job"]), "OUTAGE_TAG": TAG}
        stored = json.loads(_manage(check_env, CHECK))
        emails = stored["emails"]
        created = sorted(r[1] for r in results if r[0] == "api" and r[2] == 201)
        in_doubt = {
            r[1]
            for r in results
            if r[0] == "api" and r[2] != 201 and r[5] < stopped_at and r[6] > stopping_at
        }
        if len(emails) != len(set(emails)):
            problems.append(f"a contact stored twice: {sorted(emails)}")
        if missing := set(created) - set(emails):
            problems.append(f"answered 201 but not stored: {sorted(missing)}")
        if unanswered := set(emails) - set(created) - in_doubt:
            answers = [r[:3] + (r[4][-200:],) for r in results if r[1] in unanswered and r[0] == "api"]
            problems.append(f"stored without a 201, not in flight at the stop: {answers}")
        if untagged := set(emails) - set(stored["tagged"]):
            problems.append(f"stored without the tag the same request set: {sorted(untagged)}")
        # The worker retried the export queued during the outage instead of failing it.
        try:
            wait_until(
                lambda: json.loads(_manage(check_env, CHECK))["job_status"] == "succeeded",
                120,
                "the export queued during the outage to finish",
            )
        except AssertionError as exc:
            problems.append(str(exc))
        worker_log = worker_log_path.read_text()
        if "Retry in" not in worker_log:
            problems.append("the worker never retried")
        assert not problems, "\n".join(problems) + "\n" + worker_log[-2000:]
    finally:
        load.stopping.set()
        load.join(10)
        stop_process_group(web)
        stop_process_group(worker)
    assert outage, "no request was made while the database was down"


def _clean_503(kind: str, headers: dict, body: str) -> bool:
    if headers.get("Retry-After") != "5":
        return False
    if kind == "api":
        return json.loads(body)["error"]["code"] == UNAVAILABLE_CODE
    return body == UNAVAILABLE_MESSAGE


def _created(results) -> int:
    return sum(1 for r in list(results) if r[0] == "api" and r[2] == 201)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
