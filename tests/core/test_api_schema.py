"""The served OpenAPI schema matches what the API really answers and accepts (regressions found by
schemathesis against a live server)."""

from __future__ import annotations

import re

import jsonschema
import pytest

from tests.crm.factories import ContactFactory
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_every_api_operation_documents_the_shared_error_responses(served_schema):
    error_ref = {"$ref": "#/components/schemas/Error"}
    assert set(served_schema["components"]["schemas"]["Error"]["required"]) == {"error"}
    for path, item in served_schema["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"401", "403", "404", "429"} <= set(responses), (method, path)
            if "{id}" in path or "requestBody" in operation:
                assert "400" in responses, (method, path)
            for code, response in responses.items():
                if code.startswith("4"):
                    assert response["content"]["application/json"]["schema"] == error_ref, (method, path)


def test_content_types_served_are_documented(served_schema):
    paths = served_schema["paths"]
    assert "text/csv" in paths["/api/v1/crm/contacts/export/"]["get"]["responses"]["200"]["content"]
    assert "text/csv" in paths["/api/v1/crm/imports/{id}/errors.csv/"]["get"]["responses"]["200"]["content"]
    for upload in ("/api/v1/crm/imports/", "/api/v1/media/assets/", "/api/v1/analytics/orders/import/"):
        # only multipart carries a file: a JSON or urlencoded body documented here would be a promise broken
        assert set(paths[upload]["post"]["requestBody"]["content"]) == {"multipart/form-data"}, upload
    assert set(paths["/api/v1/crm/lists/{id}/add/"]["post"]["requestBody"]["content"]) == {"application/json"}


def test_unverified_contact_and_unstarted_job_match_their_schema(api_client_for, served_schema):
    """ "" is a real verification value and started_by/company may be null: the schema says so."""
    client = api_client_for("viewer")
    contact = ContactFactory(workspace=client.workspace, verification="", company=None)
    JobFactory(workspace=client.workspace, started_by=None)
    body = client.get(f"/api/v1/crm/contacts/{contact.pk}/").json()
    assert body["verification"] == "" and body["company"] is None
    assert client.get("/api/v1/jobs/").json()["results"][0]["started_by"] is None
    components = served_schema["components"]["schemas"]
    verification = components["Contact"]["properties"]["verification"]
    assert {"$ref": "#/components/schemas/BlankEnum"} in verification["oneOf"]
    assert components["Contact"]["properties"]["company"].get("nullable") or any(
        s.get("nullable") for s in components["Contact"]["properties"]["company"].get("allOf", [])
    )
    assert components["Job"]["properties"]["started_by"]["nullable"] is True


def test_list_responses_are_not_documented_as_pages_when_they_are_plain_lists(served_schema):
    get = served_schema["paths"]["/api/v1/media/assets/{id}/renditions/"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert "page" not in {p["name"] for p in get.get("parameters", [])}


@pytest.mark.parametrize("value", [0, "0", "abc", 501])
def test_page_size_outside_the_documented_range_is_400(api_client_for, value):
    resp = api_client_for("viewer").get("/api/v1/crm/contacts/", {"page_size": value})
    assert resp.status_code == 400
    assert list(resp.json()["error"]["fields"]) == ["page_size"]


@pytest.mark.parametrize("choices", [True, "a,b", [{"x": 1}], None])
def test_custom_field_choices_must_be_a_list_of_strings(api_client_for, choices):
    client = api_client_for("admin")
    body = {"key": "plan", "label": "Plan", "type": "choice", "choices": choices}
    resp = client.post("/api/v1/crm/custom-fields/", body, format="json")
    assert resp.status_code == 400
    assert [re.split(r"[.\[]", f)[0] for f in resp.json()["error"]["fields"]] == ["choices"]
    assert client.get("/api/v1/crm/segments/fields/").status_code == 200


def test_form_encoded_json_body_is_415(api_client_for):
    client = api_client_for("admin")
    resp = client.post(
        "/api/v1/crm/custom-fields/", {"key": "k", "label": "L", "choices": "null"}, format="multipart"
    )
    assert resp.status_code == 415
    assert resp.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize("path", ["/api/v1/crm/enrichment-runs/", "/api/v1/crm/verification-runs/"])
def test_a_run_states_that_it_needs_contact_ids_a_list_or_a_segment(api_client_for, served_schema, path):
    """`required_any` on the serializer is the schema's anyOf, and a body with none of them is the 400."""
    body = served_schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = served_schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert schema["anyOf"] == [
        {"required": ["contact_ids"]},
        {"required": ["list"]},
        {"required": ["segment"]},
    ]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({}, schema)
    response = api_client_for("marketer").post(path, {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Give contact_ids, a list or a segment."


def _body_needs_a_field(served_schema, body: dict) -> bool:
    """The body schema refuses an empty object (its refs resolved in the served document)."""
    document = {**body, "components": served_schema["components"]}
    return not jsonschema.Draft7Validator(document).is_valid({})


def test_a_body_that_must_name_a_field_is_required_and_its_absence_is_a_400(
    api_client_for, served_schema, workspace, member_factory, settings, tmp_path
):
    """schemathesis sent PATCH /members/{id}/ and POST /crm/verification-runs/ with no body at all, which
    their schema allowed (a body was optional although it had to name `role`, or one of `contact_ids`,
    `list`, `segment`) and the API refused with a 400."""
    from tests.core.api_rows import one_row_per_resource

    settings.MEDIA_ROOT = str(tmp_path / "media")
    rows = one_row_per_resource(workspace, member_factory)
    client = api_client_for("admin")
    checked = []
    for path, item in served_schema["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            if not _body_needs_a_field(served_schema, content["application/json"]["schema"]):
                continue
            assert operation["requestBody"].get("required") is True, (method, path)
            resource = path.removeprefix("/api/v1/").split("/{id}", 1)[0]
            if "{" in path.replace("{id}", "", 1) or ("{id}" in path and resource not in rows):
                continue
            url = path.replace("{id}", str(rows.get(resource, 0)))
            response = getattr(client, method)(url)  # no body, no content type
            assert response.status_code in (400, 415), (method, path, response.status_code)
            checked.append((method, path))
    assert {("patch", "/api/v1/members/{id}/"), ("post", "/api/v1/crm/verification-runs/")} <= set(checked)
