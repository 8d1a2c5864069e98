"""The invitation mail leaves through the workspace's send_email chain: a real Celery worker picks the task
from Redis after commit and the SMTP provider account delivers it to an aiosmtpd sink. The demo provider is
labelled, a missing provider is recorded and retried, and a re-run never mails the same link twice."""

from __future__ import annotations

import time

import pytest

from aicmo.invitations import InvitationSendDeferred, accept_url, invitation_create, invitation_deliver
from aicmo.models import AuditEvent, Invitation, Role
from gateway.services import account_create
from tests.factories import MembershipFactory, UserFactory
from tests.fixtures.services import smtp_account_for_sink


def _wait_sent(pk: int, timeout: float = 20) -> Invitation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inv = Invitation.objects.get(pk=pk)
        if inv.sent_at or inv.send_error:
            return inv
        time.sleep(0.1)
    raise AssertionError("the invitation task did not run")


def test_invitation_mail_goes_through_the_chain_to_smtp(
    live_celery_worker, redis_client, smtp_sink, workspace
):
    admin = UserFactory(username="boss")
    MembershipFactory(workspace=workspace, user=admin, role=Role.ADMIN)
    smtp_account_for_sink(workspace, smtp_sink)

    inv = invitation_create(workspace=workspace, email="newbie@example.com", role=Role.MARKETER, by=admin)

    message = smtp_sink.wait_for(1)[0]
    assert message.envelope_to == ["newbie@example.com"]
    assert message["From"] == "Acme <team@acme.test>"
    assert "Acme" in message["Subject"]
    body = message.get_content()
    assert accept_url(inv) in body and "boss" in body and "marketer" in body
    assert smtp_sink.logins == [("mailer", "s3cret")]
    inv = _wait_sent(inv.pk)
    assert (inv.send_provider, inv.send_demo, inv.send_error) == ("smtp", False, "")
    assert AuditEvent.objects.filter(verb="invitation.sent", target_id=str(inv.pk)).count() == 1

    # a re-run of the task (redelivery) mails nothing: this link went out already
    assert invitation_deliver(invitation_id=inv.pk) is False
    assert len(smtp_sink.messages) == 1


@pytest.mark.django_db
def test_demo_provider_is_labelled_and_sends_nothing(workspace, smtp_sink, redis_client):
    account_create(
        workspace=workspace, by=None, capability="send_email", adapter="demo_email", name="Demo provider"
    )
    inv = invitation_create(workspace=workspace, email="d@example.com", role=Role.VIEWER, by=None)
    assert invitation_deliver(invitation_id=inv.pk) is True
    inv.refresh_from_db()
    assert inv.send_demo is True and inv.send_provider == "demo_email"
    assert smtp_sink.messages == []


@pytest.mark.django_db
def test_no_provider_is_recorded_and_retried_later(workspace, redis_client, smtp_sink):
    inv = invitation_create(workspace=workspace, email="x@example.com", role=Role.VIEWER, by=None)
    with pytest.raises(InvitationSendDeferred):
        invitation_deliver(invitation_id=inv.pk)
    inv.refresh_from_db()
    assert "send_email" in inv.send_error and inv.sent_at is None
    assert AuditEvent.objects.filter(verb="invitation.send_failed").count() == 1
    # once an account exists, the retry delivers
    smtp_account_for_sink(workspace, smtp_sink)
    assert invitation_deliver(invitation_id=inv.pk) is True
    assert smtp_sink.wait_for(1)[0].envelope_to == ["x@example.com"]
    inv.refresh_from_db()
    assert inv.send_error == "" and inv.sent_at is not None


@pytest.mark.django_db
def test_revoked_or_resent_links_are_not_mailed_stale(workspace, redis_client, smtp_sink):
    from aicmo.invitations import invitation_resend, invitation_revoke

    smtp_account_for_sink(workspace, smtp_sink)
    inv = invitation_create(workspace=workspace, email="r@example.com", role=Role.VIEWER, by=None)
    old_url = accept_url(inv)
    inv = invitation_resend(invitation=inv, by=None)
    assert invitation_deliver(invitation_id=inv.pk) is True  # the task of the first send runs late
    body = smtp_sink.wait_for(1)[0].get_content()
    assert accept_url(inv) in body and old_url not in body
    assert invitation_deliver(invitation_id=inv.pk) is False  # the resend's own task: already mailed
    invitation_revoke(invitation=inv, by=None)
    Invitation.objects.filter(pk=inv.pk).update(sent_token_hash="")
    assert invitation_deliver(invitation_id=inv.pk) is False
    assert len(smtp_sink.messages) == 1


@pytest.mark.django_db
def test_task_retries_a_bounded_number_of_times_then_gives_up(workspace, redis_client):
    from aicmo.tasks import invitation_send_task

    inv = invitation_create(workspace=workspace, email="x@example.com", role=Role.VIEWER, by=None)
    result = invitation_send_task.apply(args=[inv.pk])  # eager: each retry runs at once
    assert result.failed()
    attempts = invitation_send_task.max_retries + 1
    assert AuditEvent.objects.filter(verb="invitation.send_failed").count() == attempts
    inv.refresh_from_db()
    assert inv.sent_at is None and "send_email" in inv.send_error
