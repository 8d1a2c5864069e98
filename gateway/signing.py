"""Standard Webhooks signing (https://www.standardwebhooks.com): the receiver verifies
``webhook-signature: v1,<base64 HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")>``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret


class InvalidSecret(ValueError):
    pass


def generate_secret(num_bytes: int = 24) -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(num_bytes)).decode()


def secret_bytes(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (the prefix is optional, as in the reference libraries)."""
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSecret("Webhook secret must be 'whsec_' followed by base64") from exc
    if len(key) < 16:
        raise InvalidSecret("Webhook secret must hold at least 16 bytes")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery."""
    if "." in msg_id or not msg_id:
        raise ValueError("webhook id must be non-empty and contain no '.'")
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """True if any space-separated ``v1,`` signature in ``header`` matches (constant-time compare)."""
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1]
    for part in header.split():
        version, _, value = part.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


def signature_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
