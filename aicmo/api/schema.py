"""OpenAPI generation: API-key authentication, the query parameters each operation accepts, and one shared
set of error responses."""

import copy
import re

from django.core.exceptions import FieldDoesNotExist
from django.core.validators import RegexValidator
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from .fields import UnknownFieldsRefused, published_pattern
from .filters import filters_apply, paginates


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "aicmo.apikeys.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A workspace API key: `Authorization: Bearer aicmo_…` (or the `X-Api-Key` header).",
        }


class FilterBoundsExtension(DjangoFilterExtension):
    """django-filter parameters as drf-spectacular documents them, plus the ``min_value``/``max_value`` a
    number filter enforces (``?r_score=0`` is a 400, so the schema says ``minimum: 1``)."""

    target_class = "aicmo.api.filters.DjangoFilterBackend"
    priority = 1

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):
        parameters = super().resolve_filter_field(
            auto_schema, model, filterset_class, field_name, filter_field
        )
        bounds = {
            key: filter_field.extra[name]
            for key, name in (("minimum", "min_value"), ("maximum", "max_value"))
            if filter_field.extra.get(name) is not None
        }
        for parameter in parameters:
            schema = parameter["schema"]
            schema.update({key: value for key, value in bounds.items() if key not in schema})
        return parameters


def _blank_read_only_choice(field) -> bool:
    """A read-only choice field of a model field with blank=True: DRF drops ``allow_blank`` from read-only
    fields, so its schema enum would leave out the "" the API really returns (e.g. an unverified contact)."""
    if not (isinstance(field, serializers.ChoiceField) and field.read_only and not field.allow_blank):
        return False
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if model is None or not field.source or "." in field.source:
        return False
    try:
        return model._meta.get_field(field.source).blank
    except FieldDoesNotExist:
        return False


NO_NUL = r"^[^\x00]*$"


def _space_class() -> str:
    """The characters ``str.strip``/``str.isspace`` (and Python's ``\\s``) count as white space, as escapes
    for a character class. Spelled out because a schema's ``\\s`` is ECMA-262's set, which differs (it has
    U+FEFF, lacks U+001C–U+001F): a generator reading the schema must agree with the server."""
    return "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x10000)) if c.isspace())


SPACE = _space_class()
# A DRF CharField with trim_whitespace and not allow_blank refuses a value that is blank once trimmed
# (``"   "``): at least one character that is neither NUL nor white space.
NOT_BLANK = rf"^[^\x00]*[^\x00{SPACE}][^\x00]*$"


def any_case(word: str) -> str:
    """``word`` as a pattern that matches it in any letter case (ECMA-262 patterns have no ``i`` flag)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


def url_pattern(schemes, *, blank: bool = False) -> str:
    """The text a URL field of these schemes can accept: optional white space (trimmed), a scheme in any
    case, ``://`` and no NUL; ``blank``: white space alone too. (The SSRF guard, ``gateway.ssrf.check_url``,
    refuses more: that part is the field's ``format``.)"""
    url = f"(?:{'|'.join(any_case(s) for s in sorted(schemes))})://[^\\x00]*"
    return f"^[{SPACE}]*(?:{url})?$" if blank else f"^[{SPACE}]*{url}$"


# Custom string formats, the one list of them (OpenAPI allows any name; a tool that does not know one reads a
# plain string). Each is listed in docs/API.md "Formats"; the contract test's hooks (tests/core/contract_hooks_*.py)
# generate valid values for every one (tests/core/test_contract_formats_secrets.py holds both to this list).
FORMATS = {
    "pem-certificate": "PEM text of 1 to 10 X.509 certificates (-----BEGIN CERTIFICATE-----), nothing else, "
    "at most 64 KB; blank: none (gateway.tls.validate_ca_pem).",
    "pem-rsa-private-key": "An unencrypted RSA private key of 1024 to 4096 bits, PKCS#1 (BEGIN RSA PRIVATE "
    "KEY) or PKCS#8 (BEGIN PRIVATE KEY) PEM; blank: a new 2048-bit key is generated.",
    "domain-name": "A DNS domain of at least two labels, IDNA 2008 with UTS #46 mapping (Unicode labels are "
    "converted to A-labels), at most 253 characters; a trailing dot and letter case are ignored.",
    "public-http-url": "An http(s) URL without user name or password whose host is a public unicast "
    "address: an IP literal, or a name that resolves only to public addresses (gateway.ssrf: loopback, "
    "private, link-local, reserved, shared and cloud metadata addresses are refused).",
    "public-smtp-url": "An smtp://, smtps:// or smtp+plain:// URL of a public host, as public-http-url.",
    "public-imap-url": "An imap://, imaps:// or imap+plain:// URL of a public host, as public-http-url.",
    "future-date-time": "An ISO 8601 date-time (as date-time) that lies in the future when the request "
    "arrives.",
    "click-token": "The signed token of one of the workspace's tracked clicks (the last part of a click "
    "link, /publishing/t/c/<token>/).",
    "jinja-template": "A personalization template that compiles in the Jinja sandbox and reads only the "
    "names its field's description lists (publishing.personalization.template_check).",
    "jinja-layout": "A jinja-template that places {{ body }} where the email's content goes and may also "
    "read the layout names its field's description lists.",
    "mjml-template": "MJML that compiles (no mj-include) to HTML that is a jinja-template.",
    "hostname-or-url": "An IDNA host name, or a URL or host whose scheme, leading www., port, path, query "
    "and fragment the server drops (crm.normalize.domain_clean).",
}


