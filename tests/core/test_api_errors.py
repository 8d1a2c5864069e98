"""Regression tests for API inputs the fuzzer (test_api_fuzz.py) found answering outside the error contract."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "path", ["/api/v1/jobs/1.5/", "/api/v1/crm/contacts/-1e-08/consent/", "/api/v1/nothing/"]
)
def test_unknown_api_url_answers_json_error_body(api_client_for, path):
    client = api_client_for(role="admin")

    resp = client.get(path)

    assert resp.status_code == 404
    assert resp.json() == {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}


def test_unknown_page_url_keeps_the_html_404(client_for):
    client = client_for(role="viewer")

    resp = client.get("/crm/no-such-page/")

    assert resp.status_code == 404
    assert resp["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("header", ["²", "9" * 25, "9" * 5000, "acme\x00"])
def test_junk_workspace_header_is_refused_with_the_error_body(api_client_for, header):
    client = api_client_for(role="admin")
    client.credentials(HTTP_X_WORKSPACE=header)
    client.raise_request_exception = False

    resp = client.get("/api/v1/jobs/")

    assert 400 <= resp.status_code < 500
    assert resp.json()["error"]["code"]


def test_junk_workspace_header_on_a_dashboard_page_is_not_a_500(client_for):
    client = client_for(role="viewer")
    client.raise_request_exception = False

    for header in ["²", "9" * 5000]:
        assert client.get("/jobs/", HTTP_X_WORKSPACE=header).status_code < 500


@pytest.mark.parametrize("value", ["²", "99999999999999999999999", "9" * 5000])
def test_workspace_switch_with_a_junk_id_is_a_404(client_for, value):
    client = client_for(role="viewer")

    assert client.post("/workspace/switch/", {"workspace": value}).status_code == 404


@pytest.mark.parametrize("body", [[], "admin", {"role": "emperor"}, {"role": ["admin"]}, {}])
def test_member_role_change_with_a_junk_body_is_a_400_and_changes_nothing(
    api_client_for, member_factory, workspace, body
):
    """The fuzzer's PATCH /members/{id}/ with the JSON body [] was a 500 (list has no .get)."""
    client = api_client_for(role="admin")
    viewer = member_factory(workspace, "viewer")
    membership = viewer.memberships.get()

    resp = client.patch(f"/api/v1/members/{membership.pk}/", body, format="json")

    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid"
    membership.refresh_from_db()
    assert membership.role == "viewer"


def test_member_role_change_still_works(api_client_for, member_factory, workspace):
    client = api_client_for(role="admin")
    membership = member_factory(workspace, "viewer").memberships.get()

    resp = client.patch(f"/api/v1/members/{membership.pk}/", {"role": "reviewer"}, format="json")

    assert resp.status_code == 200 and resp.json()["role"] == "reviewer"
