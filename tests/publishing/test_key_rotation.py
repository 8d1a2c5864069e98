"""Key rotation reaches every encrypted column, not only provider credentials: inbound-hook secrets and
DKIM private keys are re-encrypted by ``manage.py gateway_rotate_credentials`` and still work after the
old key is dropped."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import call_command

from gateway.crypto import CredentialsUnreadable, EncryptedTokenField, decrypt_credentials, encrypted_columns
from publishing.models import DkimKey, InboundHook
from publishing.services import dkim as dkim_services
from publishing.services import inbound

pytestmark = pytest.mark.django_db


def test_every_column_named_encrypted_is_an_encrypted_token_field():
    """A secret column added as a plain TextField would be skipped by rotation and lost when the old key
    is dropped; the naming rule (``*_encrypted``) and the field class must agree."""
    named = {
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if field.name.endswith("_encrypted")
    }
    assert named and named == set(encrypted_columns())
    assert all(isinstance(model._meta.get_field(name), EncryptedTokenField) for model, name in named)


def test_rotation_re_encrypts_hook_secrets_and_dkim_keys(settings, workspace):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    hook = inbound.hook_create(workspace=workspace, provider="mailgun", secret="mg-signing-key")
    key = dkim_services.dkim_key_create(workspace=workspace, domain="acme.example", selector="s1")
    pem = decrypt_credentials(key.private_key_encrypted)["private_key"]
    before = (hook.secret_encrypted, key.private_key_encrypted)

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_key]
    out = StringIO()
    call_command("gateway_rotate_credentials", stdout=out)
    assert "publishing.InboundHook.secret_encrypted: 1 re-encrypted" in out.getvalue()
    assert "publishing.DkimKey.private_key_encrypted: 1 re-encrypted" in out.getvalue()

    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]  # the old key dropped
    hook = InboundHook.objects.get(pk=hook.pk)
    key = DkimKey.objects.get(pk=key.pk)
    assert (hook.secret_encrypted, key.private_key_encrypted) != before
    assert decrypt_credentials(hook.secret_encrypted) == {"secret": "mg-signing-key"}
    assert decrypt_credentials(key.private_key_encrypted)["private_key"] == pem

    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    with pytest.raises(CredentialsUnreadable):
        decrypt_credentials(hook.secret_encrypted)
