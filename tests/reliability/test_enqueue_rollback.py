"""Enqueue inside a transaction that rolls back: no task runs and no mail leaves.

A real Celery worker consumes from the test Redis and the workspace's SMTP provider points at an aiosmtpd
sink. The invitation service enqueues its mail task with ``transaction.on_commit``; when the caller's outer
``atomic`` block raises after the service returned, the callback is dropped with the transaction. A second
invitation that commits afterwards is the marker: once its mail has arrived, the worker (one task at a
time, in queue order) has consumed everything queued before it.
"""

from __future__ import annotations

import pytest
from celery.signals import task_prerun
from django.db import transaction

from aicmo.invitations import invitation_create, invitation_resend
from aicmo.models import Invitation, Role
from tests.fixtures.services import smtp_account_for_sink


class Boom(Exception):
    pass


@pytest.fixture
def task_runs():
    """(task name, args) of every task the live worker starts."""
    runs: list[tuple[str, list]] = []

    def record(sender=None, args=None, **_kwargs):
        runs.append((sender.name, list(args or [])))

    task_prerun.connect(record, weak=False)
    yield runs
    task_prerun.disconnect(record)


@pytest.mark.parametrize("service", ["create", "resend"])
def test_rolled_back_enqueue_runs_no_task_and_sends_no_mail(
    service, live_celery_worker, redis_client, smtp_sink, workspace, task_runs
):
    smtp_account_for_sink(workspace, smtp_sink)
    if service == "resend":
        existing = invitation_create(workspace=workspace, email="lost@example.com", role=Role.VIEWER, by=None)
        smtp_sink.wait_for(1)
        smtp_sink.clear()
        task_runs.clear()

    def enqueue_then_fail():
        with transaction.atomic():
            if service == "create":
                invitation_create(workspace=workspace, email="lost@example.com", role=Role.VIEWER, by=None)
            else:
                invitation_resend(invitation=existing, by=None)
            raise Boom

    with pytest.raises(Boom):
        enqueue_then_fail()

    marker = invitation_create(workspace=workspace, email="marker@example.com", role=Role.VIEWER, by=None)
    assert [m.envelope_to for m in smtp_sink.wait_for(1)] == [["marker@example.com"]]

    assert task_runs == [("aicmo.tasks.invitation_send_task", [marker.pk])]
    assert [m.envelope_to for m in smtp_sink.messages] == [["marker@example.com"]]
    expected = {"marker@example.com"} | ({"lost@example.com"} if service == "resend" else set())
    assert set(Invitation.objects.values_list("email", flat=True)) == expected
