"""The workspace settings page: admins manage members, invitations and API keys; others cannot; other workspaces' ids 404."""

import pytest

from aicmo.apikeys import api_key_create
from aicmo.invitations import invitation_create
from aicmo.models import ApiKey, AuditEvent, Membership, Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", [Role.MARKETER, Role.REVIEWER, Role.VIEWER])
def test_only_admins_reach_settings(client_for, role):
    client = client_for(role)
    assert client.get("/settings/").status_code == 403
    assert (
        client.post("/settings/", {"action": "create-key", "name": "x", "role": "admin"}).status_code == 403
    )
    assert not ApiKey.objects.exists()


def test_admin_changes_role_and_removes_member(client_for, workspace):
    client = client_for(Role.ADMIN)
    membership = MembershipFactory(workspace=workspace, user=UserFactory(username="nora"), role=Role.VIEWER)
    client.post(f"/settings/members/{membership.pk}/", {"role": "reviewer"})
    membership.refresh_from_db()
    assert membership.role == Role.REVIEWER
    client.post(f"/settings/members/{membership.pk}/", {"action": "remove"})
    assert not Membership.objects.filter(pk=membership.pk).exists()
    verbs = set(AuditEvent.objects.filter(workspace=workspace).values_list("verb", flat=True))
    assert {"member.role_changed", "member.removed"} <= verbs


def test_the_old_add_member_form_enrols_nobody(client_for, workspace):
    client = client_for(Role.ADMIN)
    UserFactory(username="nora", email="nora@example.com")
    resp = client.post("/settings/", {"action": "add-member", "user": "nora", "role": "viewer"})
    assert resp.status_code == 400
    assert not Membership.objects.filter(workspace=workspace, user__username="nora").exists()


def test_last_admin_cannot_demote_themselves(client_for):
    client = client_for(Role.ADMIN)
    me = Membership.objects.get(user=client.user)
    resp = client.post(f"/settings/members/{me.pk}/", {"role": "viewer"}, follow=True)
    me.refresh_from_db()
    assert me.role == Role.ADMIN
    assert b"at least one admin" in resp.content


def test_api_key_shown_once_then_revoked(client_for):
    client = client_for(Role.ADMIN)
    resp = client.post("/settings/", {"action": "create-key", "name": "Zapier", "role": "marketer"})
    assert resp.status_code == 200
    key = ApiKey.objects.get(name="Zapier")
    html = resp.content.decode()
    secret = html.split('id="new-api-key">', 1)[1].split("<", 1)[0]
    assert secret.startswith(f"aicmo_{key.prefix}_")
    assert secret not in client.get("/settings/").content.decode()
    client.post(f"/settings/api-keys/{key.pk}/revoke/")
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_other_workspace_ids_answer_404(client_for, other_workspace):
    client = client_for(Role.ADMIN)
    owner = UserFactory()
    theirs = MembershipFactory(workspace=other_workspace, user=owner, role=Role.ADMIN)
    their_key = api_key_create(workspace=other_workspace, name="theirs", by=owner).api_key
    assert client.post(f"/settings/members/{theirs.pk}/", {"role": "viewer"}).status_code == 404
    assert client.post(f"/settings/members/{theirs.pk}/", {"action": "remove"}).status_code == 404
    assert client.post(f"/settings/api-keys/{their_key.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    their_key.refresh_from_db()
    assert theirs.role == Role.ADMIN and their_key.revoked_at is None
    html = client.get("/settings/").content.decode()
    assert "theirs" not in html and owner.username not in html


def test_settings_query_count(client_for, workspace, django_assert_max_num_queries):
    client = client_for(Role.ADMIN)
    for i in range(15):
        MembershipFactory(workspace=workspace, role=Role.VIEWER)
        api_key_create(workspace=workspace, name="k", by=client.user)
        invitation_create(workspace=workspace, email=f"i{i}@example.com", role=Role.VIEWER, by=client.user)
    with django_assert_max_num_queries(12):
        assert client.get("/settings/").status_code == 200
