"""The custom formats of the schema (aicmo.api.schema.FORMATS, docs/API.md "Formats"): every value the
contract test's generators draw (tests/core/contract_hooks_secrets.py) is one the API's own checks accept,
and the patterns published beside them admit everything those checks accept."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from aicmo.api.schema import FORMATS, url_pattern
from gateway.adapters import ADAPTERS
from gateway.ssrf import HTTP_SCHEMES, UnsafeURL, check_url
from gateway.tls import validate_ca_pem
from publishing.api.deliverability import SELECTOR_PATTERN
from publishing.services import dkim, webhooks
from tests.core import contract_hooks_secrets as hooks

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


STANDARD_FORMATS = {
    "date",
    "date-time",
    "email",
    "uri",
    "uuid",
    "ipv4",
    "ipv6",
    "binary",
    "int64",
    "double",
    "float",
    "decimal",
    "hostname",
    "time",
    "duration",
    "int32",
    "password",
}


def _formats(node) -> set[str]:
    if isinstance(node, dict):
        found = {node["format"]} if isinstance(node.get("format"), str) else set()
        return found.union(*(_formats(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_formats(value) for value in node))
    return set()


@pytest.mark.django_db
def test_every_custom_format_is_listed_has_a_rule_and_a_generator(served_schema, monkeypatch):
    """One list (aicmo.api.schema.FORMATS): every format the served schema names is standard or listed, and
    the contract test's hooks register a generator for every listed one (else schemathesis draws any text;
    click tokens come from the test's rows, as the contract test passes them)."""
    import importlib

    from schemathesis.specs.openapi.formats import STRING_FORMATS

    from tests.core import contract_hooks_text  # noqa: F401 - registers its formats

    monkeypatch.setenv("AICMO_CONTRACT_CLICK_TOKENS", '["a-token"]')
    importlib.reload(hooks)

    custom = _formats(served_schema) - STANDARD_FORMATS
    assert custom and custom <= set(FORMATS), custom - set(FORMATS)
    assert set(FORMATS) <= set(STRING_FORMATS), set(FORMATS) - set(STRING_FORMATS)
    assert all(rule.strip() for rule in FORMATS.values())


@FAST
@given(hooks.pem_certificates)
def test_generated_certificates_are_accepted(text):
    assert validate_ca_pem(text).count("BEGIN CERTIFICATE") == text.count("BEGIN CERTIFICATE")


@FAST
@given(hooks.pem_rsa_private_keys, hooks.domain_names)
def test_generated_keys_and_domains_are_accepted(pem, domain):
    clean_domain, selector, key = dkim.dkim_key_check(domain=domain, selector="s1", private_key_pem=pem)
    assert "." in clean_domain and selector == "s1"
    assert 1024 <= key.key_size <= 4096


@FAST
@given(hooks.public_urls(("http", "https")))
def test_generated_http_urls_pass_the_ssrf_guard_without_dns(url):
    # resolve=True: an IP literal needs no resolver, so the same holds in CI
    assert check_url(url, schemes=HTTP_SCHEMES) == url
    assert webhooks.url_clean(url) == url
    assert re.fullmatch(url_pattern(HTTP_SCHEMES), url)


@pytest.mark.parametrize("key", ["smtp", "imap"])
def test_generated_mail_urls_pass_the_ssrf_guard_with_the_adapters_schemes(key):
    schemes = ADAPTERS[key].url_schemes

    @FAST
    @given(hooks.public_urls(tuple(schemes)))
    def check(url):
        assert check_url(url, schemes=schemes) == url
        assert re.fullmatch(url_pattern(schemes), url)

    check()


@FAST
@given(hooks.future_date_times)
def test_generated_times_parse_and_lie_in_the_future(text):
    value = serializers.DateTimeField().to_internal_value(text)
    assert value > timezone.now() + dt.timedelta(minutes=30)


# -- the published patterns admit everything the checks accept ---------------------------------------------

SPACES = st.sampled_from(["", " ", "\t", "\u00a0", "\u3000", "\n"])


@settings(max_examples=300, deadline=None)
@given(
    SPACES,
    st.sampled_from(["http", "HTTPS", "hTTp", "ftp", "javascript", "smtp"]),
    st.sampled_from(["://", ":/", ":", "//"]),
    st.sampled_from(["8.8.8.8", "[2a00::1]", "127.0.0.1", "example.invalid", ""]),
    SPACES,
)
def test_a_webhook_url_the_guard_accepts_matches_the_published_pattern(lead, scheme, sep, host, tail):
    text = f"{lead}{scheme}{sep}{host}/x{tail}"
    try:
        webhooks.url_clean(text)
    except ValidationError:
        return
    assert re.fullmatch(url_pattern(HTTP_SCHEMES), text)


def test_url_pattern_allows_blank_only_when_asked():
    assert re.fullmatch(url_pattern(HTTP_SCHEMES, blank=True), " ")
    assert not re.fullmatch(url_pattern(HTTP_SCHEMES), " ")
    assert not re.fullmatch(url_pattern(HTTP_SCHEMES), "ftp://8.8.8.8/")
    with pytest.raises(UnsafeURL):
        check_url("ftp://8.8.8.8/")


@settings(max_examples=500, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("abcXYZ019-._ \t\u212a\u0130\u017f")),
        min_size=0,
        max_size=70,
    )
)
def test_a_selector_the_service_accepts_matches_the_published_pattern(text):
    try:
        dkim.dkim_key_check(domain="mail.example.com", selector=text)
    except ValidationError:
        return
    assert re.fullmatch(SELECTOR_PATTERN, text), text


@FAST
@given(st.from_regex(SELECTOR_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 63))
def test_a_selector_matching_the_pattern_is_accepted(text):
    assert dkim.dkim_key_check(domain="mail.example.com", selector=text)[1] == text.strip().lower()


def test_the_kelvin_sign_lowers_to_k_and_is_published():
    assert dkim.dkim_key_check(domain="mail.example.com", selector="\u212aey")[1] == "key"
    assert re.fullmatch(SELECTOR_PATTERN, "\u212aey")


def test_the_served_schema_names_the_formats_on_their_fields(api_client_for):
    schemas = api_client_for("viewer").get("/api/schema/?format=json").json()["components"]["schemas"]
    expected = {
        ("WebhookEndpointRequest", "url"): "public-http-url",
        ("PatchedWebhookEndpointRequest", "url"): "public-http-url",
        ("DkimKeyCreateRequest", "domain"): "domain-name",
        ("DkimKeyCreateRequest", "private_key"): "pem-rsa-private-key",
        ("ApiKeyRequest", "expires_at"): "future-date-time",
        ("ConversionRequest", "click"): "click-token",
        ("ProviderAccountHunterVerifyEmailRequest", "ca_pem"): "pem-certificate",
        ("ProviderAccountHunterVerifyEmailRequest", "base_url"): "public-http-url",
        ("ProviderAccountSmtpSendEmailRequest", "base_url"): "public-smtp-url",
        ("PatchedProviderAccountImapFetchRepliesRequest", "base_url"): "public-imap-url",
    }
    for (component, field), name in expected.items():
        schema = schemas[component]["properties"][field]
        assert schema["format"] == name, (component, field)
        assert FORMATS[name] in schema["description"]
    # answers keep the standard format
    assert schemas["ApiKey"]["properties"]["expires_at"]["format"] == "date-time"
