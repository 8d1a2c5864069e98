"""Workspace invitations: the only way a person joins a workspace from the product.

An admin invites an email address with a role; the person opens the link and accepts while logged in (or
signs up through it). Nothing here looks at user accounts before acceptance, so the admin's answer is the
same whether the address has an account or not (no enumeration of the installation's users).

Tokens. ``nonce`` is 128 random bits; the token in the link is ``HMAC-SHA256(SECRET_KEY, nonce)`` (Django's
``salted_hmac``), 64 hex digits. The database keeps the nonce and ``SHA-256(token)``, never the token: a
database dump alone yields no working link, while the dashboard and the mail task can rebuild the link from
ids (tasks carry ids only, and the link stays copyable). Rotating SECRET_KEY invalidates open links (resend
issues fresh ones). A token is single-use (``accepted_at``), revocable (``revoked_at``) and expires after
``settings.AICMO_INVITATION_TTL_DAYS`` days; a resend draws a new nonce, so the previous link stops working.

Mail. The invitation mail goes out after commit through ``invitation_send_task`` (ids only), which calls
the mailer named by ``settings.AICMO_INVITATION_MAILER`` — by default ``gateway.services.send_plain_email``,
the workspace's ``send_email`` provider chain. The core sits below the gateway and must not import it, so
the dependency is configuration resolved at call time rather than an import or an import-time registry.
The result (provider, whether it was the demo provider, or the error) is kept on the row for the dashboard.

Accepting as a user whose email differs from the invited address is allowed — the token is the proof that
the link reached them — and is recorded in the audit row (``email_matches: false``).

Sign-up through the link does not check whether the invited address already has an account (that answer
would be an address oracle for the admin, who can open the link too); like any sign-up form it does say
when a chosen username is taken.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.module_loading import import_string

from .audit import audit_record
from .conflicts import Conflict
from .jobs import task_enqueue
from .models import Invitation, InvitationStatus, Membership, Role, Workspace
from .workspaces import membership_add

LINK_HMAC_SALT = "aicmo.invitations.token"


class InvitationInvalid(Exception):
    """The link cannot be used: ``reason`` is one of unknown, expired, revoked, accepted."""

    MESSAGES = {
        "unknown": "This invitation link is not valid. Check that you copied all of it.",
        "expired": "This invitation has expired. Ask a workspace admin to send it again.",
        "revoked": "This invitation was withdrawn by a workspace admin.",
        "accepted": "This invitation has already been used.",
    }

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(self.MESSAGES[reason])


class InvitationSendDeferred(Exception):
    """The mail could not go out now (no provider answered); the task retries it later, at ``retry_at`` (an
    aware datetime) when the mailer's error named one (the gateway's ProvidersUnavailable does)."""

    def __init__(self, message: str, retry_at=None):
        super().__init__(message)
        self.retry_at = retry_at


@dataclass(frozen=True)
class Acceptance:
    invitation: Invitation
    membership: Membership
    joined: bool  # False: the user was already a member (role unchanged)


def token_for(invitation: Invitation) -> str:
    return salted_hmac(LINK_HMAC_SALT, invitation.nonce, algorithm="sha256").hexdigest()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def accept_path(invitation: Invitation) -> str:
    return reverse("invitation-accept", args=[token_for(invitation)])


def accept_url(invitation: Invitation) -> str:
    """The absolute link (``settings.PUBLIC_BASE_URL`` + path) mailed and shown for copying."""
    return settings.PUBLIC_BASE_URL.rstrip("/") + accept_path(invitation)


def _issue(invitation: Invitation) -> None:
    invitation.nonce = secrets.token_hex(16)
    invitation.token_hash = hash_token(token_for(invitation))
    invitation.expires_at = timezone.now() + timedelta(days=settings.AICMO_INVITATION_TTL_DAYS)
    invitation.sent_token_hash = ""
    invitation.sent_at = None
    invitation.send_provider = ""
    invitation.send_demo = False
    invitation.send_error = ""


def _audit(invitation: Invitation, verb: str, *, actor, changes: dict) -> None:
    audit_record(
        workspace=invitation.workspace,
        actor=actor,
        verb=verb,
        target=invitation,
        changes={"email": invitation.email, **changes},
    )


SEND_NOT_QUEUED = (
    "The email could not be queued: the task queue (broker) is unreachable. Copy the link, or resend once "
    "the queue is back."
)


def _send_after_commit(invitation: Invitation) -> None:
    """Mail the invitation from a worker after commit. When the task cannot be queued, the invitation
    stands (its link can be copied) and shows ``SEND_NOT_QUEUED`` as its send error."""
    from .tasks import invitation_send_task

    pk = invitation.pk
    task_enqueue(
        invitation_send_task,
        pk,
        on_failure=lambda: Invitation.objects.filter(pk=pk, sent_at__isnull=True).update(
            send_error=SEND_NOT_QUEUED
        ),
    )


def invitation_create(*, workspace: Workspace, email: str, role: str, by) -> Invitation:
    """Invite ``email`` with ``role`` and mail the link after commit. Raises ValidationError (field errors)
    for a bad role or when this workspace already has an open invitation for the address."""
    email = (email or "").strip().lower()
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    invitation = Invitation(workspace=workspace, email=email, role=role, invited_by=by)
    _issue(invitation)
    invitation.full_clean(
        exclude=["workspace", "invited_by", "nonce", "token_hash"],
        validate_unique=False,
        validate_constraints=False,
    )
    try:
        with transaction.atomic():
            invitation.save()
            _audit(invitation, "invitation.created", actor=by, changes={"role": role})
            _send_after_commit(invitation)
    except IntegrityError as exc:
        if not Invitation.objects.filter(workspace=workspace, email=email, **_open()).exists():
            raise
        raise Conflict(
            {"email": "This address already has an open invitation: resend or revoke it."}
        ) from exc
    return invitation


def _open() -> dict:
    return {"accepted_at__isnull": True, "revoked_at__isnull": True}


def _locked(invitation: Invitation) -> Invitation:
    return Invitation.objects.select_for_update().get(pk=invitation.pk)


@transaction.atomic
def invitation_resend(*, invitation: Invitation, by) -> Invitation:
    """A fresh link (the old one stops working) with a fresh expiry, mailed after commit. Accepted or
    revoked invitations raise ValidationError."""
    invitation = _locked(invitation)
    if invitation.accepted_at or invitation.revoked_at:
        raise Conflict(f"This invitation was {invitation.status}; it cannot be sent again.")
    _issue(invitation)
    invitation.save()
    _audit(
        invitation, "invitation.resent", actor=by, changes={"expires_at": invitation.expires_at.isoformat()}
    )
    _send_after_commit(invitation)
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, by) -> Invitation:
    """The link stops working. Revoking twice is harmless; an accepted invitation raises ValidationError
    (remove the member instead)."""
    invitation = _locked(invitation)
    if invitation.accepted_at:
        raise ValidationError("This invitation was already accepted: remove the member instead.")
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        _audit(invitation, "invitation.revoked", actor=by, changes={})
    return invitation


def invitation_check(token: str) -> Invitation:
    """The usable invitation behind a link, or InvitationInvalid(reason)."""
    invitation = (
        Invitation.objects.select_related("workspace", "invited_by")
        .filter(token_hash=hash_token(token or ""))
        .first()
    )
    if invitation is None:
        raise InvitationInvalid("unknown")
    status = invitation.status
    if status != InvitationStatus.PENDING:
        raise InvitationInvalid(status)
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user) -> Acceptance:
    """Consume the link and make ``user`` a member with the invited role (audited). A user who is already a
    member keeps their role (``joined=False``). Raises InvitationInvalid when the link cannot be used. The
    link is claimed by one conditional UPDATE, so of two concurrent accepts only one can succeed."""
    invitation = invitation_check(token)
    now = timezone.now()
    claimed = Invitation.objects.filter(
        pk=invitation.pk, token_hash=invitation.token_hash, expires_at__gt=now, **_open()
    ).update(accepted_at=now, accepted_by=user)
    if not claimed:
        invitation_check(token)  # raises with the reason that won the race (used, revoked, replaced)
        raise InvitationInvalid("accepted")
    invitation.accepted_at, invitation.accepted_by = now, user
    membership, joined = membership_add(
        workspace=invitation.workspace, user=user, role=invitation.role, by=user, via="invitation"
    )
    _audit(
        invitation,
        "invitation.accepted",
        actor=user,
        changes={
            "role": invitation.role,
            "user": user.get_username(),
            "email_matches": (user.email or "").strip().lower() == invitation.email,
            "already_member": not joined,
        },
    )
    return Acceptance(invitation=invitation, membership=membership, joined=joined)


@transaction.atomic
def invitation_sign_up(*, token: str, username: str, password: str) -> Acceptance:
    """Create an account with the invited address (and the given username/password, already validated by
    the sign-up form) and accept the invitation with it, in one transaction."""
    invitation = invitation_check(token)
    user = get_user_model().objects.create_user(username=username, email=invitation.email, password=password)
    _audit(invitation, "user.signed_up", actor=user, changes={"user": username})
    return invitation_accept(token=token, user=user)


def invitation_deliver(*, invitation_id: int) -> bool:
    """Mail the current link once (the task's body). Returns True when a mail went out, False when there was
    nothing to do (gone, no longer open, or this link was already mailed). A provider failure is recorded on
    the row; transient ones raise InvitationSendDeferred so the task retries, bad input does not."""
    invitation = Invitation.objects.select_related("workspace", "invited_by").filter(pk=invitation_id).first()
    if invitation is None or invitation.status != InvitationStatus.PENDING:
        return False
    if invitation.sent_token_hash == invitation.token_hash:
        return False
    token_hash = invitation.token_hash
    context = {
        "invitation": invitation,
        "workspace": invitation.workspace,
        "inviter": invitation.invited_by.get_username() if invitation.invited_by else "An admin",
        "url": accept_url(invitation),
    }
    mailer = import_string(settings.AICMO_INVITATION_MAILER)
    try:
        result = mailer(
            workspace=invitation.workspace,
            to=invitation.email,
            subject=f"You are invited to join {invitation.workspace.name} on AICMO",
            text=render_to_string("aicmo/email/invitation.txt", context),
        )
    except Exception as exc:
        with transaction.atomic():  # the row and its audit event are one commit
            Invitation.objects.filter(pk=invitation.pk, token_hash=token_hash).update(
                send_error=str(exc)[:2000]
            )
            _audit(invitation, "invitation.send_failed", actor=None, changes={"error": str(exc)[:500]})
        if getattr(exc, "retryable", True):
            raise InvitationSendDeferred(str(exc), retry_at=getattr(exc, "retry_at", None)) from exc
        return False
    provider, demo = str(getattr(result, "provider", "")), bool(getattr(result, "demo", False))
    with transaction.atomic():  # a reader that sees the link sent also sees its audit event
        Invitation.objects.filter(pk=invitation.pk, token_hash=token_hash).update(
            sent_token_hash=token_hash,
            sent_at=timezone.now(),
            send_provider=provider[:100],
            send_demo=demo,
            send_error="",
        )
        _audit(invitation, "invitation.sent", actor=None, changes={"provider": provider, "demo": demo})
    return True
