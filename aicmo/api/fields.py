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
- `CalendarDateField`: a day (``YYYY-MM-DD``) in the years 1900–9000, the range every analytics query and
  fit accepts (a series or a cohort matrix steps day by day or period by period from its dates, and a year
  near 1 or 9999 would step outside ``datetime.date``); the schema publishes ``DATE_YEARS_PATTERN`` on the
  ``date`` format. Rules across two dates (an order, a span) are each query's own and are stated in the
  fields' descriptions.
- `FormattedTextField`: text of a named syntax JSON Schema cannot check (a template that must compile, a host
  name after the server's reduction); the schema publishes ``format: <name>`` and the field's help text says
  the rule; the service that owns the rule checks it (docs/API.md, "Formats").
- `JsonPartField`: a JSON value sent as its own part of a multipart body (OpenAPI: an object property of a
  multipart body is ``application/json``; a form field holding the JSON text is read the same), published as
  the ``request_schema`` given (`ColumnMappingField`: an import's mapping, an object of strings);
  `spreadsheet_upload` states a CSV/XLSX file part's media types.
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


class FormattedTextField(serializers.CharField):
    """A text field whose request schema is the CharField's own plus a custom ``format`` (one of
    ``aicmo.api.schema.FORMATS``; a tool that does not know it sees a string). ``help_text`` must state the
    rule in words. (`FormattedCharField` publishes a whole schema instead, for rules with a pattern.)"""

    def __init__(self, *, published_format: str, **kwargs):
        from .schema import FORMATS

        if published_format not in FORMATS:
            raise TypeError(f"{published_format!r} is not in aicmo.api.schema.FORMATS.")
        if not kwargs.get("help_text"):
            raise TypeError("A custom format needs a help_text stating its rule.")
        self.published_format = published_format
        super().__init__(**kwargs)


# The media types of a spreadsheet upload (crm.importing.RowSource reads both).
SPREADSHEET_MEDIA_TYPES = "text/csv, application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SPREADSHEET_RULE = (
    "A CSV file (a header row; UTF-8, UTF-16 or Windows-1252; comma, semicolon, tab or pipe delimited) or an "
    "XLSX workbook (its first sheet), told apart by the part's filename (.xlsx/.xlsm: a workbook; anything "
    "else: CSV). Content that is not what the name says (an image, a PDF, binary data) or a file without a "
    "header row is a 400 on `file`."
)


def file_upload(serializer, media_types: str) -> dict:
    """``extend_schema(request=...)`` for a multipart body whose ``file`` part is one of ``media_types``
    (comma-separated, as OpenAPI's ``encoding.contentType`` takes them)."""
    from drf_spectacular.utils import OpenApiRequest

    encoding = {"file": {"contentType": media_types}}
    return {"multipart/form-data": OpenApiRequest(serializer, encoding=encoding)}


def spreadsheet_upload(serializer) -> dict:
    """``extend_schema(request=...)`` for a multipart body whose ``file`` part is a CSV or XLSX file."""
    return file_upload(serializer, SPREADSHEET_MEDIA_TYPES)


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


class JsonPartField(PublishedSchema, serializers.JSONField):
    """JSON text in one multipart part (or form field), with a published request schema."""

    def __init__(self, **kwargs):
        super().__init__(binary=True, **kwargs)


class ColumnMappingField(JsonPartField):
    """An import's column mapping: a JSON object of strings in its own part; anything else is a 400
    ("Expected an object {shape}.", ``shape`` saying which side is the file's header). Which headers and
    fields are allowed is the importer's to check."""

    def __init__(self, *, shape: str, **kwargs):
        self.shape = shape
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise serializers.ValidationError(f"Expected an object {self.shape}.")
        return value


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


FIRST_YEAR, LAST_YEAR = 1900, 9000
# the year of a `format: date` string within FIRST_YEAR..LAST_YEAR (the format itself checks the rest)
DATE_YEARS_PATTERN = r"^(?:19[0-9]{2}|[2-8][0-9]{3}|9000)-"


class CalendarDateField(serializers.DateField):
    """A date in the years 1900–9000; an earlier or later one is a 400 ("Use a day in the years 1900 to
    9000."). Schema: ``format: date`` with ``DATE_YEARS_PATTERN``."""

    published_pattern = DATE_YEARS_PATTERN
    default_error_messages = {"years": f"Use a day in the years {FIRST_YEAR} to {LAST_YEAR}."}

    def to_internal_value(self, value):
        day = super().to_internal_value(value)
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            self.fail("years")
        return day


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
