"""Publishing fixtures: a verified sender, an email content, a list audience and an SMTP account on the
test SMTP sink (the real gateway SMTP adapter and chain)."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from aicmo.localredis import free_port
from crm.models import ListMembership
from gateway.capabilities import Capability
from gateway.crypto import encrypt_credentials
from gateway.models import ProviderAccount
from publishing.models import Content, Sender
from publishing.services import content as content_services
from tests.crm.factories import ContactFactory, ContactListFactory
from tests.fixtures.services import worker_env
from tests.gateway.test_adapters_mail import dovecot  # noqa: F401 - the gateway tests' real IMAP server fixture

HTML = (
    "<html><head><style>p { color: #123456 }</style></head><body>"
    '<p>Hello {{ contact.first_name | default("there") }}</p>'
    '<a href="https://acme.example/offer">Offer</a>'
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>'
)


MAILGUN_KEY = "key-workspace-signing-0123456789"


def mailgun_body(message_id: str, *, event="failed", severity="permanent", token="tok-1", key=MAILGUN_KEY):
    """Mailgun's JSON webhook shape (signature block + event-data), signed HMAC-SHA256(timestamp+token)."""
    timestamp = "1534108637"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": {
                "event": event,
                "severity": severity,
                "reason": "bounce",
                "timestamp": 1534108637.153125,
                "id": "Fs7-5t81S2ilwd-UuzJ6eg",
                "recipient": "someone@example.org",
                "delivery-status": {
                    "code": 550,
                    "message": "5.1.1 <script>alert(1)</script> mailbox unknown",
                    "description": "Not delivered",
                },
                "message": {"headers": {"message-id": message_id.strip("<>"), "subject": "Hi"}},
                "user-variables": {},
                "tags": [],
            },
        }
    )


def make_sender(workspace, email="news@acme.example", verified=True) -> Sender:
    return Sender.objects.create(
        workspace=workspace, email=email, name="Acme News", verified_at=timezone.now() if verified else None
    )


def make_content(
    workspace, *, sender=None, html=HTML, subject="Hi {{ contact.first_name }}", **extra
) -> Content:
    content = content_services.content_create(workspace=workspace, name="Newsletter")
    content_services.email_version_save(
        content=content, subject=subject, sender=sender or make_sender(workspace), html=html, **extra
    )
    return content


def make_audience(workspace, n: int, **contact_kwargs):
    contact_list = ContactListFactory(workspace=workspace)
    contacts = ContactFactory.create_batch(n, workspace=workspace, **contact_kwargs)
    ListMembership.objects.bulk_create(
        [ListMembership(workspace=workspace, contact_list=contact_list, contact=c) for c in contacts]
    )
    return contact_list, contacts


def make_campaign(workspace, n: int = 3, *, name: str = "C", **kwargs):
    """A draft email campaign to a new list of ``n`` contacts."""
    from publishing.services import campaigns

    contact_list, _ = make_audience(workspace, n)
    return campaigns.campaign_create(
        workspace=workspace,
        name=name,
        content=make_content(workspace),
        audience={"lists": [contact_list.pk]},
        **kwargs,
    )


def send_to_one(workspace, smtp_sink):
    """One message really sent through the SMTP sink: (delivery, the received message)."""
    from publishing.models import Delivery
    from publishing.services import campaigns, sending

    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    contact_list, _ = make_audience(workspace, 1)
    campaign = campaigns.campaign_create(
        workspace=workspace, name="T", content=make_content(workspace), audience={"lists": [contact_list.pk]}
    )
    campaigns.campaign_send_now(campaign=campaign)
    sending.campaign_send_batch(campaign_id=campaign.pk)
    message = smtp_sink.wait_for(1)[0]
    return Delivery.objects.get(campaign=campaign), message


