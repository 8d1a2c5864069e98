"""Request fields that publish the rule they validate with, so the schema (``/api/schema/``) and the check
cannot drift: each field's choices or pattern come from the same function its validation calls.

- `TimeZoneField`: an IANA zone name, the names ``aicmo.timezones.zone_names`` lists (schema: ``enum``).
- `CurrencyCodeField`: an ISO 4217 code, ``aicmo.currencies.currency_codes`` (schema: ``enum`` of the
  upper-case codes; lower case is accepted and upper-cased, as the services do).
- `EmailAddressField` (and every DRF ``EmailField``): an address ``crm.normalize.normalize_email`` checks;
  the schema publishes ``EMAIL_PATTERN``, plain ASCII dot-atom addresses, a subset of what the check
  accepts (property-tested in tests/core/test_schema_constraints.py): the API also takes internationalised
  addresses and upper case. (Host names get no such pattern: the services take any IDNA name, and a URL
  for a company, so strings outside a host-name pattern would be accepted, which the schema must not
  say is refused.)
- `FormattedCharField`, `FormattedDateTimeField` (`PublishedSchema`): a field whose request schema is
  given, for a value with a syntax JSON Schema cannot check: a custom ``format``
  (``aicmo.api.schema.FORMATS``: PEM text, a public URL, a signed token, a future time) its service checks.
- `UnknownFieldsRefused`: a serializer mixin that refuses body keys it does not declare (a 400 naming each)
  and publishes ``additionalProperties: false`` for its request body (``aicmo.api.schema.AutoSchema``).
"""

from __future__ import annotations

from rest_framework import serializers

from aicmo.currencies import currency_code_clean, currency_codes
from aicmo.timezones import zone_names

# The domain of a published address: a label without "--" (IDNA 2008 reserves it at positions 3-4) of at most 62 characters; two to four
# labels, the last a 2-3 letter top-level domain (every special-use name email-validator refuses — arpa,
# invalid, local, localhost, onion, test — is longer).
_LABEL = r"[a-z0-9]{1,20}(?:-[a-z0-9]{1,20}){0,2}"
_DOMAIN = rf"(?:{_LABEL}\.){{1,3}}[a-z]{{2,3}}"
# A dot-atom local part of at most 62 characters (RFC 5321: 64) at such a domain.
EMAIL_PATTERN = rf"^[a-z0-9_+-]{{1,20}}(?:\.[a-z0-9_+-]{{1,20}}){{0,2}}@{_DOMAIN}$"


class EmailAddressField(serializers.CharField):
    """An email address as text; ``crm.normalize.normalize_email`` checks it. Schema: ``EMAIL_PATTERN``."""

    published_pattern = EMAIL_PATTERN


def published_pattern(field) -> str | None:
    """The pattern the schema gives a request text field of one of the kinds above, else None."""
    if isinstance(field, serializers.EmailField):
        return EMAIL_PATTERN
    return getattr(field, "published_pattern", None)


class PublishedSchema:
    """Field mixin: ``request_schema=`` is the field's request schema as given (``aicmo.api.schema.AutoSchema``
    publishes it verbatim), e.g. a custom ``format`` (``aicmo.api.schema.formatted``) the field's service
    checks. Answers keep the field's ordinary schema."""

    def __init__(self, *, request_schema: dict, **kwargs):
        self.request_schema = request_schema
        super().__init__(**kwargs)


class FormattedCharField(PublishedSchema, serializers.CharField):
    """Text with a published request schema (`PublishedSchema`)."""


class FormattedDateTimeField(PublishedSchema, serializers.DateTimeField):
    """A date-time with a published request schema (`PublishedSchema`)."""


class TimeZoneField(serializers.ChoiceField):
    """A zone name exactly as the tz database spells it (``Europe/Berlin``; case matters)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "IANA time zone name, e.g. Europe/Berlin or UTC.")
        super().__init__(choices=zone_names(), **kwargs)


class CurrencyCodeField(serializers.ChoiceField):
    """An ISO 4217 code; the internal value is upper case."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "ISO 4217 currency code, e.g. EUR.")
        super().__init__(choices=currency_codes(), **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and data.strip() and (code := currency_code_clean(data)):
            return code
        if data == "" and self.allow_blank:
            return ""
        self.fail("invalid_choice", input=data)


class UnknownFieldsRefused:
    """Serializer mixin: a body key the serializer does not declare is a 400 (``{key: ["Not a field of
    this request."]}``) instead of being ignored; the schema says ``additionalProperties: false``."""

    unknown_field_message = "Not a field of this request."

    def validate(self, attrs):
        attrs = super().validate(attrs)
        data = getattr(self, "initial_data", None)
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        if unknown:
            raise serializers.ValidationError({name: [self.unknown_field_message] for name in unknown})
        return attrs
