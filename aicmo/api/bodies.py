"""JSON request bodies hold the types the published schema gives them.

DRF's fields coerce: a CharField takes ``12`` or ``true`` as text, a BooleanField takes ``"yes"``/``1``,
an IntegerField takes ``"12"``, a primary key or UUID field takes a number or a string. The schema
(``/api/schema/``) says string, boolean or integer, so those bodies are schema-violating yet were accepted.
``body_type_errors`` checks a parsed JSON body against the request schema of its operation — the same
document clients and the contract test read — for JSON types only (string, number, integer, boolean, array,
object, null); the serializer then validates values as before (lengths, patterns, choices, ids, rules).

JSON bodies only: multipart and form bodies carry every value as text by nature.

JSON Schema's ``integer`` includes a number with a zero fraction (``12.0``, JSON Schema 2020-12 §6.1.1,
and OpenAPI 3.0's JSON Schema reading of it), and DRF's IntegerField takes it as 12, so it is accepted.
"""

from __future__ import annotations

import re
from functools import lru_cache

API_PREFIX = "/api/v1/"
TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


@lru_cache(maxsize=1)
def published_schema() -> dict:
    """The OpenAPI document ``/api/schema/`` serves (built once per process, about a second)."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


@lru_cache(maxsize=1)
def _operations() -> list[tuple[re.Pattern, str, dict]]:
    """(path regex, method, operation) for every documented operation; literal paths sort before templated
    ones, so ``/crm/contacts/bulk/`` is not taken for ``/crm/contacts/{id}/``."""
    rows = []
    for template, item in published_schema().get("paths", {}).items():
        parts = re.split(r"(\{[^}]+\})", template)
        regex = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
        for method, operation in item.items():
            if isinstance(operation, dict):
                rows.append((template.count("{"), re.compile(f"^{regex}$"), method.upper(), operation))
    rows.sort(key=lambda row: row[0])
    return [(regex, method, operation) for _, regex, method, operation in rows]


def operation_for(method: str, path: str) -> dict | None:
    """The published operation serving ``method path`` (a request path under /api/v1/), or None."""
    if not path.startswith(API_PREFIX):
        return None
    for regex, op_method, operation in _operations():
        if op_method == method and regex.match(path):
            return operation
    return None


def request_body_schema(method: str, path: str) -> dict | None:
    """The ``application/json`` request body schema of the operation at ``method path``, or None."""
    operation = operation_for(method, path)
    if operation is None:
        return None
    content = operation.get("requestBody", {}).get("content", {})
    return content.get("application/json", {}).get("schema")


def resolve(schema: dict) -> dict:
    """``schema`` with any ``$ref`` followed (within the published schema)."""
    return _resolve(schema)


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        node = published_schema()
        for key in schema["$ref"].removeprefix("#/").split("/"):
            node = node[key]
        schema = node
    return schema


def json_types(value) -> set[str]:
    """The JSON Schema types ``value`` (as parsed from JSON) is an instance of."""
    if value is None:
        return {"null"}
    if isinstance(value, bool):
        return {"boolean"}
    if isinstance(value, int):
        return {"integer", "number"}
    if isinstance(value, float):
        return {"integer", "number"} if value.is_integer() else {"number"}
    if isinstance(value, str):
        return {"string"}
    if isinstance(value, list):
        return {"array"}
    return {"object"}


def _primary_type(value) -> str:
    """An enum choice's type: 1 is an integer, 1.0 a number (so a number enum also takes 1)."""
    if isinstance(value, float):
        return "number"
    return next(iter(json_types(value) - {"number"}))


def _allowed_types(schema: dict) -> set[str] | None:
    """The types ``schema`` itself allows (None: any), from ``type``, ``nullable`` or an ``enum``."""
    if "type" in schema:
        allowed = set(schema["type"]) if isinstance(schema["type"], list) else {schema["type"]}
    elif "enum" in schema:
        allowed = {_primary_type(choice) for choice in schema["enum"]}
    else:
        return None
    if schema.get("nullable"):
        allowed.add("null")
    return allowed


def _fits(schema: dict, value) -> bool:
    """``value``'s own type is one ``schema`` allows (its parts may still be wrong)."""
    allowed = _allowed_types(_resolve(schema))
    return allowed is None or bool(json_types(value) & allowed)


def _must_be(types: set[str]) -> str:
    return f"Must be {' or '.join(TYPE_NAMES[t] for t in sorted(types, key=list(TYPE_NAMES).index))}."


def _join(path: str, key) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))


def type_errors(schema: dict, value, path: str = "") -> dict[str, list[str]]:
    """Field path (``a``, ``a.b``, ``a[0].b``; ``non_field_errors`` for the body) → "Must be …" messages,
    for every place ``value`` has a JSON type ``schema`` does not allow. Only types are checked."""
    schema = _resolve(schema)
    errors: dict[str, list[str]] = {}
    for part in schema.get("allOf", ()):
        errors.update(type_errors(part, value, path))
    branches = [*schema.get("oneOf", ()), *schema.get("anyOf", ())]
    if branches and all(type_errors(branch, value, path) for branch in branches):
        fitting = [b for b in branches if _fits(b, value)]
        if len(fitting) == 1:  # the right kind of value with a wrong part inside: name that part
            errors.update(type_errors(fitting[0], value, path))
        else:
            union = {t for b in branches for t in (_allowed_types(_resolve(b)) or ())}
            errors[path or "non_field_errors"] = [_must_be(union)]
    allowed = _allowed_types(schema)
    if allowed is not None and not json_types(value) & allowed:
        errors[path or "non_field_errors"] = [_must_be(allowed)]
        return errors
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                errors.update(type_errors(sub, item, _join(path, key)))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            errors.update(type_errors(schema["items"], item, _join(path, index)))
    return errors


def body_type_errors(request) -> dict[str, list[str]]:
    """Type errors of a JSON request body against its operation's published schema ({} when the request
    has no JSON body or the operation documents none)."""
    if "json" not in (request.content_type or "").split(";")[0]:
        return {}
    schema = request_body_schema(request.method, request.path)
    if schema is None:
        return {}
    return type_errors(schema, request.data)