def formatted(name: str, *, description: str = "", **keywords) -> dict:
    """A string schema with the custom format ``name`` (one of ``FORMATS``), its rule in the description."""
    rule = FORMATS[name]
    text = f"{description} Format {name}: {rule}" if description else f"Format {name}: {rule}"
    return {"type": "string", "format": name, **keywords, "description": text}


def decimal_pattern(field: serializers.DecimalField) -> str:
    """The strings a DecimalField accepts: at least one digit, within its whole and decimal places, and no
    sign when its minimum is not negative. (drf-spectacular's own pattern also matches "", "-" and ".",
    which the field refuses.)"""
    sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
    whole, places = field.max_whole_digits, field.decimal_places
    fraction = rf"(?:\.\d{{0,{places}}})?" if places else ""
    after_point = rf"|\.\d{{1,{places}}}" if places else ""
    return rf"^{sign}(?:\d{{1,{max(whole, 1)}}}{fraction}{after_point})$"


def ip_address_schema(field: serializers.IPAddressField, schema: dict) -> dict:
    """An address of the field's protocol (``both``: IPv4 or IPv6, JSON Schema formats ``ipv4``/``ipv6``);
    drf-spectacular's plain string would let any text through."""
    formats = {"ipv4": ["ipv4"], "ipv6": ["ipv6"]}.get(field.protocol, ["ipv4", "ipv6"])
    kept = {k: v for k, v in schema.items() if k not in {"pattern", "minLength", "maxLength", "format"}}
    # the type (and nullable) stay outside the alternatives, which only name formats: null fits when allowed
    alternatives = [{"format": name} for name in formats]
    return {**kept, **({"anyOf": alternatives} if len(alternatives) > 1 else alternatives[0])}


