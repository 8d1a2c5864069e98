"""Prometheus metrics at ``/metrics`` (prometheus-client text format 0.0.4).

Who may scrape: a request carrying ``Authorization: Bearer <AICMO_METRICS_TOKEN>`` (when that variable is
set), or one whose ``REMOTE_ADDR`` lies in ``AICMO_METRICS_ALLOWED_NETWORKS`` (CIDRs; default loopback).
``X-Forwarded-For`` is not trusted: scrape the web process directly, not through the public proxy. Anyone
else gets a plain 404.

Metrics (``aicmo_`` prefix):

- ``http_request_duration_seconds{method,route,status}`` histogram, measured by :class:`MetricsMiddleware`
  in each web process. Under gunicorn with several workers set ``PROMETHEUS_MULTIPROC_DIR`` (an empty,
  writable directory per host) so every worker's samples are summed (prometheus-client multiprocess mode).
- ``celery_queue_depth{queue}`` / ``celery_queue_oldest_age_seconds{queue}``: read from the broker at scrape
  time (:mod:`aicmo.queues`).
- ``celery_tasks_total{queue,task,outcome}`` (outcome: success, failure, retry): counted by the workers in
  Redis (hash ``aicmo:metrics:tasks``), so every host's workers add to one counter. The send rate is
  ``rate(aicmo_celery_tasks_total{queue="sending",outcome="success"}[5m])``; apps may also count domain
  events with :func:`count_event` → ``events_total{event}``.
- ``jobs{kind,status}`` (queued and running jobs) and ``job_progress_ratio{job,kind}`` (each running job).
- ``gateway_breaker_state{account,capability,adapter,state}`` (1 for the current state),
  ``gateway_provider_calls_5m``, ``gateway_provider_success_ratio_5m``, ``gateway_provider_latency_ms_avg_5m``
  from the function named by ``AICMO_PROVIDER_STATUS`` (the gateway's, which the core does not import).
- whatever the functions listed in ``AICMO_METRICS_SOURCES`` yield (prometheus ``Metric`` families; e.g.
  analytics' rollup lag).
- ``scrape_source_up{source}``: 0 when a source above failed during this scrape (the others still report).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from functools import cache

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotFound
from django.utils.module_loading import import_string
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger(__name__)

TASKS_KEY = "aicmo:metrics:tasks"
EVENTS_KEY = "aicmo:metrics:events"
PROVIDER_WINDOW_MINUTES = 5

REQUEST_LATENCY = Histogram(
    "aicmo_http_request_duration_seconds",
    "Time from the request entering Django to the response leaving it.",
    ["method", "route", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


# ------------------------------------------------------------------------------------ recording side


class MetricsMiddleware:
    """Observes every request's duration, labelled by URL *route* (pattern, not path: bounded labels)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name) if match is not None else "<unmatched>"
        REQUEST_LATENCY.labels(request.method, route, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


def _redis():
    from aicmo.redis import get_redis

    return get_redis()


def task_outcome(task, outcome: str) -> None:
    """Count one task outcome (``success``/``failure``/``retry``); called from Celery signals. Never
    raises: losing a sample beats failing a task that already did its work."""
    if task is None:
        return
    delivery = getattr(task.request, "delivery_info", None) or {}
    queue = delivery.get("routing_key") or delivery.get("queue") or "unknown"
    try:
        _redis().hincrby(TASKS_KEY, f"{queue}\t{task.name}\t{outcome}", 1)
    except Exception:  # noqa: BLE001
        log.warning("task outcome not counted", exc_info=True)


def count_event(event: str, n: int = 1) -> None:
    """Add ``n`` to the shared counter ``aicmo_events_total{event=...}`` (e.g. ``deliveries_sent``)."""
    try:
        _redis().hincrby(EVENTS_KEY, event, n)
    except Exception:  # noqa: BLE001
        log.warning("event %s not counted", event, exc_info=True)


# ------------------------------------------------------------------------------------- scrape side


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _queue_metrics():
    from aicmo.queues import queue_stats

    depth = GaugeMetricFamily(
        "aicmo_celery_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"]
    )
    age = GaugeMetricFamily(
        "aicmo_celery_queue_oldest_age_seconds",
        "Age of the oldest message waiting in a Celery queue (0 when empty).",
        labels=["queue"],
    )
    for stats in queue_stats():
        depth.add_metric([stats.name], stats.depth)
        age.add_metric([stats.name], stats.oldest_age_seconds or 0.0)
    return [depth, age]


