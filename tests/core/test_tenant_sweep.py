"""Tenant isolation across the whole API, driven by the OpenAPI schema so a new endpoint cannot be missed:
another workspace's rows never appear in a list, and every operation on one of their ids answers 404
and changes nothing. (Each app's tests check their own endpoints in depth; this is the safety net.)"""

from __future__ import annotations

import json
import re

import pytest
from django.apps import apps
from drf_spectacular.generators import SchemaGenerator

from aicmo.models import Role
from tests.core.api_rows import one_row_per_resource

MISSING_ID = 987654321
# Operations that validate the body before looking the object up get a valid one (contact 1 may not exist:
# the list lookup comes first once the body is well-formed).
BODIES = {
    "/api/v1/crm/lists/{id}/add/": {"contact_ids": [1]},
    "/api/v1/crm/lists/{id}/remove/": {"contact_ids": [1]},
    "/api/v1/media/assets/{id}/reject/": {"note": "Off brand."},
}
RESOURCE = re.compile(r"^/api/v1/(?P<resource>[\w-]+(?:/[\w-]+)?)/")
# List operations that return no tenant rows of their own (or not as a list of objects), with why.
NOT_ROW_LISTS = {
    "/api/v1/analytics/campaigns/compare/": "needs ?campaigns=; analytics tests check foreign ids (404)",
    "/api/v1/analytics/figures/overview/": "workspace totals, no rows (analytics tests)",
    "/api/v1/analytics/figures/channels/": "one row per channel of the caller's rollups (analytics tests)",
    "/api/v1/analytics/figures/assets/": "figures of the caller's assets and campaigns (test_assets isolation)",
    "/api/v1/analytics/figures/kpis/": "period KPIs of the caller's rollups (test_kpis isolation)",
    "/api/v1/analytics/figures/attribution/": "per-campaign credit of the caller's orders (analytics tests)",
    "/api/v1/analytics/cohorts/retention/": "a matrix of the caller's cohorts (test_cohorts isolation)",
    "/api/v1/analytics/scores/settings/": "the caller's scoring rule, one object",
    "/api/v1/analytics/trends/series/": "a series of the caller's rollups (test_trends isolation)",
    "/api/v1/analytics/customer-values/distribution/": "counts over the caller's values (analytics tests)",
    "/api/v1/analytics/lifetime-fits/latest/": "one object, the caller's latest fit (analytics tests)",
    "/api/v1/workspaces/": "the caller's memberships, checked in test_tenancy_api",
    "/api/v1/crm/contacts/export/": "CSV; checked below by content",
    "/api/v1/crm/segments/fields/": "field catalogue, no rows",
    "/api/v1/gateway/health/": "aggregates of the caller's accounts (gateway tests)",
    "/api/v1/gateway/recommendations/": "computed advice, no rows",
    "/api/v1/media/assets/duplicates/": "groups of the caller's assets (media tests)",
    "/api/v1/media/assets/performers/": "needs ?channel=; ranking of the caller's assets",
    "/api/v1/media/assets/stats/": "counts, no rows",
}


@pytest.fixture
def api_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [(path, method.upper()) for path, ops in schema["paths"].items() for method in ops]


@pytest.fixture
def foreign_rows(other_workspace, member_factory, settings, tmp_path) -> dict[str, int]:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return one_row_per_resource(other_workspace, member_factory)


def ids_in(body) -> set[int]:
    items = body.get("results", []) if isinstance(body, dict) else body
    return {item["id"] for item in items if isinstance(item, dict) and "id" in item}


def test_lists_never_show_another_workspaces_rows(api_client_for, api_operations, foreign_rows):
    client = api_client_for(role=Role.ADMIN)
    lists = [p for p, m in api_operations if m == "GET" and "{" not in p and p not in NOT_ROW_LISTS]
    unchecked = [p for p in lists if RESOURCE.match(p)["resource"] not in foreign_rows]
    assert not unchecked, (
        f"list endpoints without a foreign row to look for (add one to api_rows): {unchecked}"
    )

    for path in lists:
        resp = client.get(path, {"page_size": 500})
        assert resp.status_code == 200, path
        assert foreign_rows[RESOURCE.match(path)["resource"]] not in ids_in(resp.json()), path

    export = client.get("/api/v1/crm/contacts/export/")
    assert b"".join(export.streaming_content).count(b"\n") == 1  # the header only: no contact of theirs


def test_every_operation_on_another_workspaces_id_is_404(
    api_client_for, api_operations, foreign_rows, other_workspace, redis_client
):
    client = api_client_for(role=Role.ADMIN)
    before = snapshot(other_workspace)
    by_id = [(p, m) for p, m in api_operations if "{id}" in p]
    unchecked = [p for p, _ in by_id if RESOURCE.match(p)["resource"] not in foreign_rows]
    assert not unchecked, f"operations without a foreign row to address (add one to api_rows): {unchecked}"

    for path, method in by_id:
        foreign = foreign_rows[RESOURCE.match(path)["resource"]]
        answers = []
        for pk in (foreign, MISSING_ID):
            url = path.replace("{id}", str(pk)).replace("{spec}", "thumb")
            body = json.dumps(BODIES.get(path, {}))
            resp = client.generic(method, url, body, content_type="application/json")
            answers.append(
                (resp.status_code, resp.json()["error"]["code"] if resp.status_code >= 400 else None)
            )
        assert answers == [(404, "not_found")] * 2, f"{method} {path}: {answers}"

    assert snapshot(other_workspace) == before, "a call on a foreign id changed that workspace's data"


def snapshot(workspace) -> dict[str, list[dict]]:
    """Every row of every tenant table in `workspace`, to prove the calls wrote nothing there."""
    return {
        model._meta.label: list(model.objects.filter(workspace=workspace).order_by("pk").values())
        for model in apps.get_models()
        if any(f.name == "workspace" for f in model._meta.concrete_fields)
    }
