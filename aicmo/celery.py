"""The Celery application. Configuration comes from Django settings (CELERY_* names).

Signal receivers connected here run in every process that publishes or executes tasks: publish time on
each message (queue age on the ops page and in metrics), task outcome counters (metrics), and the
request/task id carried into task logs.
"""

import os

from celery import Celery
from celery.signals import before_task_publish, task_failure, task_prerun, task_retry, task_success

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aicmo.settings")

app = Celery("aicmo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@before_task_publish.connect(weak=False)
def _on_publish(headers=None, **kwargs):
    from aicmo.logs import carry_request_id
    from aicmo.queues import stamp_enqueued_at

    stamp_enqueued_at(headers=headers)
    carry_request_id(headers=headers)


@task_prerun.connect(weak=False)
def _on_prerun(task=None, task_id=None, **kwargs):
    from aicmo.logs import bind_task_context

    bind_task_context(task=task, task_id=task_id)


@task_success.connect(weak=False)
def _on_success(sender=None, **kwargs):
    from aicmo.metrics import task_outcome

    task_outcome(sender, "success")


@task_failure.connect(weak=False)
def _on_failure(sender=None, **kwargs):
    from aicmo.metrics import task_outcome

    task_outcome(sender, "failure")


@task_retry.connect(weak=False)
def _on_retry(sender=None, **kwargs):
    from aicmo.metrics import task_outcome

    task_outcome(sender, "retry")
