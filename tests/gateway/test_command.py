"""manage.py gateway_selfcheck (--status, --watch, --json, --workspace) and gateway_rotate_credentials."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from gateway.models import HealthCheck
from tests.gateway.factories import ProviderAccountFactory, fixture_gateway_fast, fixture_test_adapters  # noqa: F401


def run(*args) -> tuple[str, int]:
    out = StringIO()
    code = 0
    try:
        call_command("gateway_selfcheck", *args, stdout=out)
    except SystemExit as exc:
        code = exc.code
    return out.getvalue(), code


def test_status_runs_no_checks_and_prints_json(workspace, other_workspace, gateway_fast):
    ProviderAccountFactory(workspace=workspace, name="Hunter")
    ProviderAccountFactory(workspace=other_workspace, name="Other")
    out, code = run("--status", "--json")
    assert code == 0 and not HealthCheck.objects.exists()
    data = json.loads(out)
    assert [d["workspace"] for d in data] == ["acme", "globex"]
    assert data[0]["accounts"][0]["name"] == "Hunter" and data[0]["accounts"][0]["state"] == "healthy"
    assert "secret-key-1234" not in out
    out, _ = run("--status", "--json", "--workspace", "globex")
    assert [d["workspace"] for d in json.loads(out)] == ["globex"]


def test_default_runs_checks_and_exits_2_when_something_needs_attention(workspace, gateway_fast, httpserver):
    ProviderAccountFactory(workspace=workspace, name="Hunter", base_url=httpserver.url_for(""))
    httpserver.expect_request("/v2/account").respond_with_json({}, status=401)
    out, code = run("--workspace", "acme")
    assert code == 2
    assert HealthCheck.objects.count() == 1
    assert "needs_reauth" in out and "rejected the API key: re-enter credentials" in out


def test_healthy_run_exits_0(workspace, gateway_fast, httpserver):
    ProviderAccountFactory(workspace=workspace, name="Hunter", base_url=httpserver.url_for(""))
    ProviderAccountFactory(workspace=workspace, name="Backup", base_url=httpserver.url_for(""))
    httpserver.expect_request("/v2/account").respond_with_json({"data": {}})
    out, code = run()
    assert code == 0 and "healthy" in out and HealthCheck.objects.count() == 2


def test_watch_repeats(workspace, gateway_fast, httpserver):
    ProviderAccountFactory(workspace=workspace, base_url=httpserver.url_for(""))
    httpserver.expect_request("/v2/account").respond_with_json({"data": {}})
    out, _ = run("--watch", "0.05", "--rounds", "3", "--json")
    assert len(out.strip().splitlines()) == 3
    assert HealthCheck.objects.count() == 3


def test_unknown_workspace_and_bad_watch(db):
    with pytest.raises(CommandError):
        call_command("gateway_selfcheck", "--workspace", "nope", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("gateway_selfcheck", "--watch", "0", stdout=StringIO())
