"""API keys: creation (shown once), revocation, expiry, and the DRF authentication class that checks them.

Every request looks the key up in the database (no cache), so a revocation or an expiry takes effect on the
very next request. The secret is never logged: only its SHA-256 is stored, the authentication error names
no key, the request headers that carry it (``Authorization``, ``X-Api-Key``) are among those Django's
error reports cleanse (``SafeExceptionReporterFilter.hidden_settings`` matches ``AUTH`` and ``KEY``), and
the local variables holding it are marked ``sensitive_variables`` so a crash report shows them starred.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from rest_framework import authentication, exceptions

from .audit import audit_record
from .models import ApiKey, Role, Workspace

KEY_PREFIX = "aicmo"
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    secret: str  # the full key: returned exactly once


def hash_key(raw: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is sufficient (no password stretching needed).
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *, workspace: Workspace, name: str, role: str = Role.VIEWER, expires_at=None, by
) -> CreatedKey:
    """A key acting with ``role`` in ``workspace``; ``expires_at`` (an aware datetime, or None for no
    expiry) must lie in the future. Raises ValidationError (field errors) for an unknown role or a past
    expiry."""
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        workspace=workspace,
        name=name,
        prefix=prefix,
        hashed_key=hash_key(raw),
        role=role,
        expires_at=expires_at,
        created_by=by,
    )
    changes = {"role": role, "expires_at": expires_at.isoformat() if expires_at else None}
    audit_record(workspace=workspace, actor=by, verb="api_key.created", target=key, changes=changes)
    return CreatedKey(api_key=key, secret=raw)


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, by) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(workspace=api_key.workspace, actor=by, verb="api_key.revoked", target=api_key)
    return api_key


@sensitive_variables("raw")
def api_key_lookup(raw: str) -> ApiKey | None:
    """The usable key for the secret ``raw``: None when unknown, revoked or expired."""
    now = timezone.now()
    key = (
        ApiKey.objects.select_related("workspace", "created_by")
        .filter(hashed_key=hash_key(raw), revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if key is not None and (key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer aicmo_…` or `X-Api-Key: aicmo_…`. The key acts with its own role."""

    keyword = "Bearer"

    @sensitive_variables("raw", "header", "parts")
    def authenticate(self, request):
        raw = request.META.get("HTTP_X_API_KEY", "")
        header = authentication.get_authorization_header(request).decode(errors="ignore")
        if not raw and header:
            parts = header.split()
            if (
                len(parts) == 2
                and parts[0] in {"Bearer", "Api-Key"}
                and parts[1].startswith(KEY_PREFIX + "_")
            ):
                raw = parts[1]
        if not raw:
            return None
        key = api_key_lookup(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.")
        if not key.created_by.is_active:
            raise exceptions.AuthenticationFailed("The API key's owner is inactive.")
        return (key.created_by, key)

    def authenticate_header(self, request):
        return self.keyword