class AutoSchema(SpectacularAutoSchema):
    """Documents query parameters by the same rules ``aicmo.api.filters.query_param_names`` enforces."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        if direction == "request" and getattr(field, "request_schema", None):
            return copy.deepcopy(field.request_schema)  # a field publishing its own request grammar
        if _blank_read_only_choice(field):
            field = copy.copy(field)
            field.allow_blank = True
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.DecimalField) and "pattern" in schema and not field.localize:
            schema = {**schema, "pattern": decimal_pattern(field)}
        if direction == "request" and isinstance(field, serializers.DateField) and published_pattern(field):
            schema = {**schema, "pattern": published_pattern(field)}
        if direction == "request" and isinstance(field, serializers.IPAddressField):
            return ip_address_schema(field, schema)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and "pattern" not in schema
            and not any(isinstance(v, RegexValidator) for v in field.validators)  # documented as its pattern
        ):
            # every DRF CharField refuses NUL (ProhibitNullCharactersValidator): say so; and a blank one
            # after trimming unless blank is allowed
            refuses_blank = field.trim_whitespace and not field.allow_blank
            pattern = published_pattern(field) or (NOT_BLANK if refuses_blank else NO_NUL)
            schema = {**schema, "pattern": pattern}
        if direction == "request" and getattr(field, "published_format", None):
            schema = {**schema, "format": field.published_format}  # aicmo.api.fields.FormattedTextField
        return schema

    def _map_basic_serializer(self, serializer, direction):
        """A serializer's ``required_any = ("a", "b")`` (its ``validate`` refuses a body with none of them)
        is stated as ``anyOf: [{required: [a]}, {required: [b]}]`` on its request body; a serializer that
        refuses unknown keys (``UnknownFieldsRefused``) says ``additionalProperties: false``; its
        ``request_variants`` (alternatives a create or full update must meet one of, e.g. "not a choice
        field, or one with choices") are stated as ``anyOf`` on a full body (a partial one is checked
        against the stored row)."""
        schema = super()._map_basic_serializer(serializer, direction)
        if direction != "request":
            return schema
        for name, field in force_instance(serializer).fields.items():
            if getattr(field, "request_schema", None) and name in schema.get("properties", {}):
                # verbatim: not wrapped in drf-spectacular's blank alternative (the schema says about blank)
                schema["properties"][name] = copy.deepcopy(field.request_schema)
        names = getattr(serializer, "required_any", ())
        if names:
            schema = {**schema, "anyOf": [{"required": [name]} for name in names]}
        variants = getattr(serializer, "request_variants", ())
        if variants and not getattr(serializer, "partial", False):
            schema = {**schema, "anyOf": copy.deepcopy(list(variants))}
        if isinstance(force_instance(serializer), UnknownFieldsRefused):
            schema = {**schema, "additionalProperties": False}
        return schema

    def _get_request_for_media_type(self, serializer, direction="request"):
        """A polymorphic body (``oneOf`` discriminated by a field), a body with ``required_any`` and a
        dict schema with required properties are required: a request without a body is refused.
        (drf-spectacular only looks for required fields on a plain serializer.)"""
        schema, required = super()._get_request_for_media_type(serializer, direction)
        proxy = force_instance(serializer)
        if isinstance(proxy, PolymorphicProxySerializer) and proxy.resource_type_field_name:
            required = True
        # a body that must name one of several fields (``required_any``), or a schema given as a dict
        # that lists required properties (``PATCH /members/{id}/``: role), cannot be left out either
        if getattr(proxy, "required_any", ()) or (
            isinstance(serializer, dict) and serializer.get("required")
        ):
            required = True
        return schema, required

    def _get_parameters(self):
        """Every free-text query parameter (a string with no enum, pattern or format) says it refuses NUL,
        which ``aicmo.api.filters.query_value_errors`` refuses for every view (DRF's search, django-filter's
        CharField and PostgreSQL's text all do, each in its own words or as a 500)."""
        parameters = super()._get_parameters()
        for parameter in parameters:
            schema = parameter.get("schema", {})
            inner = schema.get("items", {}) if schema.get("type") == "array" else schema
            if (
                parameter.get("in") == "query"
                and inner.get("type") == "string"
                and not {"enum", "pattern", "format", "$ref"} & inner.keys()
            ):
                inner["pattern"] = NO_NUL
        return parameters

    def get_filter_backends(self):
        return list(getattr(self.view, "filter_backends", [])) if filters_apply(self.view) else []

    def _get_paginator(self):
        """Only paginated actions have a paginator: a plain list (renditions, usage) is not wrapped."""
        return super()._get_paginator() if paginates(self.view) else None

    def _get_pagination_parameters(self):
        if not paginates(self.view):
            return []
        return self.view.paginator.get_schema_operation_parameters(self.view)

    def get_override_parameters(self):
        extras = getattr(self.view, "query_parameters", {}).get(getattr(self.view, "action", None), [])
        return [*super().get_override_parameters(), *extras]


ERROR_COMPONENT = {
    "type": "object",
    "description": "Every API failure (aicmo.api.errors): a code, a human message and per-field messages.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "invalid, not_found, permission_denied, …"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": "Field (or query parameter) name → messages; `a.b`/`a[0].b` for nesting.",
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}
ERROR_DESCRIPTIONS = {
    "400": "Invalid input (body or query parameter).",
    "401": "Missing, invalid or revoked credentials.",
    "403": "The caller's role does not allow this operation.",
    "404": "No such object in the caller's workspace (or no workspace for the caller); `fields` names any id "
    "in the body that names no row of the workspace.",
    "405": "Method not allowed.",
    "409": "Conflicts with the current state: a name already used in the workspace, an action the object's "
    "state does not allow now (aicmo.conflicts), or a request with the same Idempotency-Key still running.",
    "415": "Unsupported request content type.",
    "422": "This Idempotency-Key was used for a different request.",
    "429": "Throttled; retry after the `Retry-After` seconds.",
    "503": "Briefly unavailable, not the request's fault (the database locked or unreachable, the task queue "
    "unreachable): nothing was written; retry after the `Retry-After` seconds.",
}


def error_statuses(operation: dict, method: str) -> list[str]:
    """The error statuses an operation can answer, from its shape: every authenticated operation can be
    401/403/404 (no workspace)/429/503 (``aicmo.dblocks.transient_error``); 400 when it takes a body, query
    or path parameters; 415 with a body; 409 when it writes (POST/PUT/PATCH/DELETE: a state conflict, `aicmo.conflicts`); 409 and 422 when it
    takes an ``Idempotency-Key``."""
    statuses = ["401", "403", "404", "429", "503"]
    params = operation.get("parameters", [])
    if "requestBody" in operation or params or method in {"post", "put", "patch"}:
        statuses.append("400")
    if "requestBody" in operation:
        statuses.append("415")
    if method in {"post", "put", "patch", "delete"}:
        statuses.append("409")
    if any(p.get("in") == "header" and p.get("name") == "Idempotency-Key" for p in params):
        statuses += [code for code in ("409", "422") if code not in statuses]  # aicmo.api.idempotency
    return statuses


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: one shared `Error` component, referenced by every operation for
    each error status it can answer (an operation's own error responses are kept)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_COMPONENT
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for code in error_statuses(operation, method):
                responses.setdefault(code, {"description": ERROR_DESCRIPTIONS[code], "content": ref})
            for code, response in responses.items():
                if code.startswith(("4", "5")) and not response.get("content"):
                    response["content"] = ref
    return result