def smtp_account(workspace, host: str, port: int, *, name="SMTP", priority=1) -> ProviderAccount:
    account = ProviderAccount.objects.create(
        workspace=workspace,
        capability=Capability.SEND_EMAIL,
        adapter="smtp",
        name=name,
        priority=priority,
        base_url=f"smtp+plain://{host}:{port}",
        options={"from_email": "news@acme.example"},
        timeout_seconds=5,
        credentials_encrypted=encrypt_credentials({"username": "mailer", "password": "pw"}),
    )
    return account


def imap_account(workspace, port: int) -> ProviderAccount:
    """The workspace's fetch_replies account on the real dovecot mailbox at ``port`` (the ``dovecot`` fixture)."""
    return ProviderAccount.objects.create(
        workspace=workspace,
        capability=Capability.FETCH_REPLIES,
        adapter="imap",
        name="Replies",
        priority=1,
        base_url=f"imap+plain://127.0.0.1:{port}",
        timeout_seconds=5,
        credentials_encrypted=encrypt_credentials({"username": "inbox", "password": "pw123"}),
    )


@pytest.fixture
def fast_gateway(settings, redis_client):
    """Real Redis for the breaker, and a short retry budget so "every provider down" is decided quickly."""
    settings.GATEWAY_RETRY = {"max_attempts": 2, "max_seconds": 3, "base_delay": 0.01, "max_delay": 0.02}
    return redis_client


def drain_tracking():
    """Flush buffered opens and clicks into EngagementEvent, as the beat task does every few seconds."""
    from publishing.services.event_buffer import tracking_events_drain

    return tracking_events_drain()


# ------------------------------------------------------------------ worker and sink processes

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3


@pytest.fixture
def celery_on_redis(redis_server, settings, monkeypatch):
    """This process publishes tasks to the test Redis (database 1), where the worker subprocess consumes."""
    from aicmo.celery import app
    from tests.fixtures.services import _reset_celery_connections

    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    url = redis_server.url_for_db(1)
    settings.REDIS_URL = redis_server.url
    saved = {k: app.conf.get(k) for k in ("broker_url", "result_backend", "task_always_eager")}
    app.conf.update(broker_url=url, result_backend=url, task_always_eager=False)
    _reset_celery_connections(app)
    app.backend.client.flushdb()
    try:
        yield url
    finally:
        _reset_celery_connections(app)
        app.conf.update(saved)


class Processes:
    def __init__(self, tmp_path: Path, broker_url: str, redis_url: str) -> None:
        self.tmp_path, self.broker_url, self.redis_url = tmp_path, broker_url, redis_url
        self.procs: list[subprocess.Popen] = []
        self.allow: list[str] = []  # the sink's host:port, for the workers' SSRF guard

    def sink(self, *, slow: list[str], delay: float) -> tuple[int, Path, Path]:
        port, log, marker = free_port(), self.tmp_path / "sink.jsonl", self.tmp_path / "marker"
        self.allow.append(f"127.0.0.1:{port}")
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests/publishing/sink_process.py"),
                str(port),
                str(log),
                "--slow",
                *slow,
                "--marker",
                str(marker),
                "--delay",
                str(delay),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return port, log, marker

    def worker(self, name: str, extra_env: dict | None = None) -> subprocess.Popen:
        env = worker_env(
            self.broker_url,
            self.redis_url,
            PUBLISHING_CLAIM_LEASE_SECONDS=str(LEASE_SECONDS),
            PUBLISHING_SEND_BATCH_SIZE="5",
            PUBLISHING_SEND_CONCURRENCY="1",
            AICMO_GATEWAY_LOOPBACK_ALLOW=",".join(self.allow),
            **(extra_env or {}),
        )
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "aicmo",
                "worker",
                "-P",
                "solo",
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "warning",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp_path / f"{name}.log", "w"),  # noqa: SIM115
        )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def processes(tmp_path, celery_on_redis, redis_server):
    procs = Processes(tmp_path, celery_on_redis, redis_server.url)
    yield procs
    procs.stop()
