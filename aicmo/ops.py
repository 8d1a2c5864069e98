"""The staff operations page (``/ops/``): the fleet at a glance without a shell.

Shows every declared queue with its depth and oldest waiting task, the workers answering a broadcast
ping with the queues they consume, each periodic task's last run (beat), provider breakers and the
failed jobs of all workspaces with a retry button (``aicmo.jobs.job_retry``). Staff only (``is_staff``);
anyone else gets 404, as if the page did not exist. Each panel degrades on its own: a broker or Redis
outage shows "unavailable" in that panel, not an error page.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.module_loading import import_string
from django.views import View
from django_celery_beat.models import PeriodicTask

from . import selectors
from .jobs import JobNotRetryable, job_retry
from .models import Job
from .queues import queue_stats

log = logging.getLogger(__name__)

WORKER_PING_SECONDS = 1.0


def workers_seen(timeout: float = WORKER_PING_SECONDS) -> list[dict]:
    """``[{"name", "queues"}]`` of workers answering a broadcast within ``timeout`` seconds."""
    from aicmo.celery import app

    replies = app.control.inspect(timeout=timeout).active_queues() or {}
    return [
        {"name": name, "queues": sorted(q["name"] for q in queues)}
        for name, queues in sorted(replies.items())
    ]


def _panel(name: str, fn):
    try:
        return fn(), None
    except Exception:  # noqa: BLE001 - one unavailable dependency must not take the page down
        log.warning("operations page: %s unavailable", name, exc_info=True)
        return None, f"{name} unavailable (see the log)"


class StaffOnlyMixin:
    def dispatch(self, request, *args, **kwargs):
        if not (request.user.is_authenticated and request.user.is_active and request.user.is_staff):
            raise Http404
        return super().dispatch(request, *args, **kwargs)


class OpsView(StaffOnlyMixin, View):
    def get(self, request):
        queues, queues_error = _panel("queues", queue_stats)
        workers, workers_error = _panel("workers", workers_seen)
        providers, providers_error = _panel("providers", import_string(settings.AICMO_PROVIDER_STATUS))
        context = {
            "queues": queues,
            "queues_error": queues_error,
            "workers": workers,
            "workers_error": workers_error,
            "periodic": PeriodicTask.objects.order_by("name").only("name", "task", "enabled", "last_run_at"),
            "providers": providers,
            "providers_error": providers_error,
            "failed_jobs": selectors.jobs_failed_recent(),
            "retryable": set(settings.AICMO_JOB_RETRY),
        }
        return render(request, "aicmo/ops.html", context)


class OpsJobRetryView(StaffOnlyMixin, View):
    def post(self, request, pk: int):
        job = get_object_or_404(Job.objects.select_related("workspace"), pk=pk)
        try:
            new_job = job_retry(job=job, by=request.user)
        except JobNotRetryable as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Job {job.pk} retried as job {new_job.pk} ({job.workspace.slug}).")
        return HttpResponseRedirect(reverse("ops"))
