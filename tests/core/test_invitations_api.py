"""Members join by invitation only: the API never enrols a named account, never tells an admin whether an
address has an account, and other workspaces' invitations do not exist for the caller."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aicmo import invitations
from aicmo.models import AuditEvent, Invitation, Membership, Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

VOLATILE = {"id", "email", "created_at", "expires_at", "accept_url"}


def _invite(client, email, role="viewer"):
    return client.post("/api/v1/invitations/", {"email": email, "role": role}, format="json")


def test_direct_enrolment_of_another_workspaces_user_is_gone(api_client_for, other_workspace, member_factory):
    """The reported defect: B's admin POSTed A's username to /members/ and got 201 with A's email."""
    alice = member_factory(other_workspace, Role.ADMIN, username="alice", email="alice@a.example")
    client = api_client_for(Role.ADMIN)
    resp = client.post("/api/v1/members/", {"user": "alice", "role": "viewer"}, format="json")
    assert resp.status_code == 405
    assert "alice@a.example" not in resp.content.decode()
    assert not Membership.objects.filter(user=alice, workspace=client.workspace).exists()
    assert not AuditEvent.objects.filter(workspace=client.workspace, verb__startswith="member.").exists()


def test_invite_answer_is_identical_whatever_accounts_exist(api_client_for, other_workspace, member_factory):
    """Every kind of address gets the same status, headers, body shape and even the same number of queries:
    nothing in the answer depends on the installation's accounts."""
    client = api_client_for(Role.ADMIN)
    member_factory(other_workspace, Role.ADMIN, email="elsewhere@a.example")
    member_factory(client.workspace, Role.VIEWER, email="colleague@a.example")
    UserFactory(email="loner@a.example")
    UserFactory(email="gone@a.example", is_active=False)
    answers = []
    for email in [
        "elsewhere@a.example",
        "colleague@a.example",
        "loner@a.example",
        "gone@a.example",
        "no@a.example",
    ]:
        with CaptureQueriesContext(connection) as queries:
            resp = _invite(client, email)
        body = resp.json()
        answers.append(
            (
                resp.status_code,
                sorted(resp.headers.keys()),
                {k: v for k, v in body.items() if k not in VOLATILE},
                len(queries),
            )
        )
        assert body["email"] == email and body["accept_url"].startswith("http")
    assert answers[0][0] == 201 and answers[0][2]["status"] == "pending"
    assert all(answer == answers[0] for answer in answers), answers


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-address", "role": "viewer"}, "email"),
        ({"email": "x@example.com", "role": "emperor"}, "role"),
        ({"role": "viewer"}, "email"),
    ],
)
def test_bad_invite_is_a_field_error(api_client_for, body, field):
    resp = api_client_for(Role.ADMIN).post("/api/v1/invitations/", body, format="json")
    assert resp.status_code == 400
    assert field in resp.json()["error"]["fields"]
    assert not Invitation.objects.exists()


def test_second_open_invitation_for_an_address_is_refused(api_client_for):
    client = api_client_for(Role.ADMIN)
    assert _invite(client, "Sam@Example.com").status_code == 201
    resp = _invite(client, "sam@example.COM")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "conflict"
    assert "open invitation" in resp.json()["error"]["fields"]["email"][0]
    assert Invitation.objects.get().email == "sam@example.com"


@pytest.mark.parametrize("role", [Role.MARKETER, Role.REVIEWER, Role.VIEWER])
def test_only_admins_use_invitations(api_client_for, workspace, role):
    admin = UserFactory()
    inv = invitations.invitation_create(workspace=workspace, email="x@example.com", role="viewer", by=admin)
    client = api_client_for(role)
    assert client.get("/api/v1/invitations/").status_code == 403
    assert _invite(client, "y@example.com").status_code == 403
    assert client.post(f"/api/v1/invitations/{inv.pk}/revoke/").status_code == 403
    assert Invitation.objects.count() == 1


def test_other_workspaces_invitations_answer_404(api_client_for, other_workspace):
    theirs = invitations.invitation_create(
        workspace=other_workspace, email="t@example.com", role="admin", by=UserFactory()
    )
    hash_before = theirs.token_hash
    client = api_client_for(Role.ADMIN)
    assert client.get("/api/v1/invitations/").json()["results"] == []
    assert client.get(f"/api/v1/invitations/{theirs.pk}/").status_code == 404
    assert client.post(f"/api/v1/invitations/{theirs.pk}/resend/").status_code == 404
    assert client.post(f"/api/v1/invitations/{theirs.pk}/revoke/").status_code == 404
    assert client.delete(f"/api/v1/invitations/{theirs.pk}/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None and theirs.token_hash == hash_before
    assert not AuditEvent.objects.filter(
        workspace=other_workspace, verb__in=["invitation.resent", "invitation.revoked"]
    ).exists()


def test_list_resend_revoke_and_their_audit(api_client_for, workspace, django_assert_max_num_queries):
    client = api_client_for(Role.ADMIN)
    for i in range(20):
        assert _invite(client, f"p{i}@example.com").status_code == 201
    with django_assert_max_num_queries(8):
        listed = client.get("/api/v1/invitations/?page_size=50").json()["results"]
    assert len(listed) == 20 and all(row["invited_by"] == client.user.username for row in listed)

    first = listed[-1]
    resent = client.post(f"/api/v1/invitations/{first['id']}/resend/").json()
    assert resent["accept_url"] != first["accept_url"]
    revoked = client.post(f"/api/v1/invitations/{first['id']}/revoke/").json()
    assert revoked["status"] == "revoked" and revoked["accept_url"] is None
    assert client.delete(f"/api/v1/invitations/{listed[0]['id']}/").status_code == 204
    assert Invitation.objects.get(pk=listed[0]["id"]).revoked_at is not None
    assert client.post(f"/api/v1/invitations/{first['id']}/resend/").status_code == 409  # revoked: the state

    verbs = list(
        AuditEvent.objects.filter(workspace=workspace, verb__startswith="invitation.").values_list(
            "verb", flat=True
        )
    )
    assert verbs.count("invitation.created") == 20
    assert verbs.count("invitation.resent") == 1 and verbs.count("invitation.revoked") == 2
    created = AuditEvent.objects.filter(verb="invitation.created").first()
    assert created.actor_id == client.user.pk and created.changes["role"] == "viewer"


def test_schema_documents_invitations_and_no_member_create(api_client_for):
    schema = api_client_for(Role.ADMIN).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert "post" not in paths["/api/v1/members/"]
    create = paths["/api/v1/invitations/"]["post"]
    assert "201" in create["responses"]
    assert {"resend", "revoke"} <= {
        p.rstrip("/").rsplit("/", 1)[-1] for p in paths if p.startswith("/api/v1/invitations/{id}/")
    }


def test_role_change_and_removal_of_members_still_work(api_client_for, member_factory, workspace):
    client = api_client_for(Role.ADMIN)
    other = member_factory(workspace, Role.VIEWER)
    membership = Membership.objects.get(user=other)
    assert (
        client.patch(f"/api/v1/members/{membership.pk}/", {"role": "reviewer"}, format="json").json()["role"]
        == "reviewer"
    )
    assert client.delete(f"/api/v1/members/{membership.pk}/").status_code == 204
    assert not Membership.objects.filter(pk=membership.pk).exists()
