"""JSON bodies hold the types the published schema gives them (aicmo.api.bodies), for every write operation.

The matrix is generated from the schema: every operation with a JSON request body × every top-level
property with a declared type × values of the other JSON types DRF would have coerced ("12" for an integer,
12 or true for a string, "true" or 1 for a boolean, …). Each is a 400 naming the property, before any
service runs.
"""

from __future__ import annotations

import json
import re

import pytest

from aicmo.api.bodies import _resolve, published_schema, request_body_schema, type_errors

WRONG = {
    "string": [12, True],
    "integer": ["12", True, 1.5],
    "number": ["1.5", False],
    "boolean": ["true", 1],
    "array": ["a", {"a": 1}],
    "object": ["a", [1]],
}


def _declared_types(schema: dict) -> set[str]:
    schema = _resolve(schema)
    branches = [*schema.get("oneOf", ()), *schema.get("anyOf", ()), *schema.get("allOf", ())]
    types = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for branch in branches:
        types |= _declared_types(branch)
    return types


def write_cases() -> dict[tuple[str, str], list[tuple[str, object]]]:
    """(method, concrete path) → [(property, wrong value)] for every typed property of every JSON body."""
    cases: dict[tuple[str, str], list[tuple[str, object]]] = {}
    for template, item in sorted(published_schema()["paths"].items()):
        path = re.sub(r"\{[^}]+\}", "1", template)
        for method, operation in sorted(item.items()):
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if not body:
                continue
            properties = _resolve(body["schema"]).get("properties", {})
            for name, prop in sorted(properties.items()):
                if _resolve(prop).get("readOnly"):
                    continue
                types = _declared_types(prop)
                if _resolve(prop).get("nullable"):
                    types.add("null")
                for declared in sorted(types - {"null"}):
                    for value in WRONG.get(declared, []):
                        if declared == "number" and isinstance(value, int) and not isinstance(value, bool):
                            continue
                        if not any(_accepts(t, value) for t in types):
                            cases.setdefault((method.upper(), path), []).append((name, value))
    return cases


def _accepts(declared: str, value) -> bool:
    return {
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
        "null": value is None,
    }[declared]


CASES = write_cases()


def test_the_matrix_covers_every_json_write_operation():
    with_json = {
        (method.upper(), re.sub(r"\{[^}]+\}", "1", template))
        for template, item in published_schema()["paths"].items()
        for method, operation in item.items()
        if _resolve(
            operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
        ).get("properties")
    }
    assert set(CASES) == with_json
    assert len(with_json) > 50


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), sorted(CASES), ids=" ".join)
def test_a_wrongly_typed_json_value_is_a_400_naming_its_field(api_client_for, method, path):
    client = api_client_for(role="admin")
    refused = {}

    for name, value in CASES[(method, path)]:
        resp = client.generic(method, path, data=json.dumps({name: value}), content_type="application/json")
        fields = resp.json()["error"]["fields"] if resp.status_code == 400 else {}
        refused[(name, repr(value))] = fields.get(name, [f"answered {resp.status_code}"])[0]

    assert {case: message for case, message in refused.items() if not message.startswith("Must be")} == {}


def test_type_rules():
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer"},
            "s": {"type": "string", "nullable": True},
            "e": {"oneOf": [{"enum": ["a", "b"], "type": "string"}, {"enum": [None]}]},
            "l": {"type": "array", "items": {"type": "object", "properties": {"b": {"type": "boolean"}}}},
            "any": {},
        },
    }

    assert type_errors(schema, {"n": 12, "s": None, "e": None, "l": [{"b": False}], "any": "x"}) == {}
    assert (
        type_errors(schema, {"n": 12.0, "s": "x", "e": "zzz", "any": 1}) == {}
    )  # values are the serializer's
    assert type_errors(schema, {"n": "12", "s": 1, "e": 2, "l": [{"b": True}, {"b": "yes"}]}) == {
        "n": ["Must be an integer."],
        "s": ["Must be a string or null."],
        "e": ["Must be a string or null."],
        "l[1].b": ["Must be a boolean (true or false)."],
    }
    assert type_errors(schema, ["x"]) == {"non_field_errors": ["Must be an object."]}


def test_the_operation_is_found_by_its_path_literal_paths_first():
    assert request_body_schema("POST", "/api/v1/crm/contacts/bulk/") == {
        "$ref": "#/components/schemas/ContactBulkRequestRequest"
    }
    assert request_body_schema("PATCH", "/api/v1/crm/contacts/7/") == {
        "$ref": "#/components/schemas/PatchedContactRequest"
    }
    assert request_body_schema("GET", "/api/v1/crm/contacts/") is None
    assert request_body_schema("POST", "/u/token/") is None


@pytest.mark.django_db
def test_form_bodies_are_not_type_checked(api_client_for, tmp_path, settings):
    """A multipart upload carries every value as text: the `library` id "999999" is the serializer's to
    judge (here: no such library), not a type error."""
    settings.MEDIA_ROOT = str(tmp_path)
    client = api_client_for(role="admin")
    resp = client.post("/api/v1/media/assets/", {"library": "999999", "title": "12"}, format="multipart")

    assert resp.status_code == 400
    assert "library" in resp.json()["error"]["fields"]
    assert not any(m.startswith("Must be") for ms in resp.json()["error"]["fields"].values() for m in ms)


@pytest.mark.parametrize(
    ("url", "role", "shape"),
    [
        ("/api/v1/crm/imports/", "marketer", '{"Column header": "field"}'),
        ("/api/v1/analytics/orders/import/", "marketer", '{"field": "Column header"}'),
    ],
)
@pytest.mark.parametrize("mapping", ['["email"]', '{"a": 1}', '"x"'])
@pytest.mark.django_db
def test_an_import_mapping_that_is_not_an_object_of_strings_is_a_400(
    api_client_for, url, role, shape, mapping
):
    """Both imports read their mapping through one field (aicmo.api.fields.ColumnMappingField)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("a.csv", b"email\nann@example.com\n", content_type="text/csv")
    response = api_client_for(role).post(url, {"file": upload, "mapping": mapping}, format="multipart")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"]["mapping"] == [f"Expected an object {shape}."]
