"""Gateway admin: write-only credentials, coloured states, self-check action, workspace scoping."""

from __future__ import annotations

from aicmo.models import Role
from gateway.models import HealthCheck, ProviderAccount
from tests.gateway.factories import ProviderAccountFactory, fixture_gateway_fast, fixture_test_adapters  # noqa: F401


def test_admin_adds_account_with_write_only_credentials(staff_for, workspace, gateway_fast):
    client = staff_for(Role.ADMIN)
    resp = client.post(
        "/admin/gateway/provideraccount/add/",
        {
            "workspace": workspace.pk,
            "capability": "verify_email",
            "adapter": "test-verifier",
            "name": "Hunter",
            "priority": 10,
            "enabled": "on",
            "base_url": "",
            "timeout_seconds": 5,
            "rate_limit_per_second": "",
            "rate_limit_burst": 1,
            "options": "{}",
            "credentials": '{"api_key": "admin-secret-9876"}',
        },
    )
    assert resp.status_code == 302, resp.content.decode()[:3000]
    account = ProviderAccount.objects.get(name="Hunter")
    assert account.get_credentials() == {"api_key": "admin-secret-9876"}
    page = client.get(f"/admin/gateway/provideraccount/{account.pk}/change/").content.decode()
    assert "admin-secret-9876" not in page and "••••9876" in page
    # saving without credentials keeps them
    resp = client.post(
        f"/admin/gateway/provideraccount/{account.pk}/change/",
        {
            "workspace": workspace.pk,
            "capability": "verify_email",
            "adapter": "test-verifier",
            "name": "Hunter 2",
            "priority": 10,
            "enabled": "on",
            "base_url": "",
            "timeout_seconds": 5,
            "rate_limit_per_second": "",
            "rate_limit_burst": 1,
            "options": "{}",
            "credentials": "",
        },
    )
    assert resp.status_code == 302
    account.refresh_from_db()
    assert account.name == "Hunter 2" and account.get_credentials() == {"api_key": "admin-secret-9876"}


def test_invalid_credentials_json_is_a_form_error(staff_for, workspace, gateway_fast):
    client = staff_for(Role.ADMIN)
    resp = client.post(
        "/admin/gateway/provideraccount/add/",
        {
            "workspace": workspace.pk,
            "capability": "verify_email",
            "adapter": "test-verifier",
            "name": "H",
            "priority": 1,
            "timeout_seconds": 5,
            "rate_limit_burst": 1,
            "options": "{}",
            "credentials": "[1, 2]",
        },
    )
    assert resp.status_code == 200 and "JSON object" in resp.content.decode()
    assert not ProviderAccount.objects.exists()


def test_changelist_has_coloured_state_and_selfcheck_action(staff_for, workspace, gateway_fast, httpserver):
    client = staff_for(Role.ADMIN)
    account = ProviderAccountFactory(workspace=workspace, base_url=httpserver.url_for(""))
    page = client.get("/admin/gateway/provideraccount/").content.decode()
    assert 'class="gateway-state"' in page and "#1a7f37" in page and "secret-key-1234" not in page
    httpserver.expect_request("/v2/account").respond_with_json({"errors": []}, status=503)
    resp = client.post(
        "/admin/gateway/provideraccount/",
        {
            "action": "run_selfcheck",
            "_selected_action": [account.pk],
        },
        follow=True,
    )
    assert "0 passed, 1 failed" in resp.content.decode()
    assert HealthCheck.objects.get(account=account).error_kind == "transient"


def test_marketer_cannot_change_and_other_workspace_is_hidden(
    staff_for, workspace, other_workspace, gateway_fast
):
    mine = ProviderAccountFactory(workspace=workspace)
    foreign = ProviderAccountFactory(workspace=other_workspace, name="Foreign")
    client = staff_for(Role.MARKETER)
    assert client.get(f"/admin/gateway/provideraccount/{mine.pk}/change/").status_code == 200  # view only
    resp = client.post(f"/admin/gateway/provideraccount/{mine.pk}/change/", {"name": "hacked"})
    assert resp.status_code == 403
    assert "Foreign" not in client.get("/admin/gateway/provideraccount/").content.decode()
    assert client.get(f"/admin/gateway/provideraccount/{foreign.pk}/change/").status_code == 404
