"""The real-service fixtures really work: Redis, a Celery worker on Redis, the SMTP sink, vendor HTTP
servers, the outbound-network guard, the local Redis runner used by `make run`, and the browser."""

from __future__ import annotations

import smtplib
import socket
import threading
import time
from email.message import EmailMessage

import httpx
import pytest
import redis
from celery import shared_task

from aicmo.localredis import start_redis
from aicmo.models import Workspace
from aicmo.redis import get_redis


@shared_task(name="tests.core.fixture_probe")
def fixture_probe(workspace_id: int, marker: str) -> dict:
    """Reads a committed row and writes to the app's Redis, from the worker thread."""
    workspace = Workspace.objects.get(pk=workspace_id)
    get_redis().set(f"probe:{marker}", workspace.slug)
    return {"slug": workspace.slug, "thread": threading.current_thread().name}


def test_redis_client_is_a_real_server(redis_client, redis_url, settings):
    assert redis_url == settings.REDIS_URL
    assert redis_client is get_redis()
    redis_client.set("greeting", "hello", ex=60)
    assert redis_client.get("greeting") == b"hello"
    assert redis_client.ttl("greeting") > 0
    assert "redis_version" in redis_client.info("server")


def test_redis_client_starts_each_test_empty(redis_client):
    assert redis_client.dbsize() == 0
    redis_client.set("left-behind", "1")


def test_get_redis_is_lazy_and_cached_per_url(redis_url):
    unused = "redis://127.0.0.1:1/0"  # nothing listens there: building the client must not connect
    assert get_redis(unused) is get_redis(unused)
    assert get_redis(unused) is not get_redis(redis_url)
    with pytest.raises(redis.ConnectionError):
        get_redis(unused).ping()


def test_live_celery_worker_runs_task_through_redis(live_celery_worker, redis_client, workspace):
    from aicmo.celery import app

    assert app.conf.broker_url.startswith("redis://127.0.0.1:")
    result = fixture_probe.delay(workspace.pk, "one")
    outcome = result.get(timeout=30)
    assert outcome["slug"] == "acme"
    assert outcome["thread"] != threading.main_thread().name  # ran in the worker, not eagerly here
    assert redis_client.get("probe:one") == b"acme"
    # The result travelled back through the Redis result backend, not an in-memory one.
    assert app.backend.client.exists(f"celery-task-meta-{result.id}")


def test_on_commit_enqueue_reaches_a_fresh_worker(live_celery_worker, redis_client, workspace):
    """A second worker in the same process (fresh broker pools) runs a task enqueued on commit."""
    from django.db import transaction

    with transaction.atomic():
        transaction.on_commit(lambda: fixture_probe.delay(workspace.pk, "on-commit"))
    for _ in range(200):
        if redis_client.get("probe:on-commit"):
            break
        time.sleep(0.05)
    assert redis_client.get("probe:on-commit") == b"acme"


def test_smtp_sink_records_messages(smtp_sink):
    message = EmailMessage()
    message["From"] = "Sender <sender@example.com>"
    message["To"] = "someone@example.org"
    message["Subject"] = "Quarterly plan"
    message.set_content("Hello from the test.\n")
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.login("mailer", "s3cret")
        client.send_message(
            message, from_addr="bounce@example.com", to_addrs=["someone@example.org", "bcc@x.org"]
        )

    [received] = smtp_sink.wait_for(1)
    assert received["Subject"] == "Quarterly plan"
    assert received.get_content().strip() == "Hello from the test."
    assert received.envelope_from == "bounce@example.com"
    assert received.envelope_to == ["someone@example.org", "bcc@x.org"]
    assert smtp_sink.logins == [("mailer", "s3cret")]
    smtp_sink.clear()
    assert smtp_sink.messages == []


def test_vendor_server_serves_json(vendor_server):
    vendor_server.json("POST", "/v1/lookup", {"ok": True, "score": 7}, status=201)
    response = httpx.post(vendor_server.base_url + "/v1/lookup", json={"email": "a@b.c"}, timeout=5)
    assert response.status_code == 201
    assert response.json() == {"ok": True, "score": 7}
    [request] = vendor_server.requests
    assert request.json == {"email": "a@b.c"}


def test_outbound_network_to_non_loopback_is_refused(outbound_guard):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(outbound_guard):
        sock.connect(("203.0.113.10", 80))  # TEST-NET-3: never reachable anyway
    with pytest.raises(outbound_guard):
        httpx.get("http://93.184.216.34/", timeout=2)


def test_local_redis_persists_across_restarts(tmp_path):
    """What `make run` relies on: data written before a stop is there after the restart."""
    first = start_redis(data_dir=tmp_path, persist=True)
    try:
        redis.Redis.from_url(first.url).set("kept", "yes")
    finally:
        first.stop()
    assert not first.is_running()
    second = start_redis(data_dir=tmp_path, persist=True, port=first.port)
    try:
        assert redis.Redis.from_url(second.url).get("kept") == b"yes"
    finally:
        second.stop()


def test_browser_login_opens_the_dashboard(
    browser_page, browser_login, live_server, member_factory, workspace
):
    user = member_factory(workspace, "marketer")
    browser_page.goto(live_server.url + "/")
    assert "/login/" in browser_page.url  # anonymous: sent to the login page

    browser_login(browser_page, live_server, user, workspace)
    response = browser_page.goto(live_server.url + "/")
    assert response.status == 200
    assert "/login/" not in browser_page.url
    assert "Acme" in browser_page.content()
    assert browser_page.evaluate("typeof htmx") == "object"  # local static assets are served


def test_a_test_redis_dies_with_the_process_that_started_it(tmp_path):
    """A crashed or killed test run must not leave redis-server processes behind."""
    import os
    import signal
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from aicmo.localredis import start_redis\n"
        f"server = start_redis(data_dir={str(tmp_path)!r})\n"
        "print(server.process.pid, server.port, flush=True)\n"
        "time.sleep(60)\n"
    )
    starter = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        redis_pid, port = map(int, starter.stdout.readline().split())
        assert redis.Redis(port=port).ping()
        starter.send_signal(signal.SIGKILL)  # no cleanup code runs in the starter
        starter.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=port, socket_connect_timeout=0.2).ping()
            except redis.ConnectionError:
                break
            time.sleep(0.05)
        else:
            os.kill(redis_pid, signal.SIGKILL)
            pytest.fail("redis-server outlived the process that started it")
    finally:
        starter.kill()
        starter.stdout.close()
