"""DKIM keys per sending domain: generated here (RSA 2048) or uploaded as PEM, stored encrypted with the
gateway's credential keys, published by the workspace as a DNS TXT record, used to sign every campaign
and test message whose From address is on the domain (the gateway's SMTP adapter signs the final bytes).

RFC 6376 §3.6.1 (the ``v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>`` record), RFC 8301 §3.2 (RSA keys
of at least 1024 bits; 2048 recommended, and what ``dkim_key_create`` generates).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import idna
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from aicmo.audit import audit_record
from aicmo.conflicts import Conflict
from aicmo.models import Workspace
from gateway.capabilities import DkimKey as SigningKey
from gateway.crypto import decrypt_credentials, encrypt_credentials

from ..models import DkimKey

GENERATED_BITS = 2048
MIN_BITS = 1024  # RFC 8301 §3.2: verifiers must not accept less
MAX_BITS = 4096  # the p= value must still fit a TXT record most DNS hosts accept
_SELECTOR = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")


@dataclass(frozen=True)
class DnsRecord:
    """The TXT record to publish: ``name`` (``<selector>._domainkey.<domain>``) and ``value``; ``chunks``
    is the value split into the ≤255-character strings one TXT record is made of (RFC 1035 §3.3.14),
    for DNS hosts that want them quoted separately."""

    name: str
    value: str

    @property
    def chunks(self) -> list[str]:
        return [self.value[i : i + 255] for i in range(0, len(self.value), 255)]


def domain_clean(domain: str) -> str:
    """Lowercase A-label of a mail domain (IDNA 2008, UTS #46). ValidationError ``{"domain": ...}``."""
    value = (domain or "").strip().rstrip(".").lower()
    try:
        value = idna.encode(value, uts46=True).decode("ascii") if value else ""
    except idna.IDNAError:
        value = ""
    if "." not in value or len(value) > 253:
        raise ValidationError({"domain": ["Give the domain of the From address, e.g. mail.example.com."]})
    return value


def _selector_clean(selector: str) -> str:
    value = (selector or "").strip().lower()
    if not _SELECTOR.match(value) or len(value) > 63:
        raise ValidationError(
            {"selector": ["Letters, digits and hyphens (dot-separated parts allowed), e.g. aicmo2026."]}
        )
    return value


def _private_key_clean(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key((pem or "").strip().encode(), password=None)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise ValidationError(
            {
                "private_key": [
                    "Not an unencrypted PEM private key (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)."
                ]
            }
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValidationError({"private_key": ["Only RSA keys are supported (k=rsa)."]})
    if not MIN_BITS <= key.key_size <= MAX_BITS:
        raise ValidationError(
            {"private_key": [f"RSA keys of {MIN_BITS} to {MAX_BITS} bits (this one: {key.key_size})."]}
        )
    return key


def dkim_key_check(
    *, domain: str, selector: str, private_key_pem: str = ""
) -> tuple[str, str, rsa.RSAPrivateKey | None]:
    """(domain A-label, selector, the uploaded key or None) — every field checked, errors collected in one
    ValidationError keyed by field. Writes nothing (forms call it before `dkim_key_create`)."""
    errors: dict = {}
    values = []
    for name, clean, value in (
        ("domain", domain_clean, domain),
        ("selector", _selector_clean, selector),
        ("private_key", _private_key_clean, private_key_pem),
    ):
        if name == "private_key" and not (value or "").strip():
            values.append(None)
            continue
        try:
            values.append(clean(value))
        except ValidationError as exc:
            errors.update(exc.message_dict)
            values.append(None)
    if errors:
        raise ValidationError(errors)
    return values[0], values[1], values[2]


def dkim_key_create(
    *, workspace: Workspace, domain: str, selector: str, private_key_pem: str = "", by=None
) -> DkimKey:
    """A key for ``domain`` under ``selector``: the uploaded PEM (PKCS#1 or PKCS#8, unencrypted RSA) or,
    when none is given, a new RSA 2048 key. The domain's first key becomes active at once; later ones wait
    for `dkim_key_activate` (rotation: publish the new record first). ValidationError keyed by field
    (``domain``, ``selector``, ``private_key``)."""
    domain, selector, key = dkim_key_check(domain=domain, selector=selector, private_key_pem=private_key_pem)
    if key is None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=GENERATED_BITS)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        with transaction.atomic():
            first = not DkimKey.objects.for_workspace(workspace).filter(domain=domain, active=True).exists()
            created = DkimKey.objects.create(
                workspace=workspace,
                domain=domain,
                selector=selector,
                private_key_encrypted=encrypt_credentials({"private_key": private_pem}),
                public_key=base64.b64encode(public_der).decode("ascii"),
                active=first,
                activated_at=timezone.now() if first else None,
            )
            audit_record(
                workspace=workspace,
                actor=by,
                verb="publishing.dkim.created",
                target=created,
                changes={
                    "domain": domain,
                    "selector": selector,
                    "uploaded": bool(private_key_pem),
                    "active": first,
                },
            )
    except IntegrityError:
        raise Conflict({"selector": [f"{domain} already has a key with this selector."]}) from None
    return created


def dkim_key_deletable(key: DkimKey) -> bool:
    """False for the active key of a domain that has other keys (see ``dkim_key_delete``)."""
    return not (
        key.active
        and DkimKey.objects.filter(workspace_id=key.workspace_id, domain=key.domain)
        .exclude(pk=key.pk)
        .exists()
    )


def dkim_key_delete(*, key: DkimKey, by=None) -> None:
    """Remove a key. The active key of a domain that has other keys is a ``Conflict`` (activate another one
    first, so the domain's mail does not silently go out unsigned); a domain's only key may go (its mail is
    unsigned from then on). Audited ``publishing.dkim.deleted``."""
    with transaction.atomic():
        key = DkimKey.objects.select_for_update().get(pk=key.pk)
        if not dkim_key_deletable(key):
            raise Conflict(
                f"{key.selector}._domainkey.{key.domain} signs the domain's mail: activate another key of "
                f"{key.domain} before deleting it."
            )
        audit_record(
            workspace=key.workspace,
            actor=by,
            verb="publishing.dkim.deleted",
            target=key,
            changes={"domain": key.domain, "selector": key.selector, "active": key.active},
        )
        key.delete()


def dkim_key_activate(*, key: DkimKey, by=None) -> DkimKey:
    """Sign the domain's mail with ``key`` from now on (the domain's other keys stop signing)."""
    with transaction.atomic():
        DkimKey.objects.filter(workspace_id=key.workspace_id, domain=key.domain, active=True).exclude(
            pk=key.pk
        ).update(active=False)
        key.active, key.activated_at = True, timezone.now()
        key.save(update_fields=["active", "activated_at"])
        audit_record(
            workspace=key.workspace,
            actor=by,
            verb="publishing.dkim.activated",
            target=key,
            changes={"domain": key.domain, "selector": key.selector},
        )
    return key


def dns_record(key: DkimKey) -> DnsRecord:
    return DnsRecord(
        name=f"{key.selector}._domainkey.{key.domain}", value=f"v=DKIM1; k=rsa; p={key.public_key}"
    )


def signing_keys(workspace_id: int, addresses) -> dict[str, SigningKey]:
    """``{address: key}`` for each From address (bare ``local@domain``) whose domain has an active key in
    the workspace; one query. Domains are matched as lowercase A-labels."""
    domains: dict[str, str] = {}
    for address in addresses:
        try:
            domains[address] = domain_clean(str(address).rpartition("@")[2])
        except ValidationError:
            continue
    if not domains:
        return {}
    keys = {
        key.domain: SigningKey(
            domain=key.domain,
            selector=key.selector,
            private_key_pem=decrypt_credentials(key.private_key_encrypted)["private_key"],
        )
        for key in DkimKey.objects.filter(
            workspace_id=workspace_id, domain__in=set(domains.values()), active=True
        )
    }
    return {address: keys[domain] for address, domain in domains.items() if domain in keys}


def signing_key(workspace_id: int, address: str) -> SigningKey | None:
    """The active key for the domain of one From address, or None (the message goes out unsigned)."""
    return signing_keys(workspace_id, [address]).get(address)
