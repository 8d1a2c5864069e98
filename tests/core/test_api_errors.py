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