def _task_metrics():
    client = _redis()
    tasks = CounterMetricFamily(
        "aicmo_celery_tasks", "Task outcomes counted by all workers.", labels=["queue", "task", "outcome"]
    )
    for field, value in client.hgetall(TASKS_KEY).items():
        parts = _text(field).split("\t")
        if len(parts) == 3:
            tasks.add_metric(parts, int(value))
    events = CounterMetricFamily("aicmo_events", "Domain events counted by the apps.", labels=["event"])
    for field, value in client.hgetall(EVENTS_KEY).items():
        events.add_metric([_text(field)], int(value))
    return [tasks, events]


def _job_metrics():
    from aicmo.selectors import job_counts_open, jobs_running_progress

    jobs = GaugeMetricFamily(
        "aicmo_jobs", "Jobs not finished yet, by kind and status.", labels=["kind", "status"]
    )
    for row in job_counts_open():
        jobs.add_metric([row["kind"], row["status"]], row["n"])
    progress = GaugeMetricFamily(
        "aicmo_job_progress_ratio", "Share of a running job's items processed (0..1).", labels=["job", "kind"]
    )
    for job in jobs_running_progress():
        ratio = (job.done + job.failed) / job.total if job.total else 0.0
        progress.add_metric([str(job.pk), job.kind], min(1.0, ratio))
    return [jobs, progress]


def _provider_metrics():
    rows = import_string(settings.AICMO_PROVIDER_STATUS)(window_minutes=PROVIDER_WINDOW_MINUTES)
    labels = ["account", "workspace", "capability", "adapter"]
    state = GaugeMetricFamily(
        "aicmo_gateway_breaker_state",
        "Circuit breaker state per provider account.",
        labels=[*labels, "state"],
    )
    calls = GaugeMetricFamily(
        "aicmo_gateway_provider_calls_5m", "Provider calls, last 5 minutes.", labels=labels
    )
    ratio = GaugeMetricFamily(
        "aicmo_gateway_provider_success_ratio_5m", "Provider success ratio, last 5 minutes.", labels=labels
    )
    latency = GaugeMetricFamily(
        "aicmo_gateway_provider_latency_ms_avg_5m",
        "Mean provider latency (ms), last 5 minutes.",
        labels=labels,
    )
    for row in rows:
        values = [str(row["account_id"]), row["workspace"], row["capability"], row["adapter"]]
        for name in ("closed", "open", "half_open"):
            state.add_metric([*values, name], 1 if row["breaker_state"] == name else 0)
        calls.add_metric(values, row["calls"])
        if row["success_ratio"] is not None:
            ratio.add_metric(values, row["success_ratio"])
        if row["latency_ms_avg"] is not None:
            latency.add_metric(values, row["latency_ms_avg"])
    return [state, calls, ratio, latency]


class OpsCollector:
    """Computes the fleet-wide metrics at scrape time; a failing source is reported, not fatal."""

    def sources(self) -> dict:
        out = {
            "queues": _queue_metrics,
            "tasks": _task_metrics,
            "jobs": _job_metrics,
            "providers": _provider_metrics,
        }
        for path in settings.AICMO_METRICS_SOURCES:
            out[path] = import_string(path)
        return out

    def collect(self):
        up = GaugeMetricFamily(
            "aicmo_scrape_source_up", "1 when a metrics source answered.", labels=["source"]
        )
        for name, source in self.sources().items():
            try:
                yield from list(source())
                up.add_metric([name], 1)
            except Exception:  # noqa: BLE001 - one broken dependency must not hide the other metrics
                log.warning("metrics source %s failed", name, exc_info=True)
                up.add_metric([name], 0)
        yield up


@cache
def _ops_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OpsCollector())
    return registry


def _process_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def scrape_allowed(request) -> bool:
    token = settings.AICMO_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(net, strict=False) for net in settings.AICMO_METRICS_ALLOWED_NETWORKS
    )


def metrics_view(request):
    if not scrape_allowed(request):
        return HttpResponseNotFound("Not found.", content_type="text/plain")
    body = generate_latest(_process_registry()) + generate_latest(_ops_registry())
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
