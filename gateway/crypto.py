"""Secrets at rest: a JSON dict encrypted with MultiFernet over settings.FIELD_ENCRYPTION_KEYS.

The first key encrypts; every key decrypts, so a new key can be put in front and old tokens rotated with
:func:`rotate_token` (``manage.py gateway_rotate_credentials``) before the old key is dropped. Every column
that holds such a token is an :class:`EncryptedTokenField`, which is how rotation finds them all (provider
credentials, inbound-hook secrets, DKIM private keys, and any added later).
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class CredentialsUnreadable(Exception):
    """No configured key decrypts the stored credentials (a key was dropped before rotation)."""


def _multifernet() -> MultiFernet:
    keys = list(getattr(settings, "FIELD_ENCRYPTION_KEYS", []) or [])
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: provider credentials cannot be stored.")
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def encrypt_credentials(data: dict[str, Any]) -> str:
    """Encrypt with the newest key; an empty dict is stored as an empty string (no credentials)."""
    if not data:
        return ""
    payload = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return _multifernet().encrypt(payload).decode()


def decrypt_credentials(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        payload = _multifernet().decrypt(token.encode())
    except InvalidToken as exc:
        raise CredentialsUnreadable("No FIELD_ENCRYPTION_KEYS entry decrypts these credentials.") from exc
    return json.loads(payload)


def rotate_token(token: str) -> str:
    """Re-encrypt ``token`` with the newest key (keeps the original timestamp)."""
    if not token:
        return ""
    try:
        return _multifernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialsUnreadable("No FIELD_ENCRYPTION_KEYS entry decrypts these credentials.") from exc


class EncryptedTokenField(models.TextField):
    """A text column holding a token from :func:`encrypt_credentials` ("" = nothing stored).

    Storage is a plain text column (``deconstruct`` reports ``TextField``, so switching a column to this
    class needs no migration); the class marks the column for key rotation
    (:func:`gateway.services.rotate_credentials` walks every model's fields of this class)."""

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.TextField", args, kwargs


def encrypted_columns() -> list[tuple[type[models.Model], str]]:
    """Every ``(model, field name)`` of the installed apps stored as an :class:`EncryptedTokenField`."""
    from django.apps import apps

    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTokenField)
    ]


def mask_secret(value: str) -> str:
    """A hint an operator can recognise (last 4 characters) that reveals nothing usable."""
    value = str(value or "")
    if len(value) <= 8:
        return "•" * 4
    return "•" * 4 + value[-4:]
