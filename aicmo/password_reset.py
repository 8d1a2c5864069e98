"""Password reset by email, through the same ``send_email`` provider chain as invitations.

The form answers the same way for every address (Django's ``PasswordResetDoneView``) and never sends in
the request: for each active account with a usable password and that address it enqueues
``password_reset_send_task`` (the user's id) after commit, so neither the page nor its timing tells whether
an account exists. The task builds Django's one-time link (``default_token_generator``: it stops working
once the password or last login changes, and after ``PASSWORD_RESET_TIMEOUT`` seconds) and mails it with the
function named by ``settings.AICMO_PASSWORD_RESET_MAILER`` (default: ``gateway.services.send_plain_email``)
for the user's oldest workspace, whose provider chain carries the mail. A user in no workspace has no
provider to send through: nothing is sent and a warning is logged (the user id, never the address).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.tokens import default_token_generator
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.module_loading import import_string

from .jobs import task_enqueue
from .models import Membership

logger = logging.getLogger(__name__)


def reset_url(user) -> str:
    """The absolute one-time link (``settings.PUBLIC_BASE_URL`` + Django's confirm path)."""
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def password_reset_request(*, email: str) -> int:
    """Queue a reset mail for each account that may reset by ``email``; returns how many (callers must not
    show it). Mails leave after commit, from a worker; when the task queue is unreachable nothing is sent
    and the error is logged (``aicmo.jobs.task_enqueue``), and the person asks again later."""
    from .tasks import password_reset_send_task

    form = PasswordResetForm()
    user_ids = [user.pk for user in form.get_users(email)]
    for user_id in user_ids:
        # a broker error is logged only: the answer must not differ for an address with an account
        task_enqueue(password_reset_send_task, user_id)
    return len(user_ids)


def password_reset_deliver(*, user_id: int) -> bool:
    """Mail user ``user_id`` a fresh reset link. False when the user is gone, inactive, has no usable
    password or belongs to no workspace; the mailer's errors propagate (the task retries them)."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.has_usable_password() or not user.email:
        return False
    membership = (
        Membership.objects.filter(user=user).select_related("workspace").order_by("created_at", "pk").first()
    )
    if membership is None:
        logger.warning("password reset for user %s not sent: the user belongs to no workspace", user_id)
        return False
    mailer = import_string(settings.AICMO_PASSWORD_RESET_MAILER)
    mailer(
        workspace=membership.workspace,
        to=user.email,
        subject="Reset your AICMO password",
        text=render_to_string(
            "registration/password_reset_email.txt",
            {"user": user, "url": reset_url(user), "hours": settings.PASSWORD_RESET_TIMEOUT // 3600},
        ),
    )
    return True


class QueuedPasswordResetForm(PasswordResetForm):
    """Django's form, except that ``save`` queues the mail (see the module docstring) instead of sending it."""

    def save(self, *args, **kwargs) -> None:
        password_reset_request(email=self.cleaned_data["email"])
