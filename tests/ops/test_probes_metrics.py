"""/healthz, /readyz and /metrics: no authentication for the probes and nothing leaked; metrics only for an
allowed network or the token, with queue depth, task outcomes, jobs and provider status from real parts."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from aicmo.celery import app
from aicmo.models import Job, JobStatus
from gateway import breaker
from gateway.models import ProviderAccount
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def prod_hosts(settings):
    """Production-like request handling: strict hosts and the HTTPS redirect on."""
    settings.ALLOWED_HOSTS = ["aicmo.example.com"]
    settings.SECURE_SSL_REDIRECT = True


def test_healthz_answers_without_auth_host_or_https(client, prod_hosts, django_assert_num_queries):
    with django_assert_num_queries(0):
        resp = client.get("/healthz", HTTP_HOST="10.0.0.7:8000")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


def test_readyz_ok_with_database_redis_broker_and_migrations(client, prod_hosts, redis_client):
    resp = client.get("/readyz", HTTP_HOST="10.0.0.7:8000")
    assert resp.status_code == 200, resp.content
    assert resp.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "redis": "ok", "broker": "ok"},
    }


def test_readyz_fails_without_redis_and_says_only_which(client, settings, redis_url):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["status"] == "unavailable"
    assert resp.json()["checks"]["redis"] == "fail" and resp.json()["checks"]["database"] == "ok"
    # Only fixed words: no exception text, host or port.
    assert set(resp.json()["checks"].values()) <= {"ok", "fail"}
    assert b"127.0.0.1" not in resp.content and b"rror" not in resp.content


def test_readyz_fails_while_a_migration_is_unapplied(client, redis_client):
    recorder = MigrationRecorder(connection)
    last = recorder.migration_qs.filter(app="aicmo").order_by("-id").first()
    last.delete()
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.json()["checks"]["migrations"] == "fail"


def test_probes_refuse_writes(client):
    assert client.post("/readyz").status_code == 405


def test_metrics_hidden_from_other_networks_and_wrong_tokens(client, settings):
    settings.AICMO_METRICS_TOKEN = "s3cret-token"
    settings.AICMO_METRICS_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.9").status_code == 404
    assert (
        client.get("/metrics", REMOTE_ADDR="192.0.2.9", HTTP_AUTHORIZATION="Bearer nope").status_code == 404
    )
    settings.AICMO_METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.9", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def sample(text: str, name: str, **labels) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def test_metrics_report_queues_tasks_jobs_providers_and_requests(
    client, settings, redis_broker, redis_client
):
    settings.AICMO_METRICS_TOKEN = "s3cret-token"
    settings.AICMO_METRICS_ALLOWED_NETWORKS = []
    ws = WorkspaceFactory(slug="metrics-ws")
    account = ProviderAccount.objects.create(
        workspace=ws, capability="enrich_person", adapter="demo_enrichment", name="Demo"
    )
    for _ in range(5):  # five consecutive failures open the breaker (gateway.breaker defaults)
        breaker.record(account.pk, ok=False, cause="HTTP 503")
    Job.objects.create(workspace=ws, kind="enrichment", status=JobStatus.RUNNING, total=10, done=4, failed=1)
    for i in range(3):
        app.send_task("publishing.tasks.campaign_send_task", args=[i])
    app.send_task("crm.tasks.import_run_task", args=[1])

    class FakeTask:  # what the Celery signal hands over: a task with its request's delivery info
        name = "crm.tasks.import_run_task"

        class request:  # noqa: N801
            delivery_info = {"routing_key": "imports"}

    from aicmo.metrics import count_event, task_outcome

    task_outcome(FakeTask, "success")
    task_outcome(FakeTask, "success")
    task_outcome(FakeTask, "failure")
    count_event("deliveries_sent", 7)
    assert client.get("/login/").status_code == 200

    resp = client.get("/metrics", REMOTE_ADDR="192.0.2.9", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert resp.status_code == 200
    text = resp.content.decode()
    assert sample(text, "aicmo_celery_queue_depth", queue="sending") == 3
    assert sample(text, "aicmo_celery_queue_depth", queue="imports") == 1
    assert sample(text, "aicmo_celery_queue_depth", queue="enrichment") == 0
    assert 0 <= sample(text, "aicmo_celery_queue_oldest_age_seconds", queue="sending") < 600
    assert sample(text, "aicmo_celery_tasks_total", queue="imports", outcome="success") == 2
    assert sample(text, "aicmo_celery_tasks_total", queue="imports", outcome="failure") == 1
    assert sample(text, "aicmo_events_total", event="deliveries_sent") == 7
    assert sample(text, "aicmo_jobs", kind="enrichment", status="running") == 1
    assert sample(text, "aicmo_job_progress_ratio", kind="enrichment") == pytest.approx(0.5)
    assert sample(text, "aicmo_gateway_breaker_state", workspace="metrics-ws", state="open") == 1
    assert sample(text, "aicmo_gateway_breaker_state", workspace="metrics-ws", state="closed") == 0
    assert sample(text, "aicmo_gateway_provider_calls_5m", workspace="metrics-ws") == 0
    assert sample(text, "aicmo_http_request_duration_seconds_count", route="login/", status="200") >= 1
    assert all(
        sample(text, "aicmo_scrape_source_up", source=s) == 1
        for s in ("queues", "tasks", "jobs", "providers")
    )


def test_grafana_dashboard_only_uses_metrics_we_export():
    import re
    from pathlib import Path

    import aicmo.metrics

    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs/grafana-dashboard.json").read_text())
    used = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"aicmo_[a-z0-9_]+", target["expr"])
    }
    source = Path(aicmo.metrics.__file__).read_text()
    exported = {re.sub(r"_total$", "", n) for n in re.findall(r'"(aicmo_[a-z0-9_]+)"', source)}
    assert used and used <= exported, used - exported
