"""Probes for load balancers and orchestrators, answered before any other middleware.

- ``GET /healthz``: the process is up and serving (no dependency is touched). 200 ``{"status": "ok"}``.
- ``GET /readyz``: ready for traffic: the database answers, Redis answers, the Celery broker accepts a
  connection and every migration on disk is applied. 200 ``{"status": "ok", "checks": {...}}`` or 503
  ``{"status": "unavailable", "checks": {...}}`` where each check is ``"ok"`` or ``"fail"``: no error
  text, host name or version leaves the process (the reason is logged instead).

:class:`OpsEndpointsMiddleware` sits first in ``MIDDLEWARE`` so probes and Prometheus scrapes (which
address the pod by IP and over plain HTTP) bypass ``ALLOWED_HOSTS``, the HTTPS redirect, sessions and
the workspace middleware. Neither probe needs authentication.
"""

from __future__ import annotations

import logging

from django.db import connection
from django.http import JsonResponse

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 3


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_migrations() -> None:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        raise RuntimeError(f"{len(plan)} migration(s) not applied")


def check_redis() -> None:
    from aicmo.redis import get_redis

    get_redis().ping()


def check_broker() -> None:
    from aicmo.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_SECONDS)


READINESS_CHECKS = {
    "database": check_database,
    "migrations": check_migrations,
    "redis": check_redis,
    "broker": check_broker,
}


def readiness() -> dict[str, bool]:
    """Run every readiness check; ``{name: passed}``. A failing check is logged with its reason."""
    results = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
            results[name] = True
        except Exception:  # noqa: BLE001 - a probe reports any failure, and logs why
            log.warning("readiness check %s failed", name, exc_info=True)
            results[name] = False
    return results


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    results = readiness()
    ok = all(results.values())
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": {k: "ok" if v else "fail" for k, v in results.items()},
    }
    return JsonResponse(body, status=200 if ok else 503)


class OpsEndpointsMiddleware:
    """Answers ``/healthz``, ``/readyz`` and ``/metrics`` (GET/HEAD) ahead of the rest of the stack."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = self._views().get(request.path_info)
        if view is None:
            return self.get_response(request)
        if request.method not in {"GET", "HEAD"}:
            return JsonResponse({"detail": "Method not allowed."}, status=405, headers={"Allow": "GET, HEAD"})
        return view(request)

    @staticmethod
    def _views():
        from aicmo.metrics import metrics_view

        return {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics_view}
