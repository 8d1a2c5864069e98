"""Query parameters are part of the contract: each operation accepts exactly what the schema documents.

A parameter an operation does not know is a 400 naming it (a typo must not answer "all rows"), and every
documented one is accepted. Contacts filter by `?segment=<id>` on the list as on the export.
"""

from __future__ import annotations

import pytest

from crm.models import Contact
from tests.crm.factories import ContactFactory, SegmentFactory

pytestmark = pytest.mark.django_db
UNKNOWN = "Unknown query parameter for this operation."


def get_operations(served_schema):
    for path, item in served_schema["paths"].items():
        if "get" in item:
            params = [p["name"] for p in item["get"].get("parameters", []) if p["in"] == "query"]
            yield path.replace("{id}", "1").replace("{spec}", "thumb"), params


def test_every_get_operation_refuses_an_unknown_parameter(api_client_for, served_schema):
    client = api_client_for("admin")
    checked = 0
    for url, _ in get_operations(served_schema):
        if not url.startswith("/api/v1/") or url == "/api/v1/workspaces/":
            continue
        resp = client.get(url, {"pgae": "2"})
        assert resp.status_code == 400, (url, resp.status_code)
        assert resp.json()["error"]["fields"] == {"pgae": [UNKNOWN]}, url
        checked += 1
    assert checked > 40


def test_every_documented_parameter_is_known(api_client_for, served_schema):
    """The other direction: what the schema documents is never refused as unknown (it may be a bad value)."""
    client = api_client_for("admin")
    for url, params in get_operations(served_schema):
        for name in params:
            resp = client.get(url, {name: "1"})
            if resp.status_code == 400:
                assert resp.json()["error"]["fields"].get(name) != [UNKNOWN], (url, name)


def test_lists_document_their_own_filters_only(served_schema):
    params = {url: set(p) for url, p in get_operations(served_schema)}
    assert {"segment", "lifecycle", "page", "page_size", "ordering"} <= params["/api/v1/crm/contacts/"]
    assert "search" not in params["/api/v1/crm/contacts/"]  # no search_fields: not offered
    assert "search" in params["/api/v1/crm/companies/"]
    assert {"kind", "status", "library", "q"} <= params["/api/v1/media/assets/"]
    assert params["/api/v1/gateway/health/"] == set()
    assert "page" not in params["/api/v1/crm/contacts/1/"]


def test_contacts_list_filters_by_segment(api_client_for, other_workspace):
    client = api_client_for("viewer")
    ContactFactory(workspace=client.workspace, email="a@keep.example")
    ContactFactory(workspace=client.workspace, email="b@other.example")
    segment = SegmentFactory(
        workspace=client.workspace,
        rules={"op": "and", "rules": [{"field": "email", "operator": "contains", "value": "@keep."}]},
    )
    resp = client.get("/api/v1/crm/contacts/", {"segment": segment.pk})
    assert resp.status_code == 200
    assert [c["email"] for c in resp.json()["results"]] == ["a@keep.example"]
    export = client.get("/api/v1/crm/contacts/export/", {"segment": segment.pk})
    assert b"a@keep.example" in b"".join(export.streaming_content)


@pytest.mark.parametrize("route", ["/api/v1/crm/contacts/", "/api/v1/crm/contacts/export/"])
@pytest.mark.parametrize("kind", ["foreign", "missing"])
def test_contacts_segment_naming_no_segment_of_the_workspace_matches_nothing(
    api_client_for, other_workspace, route, kind
):
    """An id filter, like ?list= (docs/API.md "Filters by id"): empty, and a foreign id looks like a missing one."""
    client = api_client_for("viewer")
    ContactFactory(workspace=client.workspace, email="mine@example.com")
    ContactFactory(workspace=other_workspace, email="theirs@example.com")
    value = {"foreign": str(SegmentFactory(workspace=other_workspace).pk), "missing": "999999"}[kind]
    resp = client.get(route, {"segment": value})
    assert resp.status_code == 200
    if route.endswith("export/"):
        body = b"".join(resp.streaming_content).decode()
        assert "mine@" not in body and "theirs@" not in body and len(body.splitlines()) == 1  # the header
    else:
        assert resp.json()["count"] == 0
    assert client.get(route).status_code == 200 and Contact.objects.count() == 2


@pytest.mark.parametrize("route", ["/api/v1/crm/contacts/", "/api/v1/crm/contacts/export/"])
def test_contacts_segment_that_is_not_an_id_is_400(api_client_for, route):
    resp = api_client_for("viewer").get(route, {"segment": "x"})
    assert resp.status_code == 400 and list(resp.json()["error"]["fields"]) == ["segment"]


@pytest.mark.parametrize(
    ("url", "param"),
    [
        ("/api/v1/media/assets/", {"kind": "imgae"}),
        ("/api/v1/media/assets/", {"status": "aproved"}),
        ("/api/v1/media/suggestions/", {"status": "opne"}),
    ],
)
def test_unknown_choice_values_are_400_not_all_rows(api_client_for, url, param):
    resp = api_client_for("viewer").get(url, param)
    assert resp.status_code == 400
    assert list(resp.json()["error"]["fields"]) == list(param)


@pytest.mark.parametrize("page", ["", "x", "0", "-1", "1.5", "last", "١"])
def test_a_page_that_is_not_a_positive_integer_is_a_400(api_client_for, page):
    client = api_client_for("viewer")
    ContactFactory(workspace=client.workspace)
    response = client.get("/api/v1/crm/contacts/", {"page": page})
    assert response.status_code == 400 and "page" in response.json()["error"]["fields"]


def test_pages_in_range_answer_and_past_the_last_is_a_404(api_client_for):
    client = api_client_for("viewer")
    ContactFactory.create_batch(3, workspace=client.workspace)
    assert client.get("/api/v1/crm/contacts/", {"page": "2", "page_size": "2"}).json()["count"] == 3
    assert client.get("/api/v1/crm/contacts/", {"page": "3", "page_size": "2"}).status_code == 404
