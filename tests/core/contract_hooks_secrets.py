"""Generators for the custom formats of secrets, URLs, tokens and times (aicmo.api.schema.FORMATS,
docs/API.md "Formats"), and the one rule across values of a provider account's PATCH.

Loaded by tests/core/contract_hooks.py in the schemathesis CLI's process (no Django). Every generator draws
values the API accepts, here and in CI: PEM texts from a small pool made once at load (RSA generation is
slow), public IP literals for URLs (a name would need DNS, which this machine lacks), signed click tokens
of the test's own rows (``AICMO_CONTRACT_CLICK_TOKENS``, a JSON list).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os

import jsonschema_rs
import schemathesis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st

# -- PEM ------------------------------------------------------------------------------------------------

_KEYS = [rsa.generate_private_key(public_exponent=65537, key_size=bits) for bits in (1024, 1024, 2048)]
_FORMATS = (serialization.PrivateFormat.TraditionalOpenSSL, serialization.PrivateFormat.PKCS8)
RSA_KEYS = [
    key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption()).decode("ascii")
    for key in _KEYS
    for form in _FORMATS
]


def _certificate(key, name: str) -> str:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


CERTIFICATES = [_certificate(key, f"Contract CA {n}") for n, key in enumerate(_KEYS)]
# 1 to 3 certificates of the pool, as one PEM text (a chain is several blocks)
pem_certificates = st.lists(st.sampled_from(CERTIFICATES), min_size=1, max_size=3).map("".join)
pem_rsa_private_keys = st.sampled_from(RSA_KEYS)

# -- URLs -----------------------------------------------------------------------------------------------

# First octets of globally routed unicast IPv4 space (none is private, shared, reserved or loopback)
_PUBLIC_FIRST_OCTETS = (8, 9, 23, 34, 45, 52, 81, 93, 104, 151, 185, 212)


def _is_public(address) -> bool:
    return address.is_global and not address.is_multicast


public_ipv4 = st.builds(
    lambda first, rest: ipaddress.IPv4Address((first << 24) | rest),
    st.sampled_from(_PUBLIC_FIRST_OCTETS),
    st.integers(1, 2**24 - 2),
).filter(_is_public)
# 2a00::/12 (RIPE NCC's global unicast allocation)
public_ipv6 = st.integers(0, 2**116 - 1).map(lambda low: ipaddress.IPv6Address((0x2A0 << 116) | low))
public_host = st.one_of(public_ipv4.map(str), public_ipv6.filter(_is_public).map(lambda a: f"[{a}]"))
url_path = st.lists(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=8), max_size=3
).map(lambda parts: "".join(f"/{part}" for part in parts))


def public_urls(schemes: tuple[str, ...]):
    """``scheme://public-address[:port][/path]``: accepted by the SSRF guard without DNS."""
    port = st.one_of(st.just(""), st.integers(1, 65535).map(":{}".format))
    return st.builds("{}://{}{}{}".format, st.sampled_from(schemes), public_host, port, url_path)


# -- times and tokens -----------------------------------------------------------------------------------

# At least an hour ahead of the moment the value is drawn (the request follows within seconds), at most
# ~50 years; as UTC (Z) or with an offset, with or without fractional seconds.
future_date_times = st.builds(
    lambda seconds, offset, micro: (
        (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))
        .replace(microsecond=micro)
        .astimezone(dt.timezone(dt.timedelta(minutes=offset)))
        .isoformat()
        .replace("+00:00", "Z")
    ),
    st.integers(3600, 50 * 365 * 86400),
    st.integers(-12 * 60, 14 * 60).map(lambda m: m - m % 15),
    st.sampled_from([0, 500000, 123456]),
)
CLICK_TOKENS = json.loads(os.environ.get("AICMO_CONTRACT_CLICK_TOKENS", "[]"))

# a DNS domain of two or three labels, ASCII or Unicode (IDNA 2008 maps it to A-labels)
_label = st.from_regex(r"[a-z0-9](?:[a-z0-9]{0,8}(?:-[a-z0-9]{1,8})?)?", fullmatch=True)
domain_names = st.builds(
    lambda labels, unicode, top: ".".join([*labels, *unicode, top]),
    st.lists(_label, min_size=1, max_size=2),
    st.lists(st.sampled_from(["bücher", "münchen", "ελλάδα"]), max_size=1),
    st.sampled_from(["com", "org", "example", "de", "io"]),
)

schemathesis.openapi.format("pem-certificate", pem_certificates)
schemathesis.openapi.format("pem-rsa-private-key", pem_rsa_private_keys)
schemathesis.openapi.format("domain-name", domain_names)
schemathesis.openapi.format("public-http-url", public_urls(("http", "https")))
schemathesis.openapi.format("public-smtp-url", public_urls(("smtp", "smtps", "smtp+plain")))
schemathesis.openapi.format("public-imap-url", public_urls(("imap", "imaps", "imap+plain")))
schemathesis.openapi.format("future-date-time", future_date_times)
if CLICK_TOKENS:
    schemathesis.openapi.format("click-token", st.sampled_from(CLICK_TOKENS))

# -- a provider account's PATCH -------------------------------------------------------------------------

ACCOUNT_PATCH = "PATCH /api/v1/gateway/accounts/{id}/"
# checked against the account's adapter (ProviderAccount.clean, gateway.api.account_request_schema)
ADAPTER_FIELDS = ("capability", "adapter", "options", "credentials", "base_url")


def _pair_validators(operation) -> list:
    """A validator per (capability, adapter) variant of the operation's body (the ``$ref`` entries of its
    ``anyOf``; the inline one is the stored adapter's)."""
    raw = operation.schema.raw_schema
    body = raw["paths"][operation.path][operation.method.lower()]["requestBody"]["content"][
        "application/json"
    ]
    components = raw["components"]["schemas"]
    schema = components[body["schema"]["$ref"].rsplit("/", 1)[-1]]
    return [
        jsonschema_rs.validator_for(components[entry["$ref"].rsplit("/", 1)[-1]])
        for entry in schema["anyOf"]
        if "$ref" in entry
    ]


@schemathesis.hook("before_generate_case").apply_to(name=ACCOUNT_PATCH)
def before_generate_case(context, strategy):
    """Implements the description of the PATCH body's last variant ("Without capability and adapter:
    options, credentials and base_url are checked against the stored account's adapter"): a positive
    body that fits no (capability, adapter) variant, so only that last one, leaves the adapter's fields
    out, since the client does not know the stored adapter. Other bodies, and negative cases, are left
    alone."""
    validators = _pair_validators(context.operation)

    def keep_stored_adapter(case):
        meta = getattr(case, "meta", None)
        body = case.body
        if meta is None or not meta.generation.mode.is_positive or not isinstance(body, dict):
            return case
        try:
            fits = any(validator.is_valid(body) for validator in validators)
        except ValueError:  # a value the validator cannot read: treat it as fitting no variant
            fits = False
        if fits:
            return case
        case.body = {key: value for key, value in body.items() if key not in ADAPTER_FIELDS}
        return case

    return strategy.map(keep_stored_adapter)
