"""Invitation links: single-use, expiring, revocable, replaced on resend, refused when tampered with; the
accept page (log in or sign up, then accept) and the settings page that lists, resends and revokes."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aicmo import invitations
from aicmo.invitations import InvitationInvalid, invitation_accept, invitation_create, token_for
from aicmo.models import AuditEvent, Invitation, Membership, Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(workspace):
    user = UserFactory(username="boss")
    MembershipFactory(workspace=workspace, user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def invite(workspace, admin):
    def make(email="newbie@example.com", role=Role.REVIEWER):
        inv = invitation_create(workspace=workspace, email=email, role=role, by=admin)
        return inv, token_for(inv)

    return make


def _reason(token, user):
    with pytest.raises(InvitationInvalid) as exc:
        invitation_accept(token=token, user=user)
    return exc.value.reason


def test_token_is_stored_hashed_only(invite):
    inv, token = invite()
    row = Invitation.objects.filter(pk=inv.pk).values().get()
    assert len(token) == 64 and token not in {str(v) for v in row.values()}
    assert row["token_hash"] == invitations.hash_token(token)


def test_accept_creates_membership_with_invited_role_once(invite, workspace):
    inv, token = invite()
    user = UserFactory(email="newbie@example.com")
    accepted = invitation_accept(token=token, user=user)
    assert accepted.joined and accepted.membership.role == Role.REVIEWER
    assert Membership.objects.get(workspace=workspace, user=user).role == Role.REVIEWER
    assert _reason(token, user) == "accepted"
    assert _reason(token, UserFactory()) == "accepted"
    event = AuditEvent.objects.get(verb="invitation.accepted")
    assert event.actor_id == user.pk and event.changes["email_matches"] is True
    assert AuditEvent.objects.get(verb="member.added").changes == {
        "user": user.username,
        "role": "reviewer",
        "via": "invitation",
    }


def test_expired_revoked_and_resent_links_are_refused(invite, admin):
    user = UserFactory()
    expired, expired_token = invite("a@example.com")
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _reason(expired_token, user) == "expired"

    revoked, revoked_token = invite("b@example.com")
    invitations.invitation_revoke(invitation=revoked, by=admin)
    assert _reason(revoked_token, user) == "revoked"

    resent, old_token = invite("c@example.com")
    resent = invitations.invitation_resend(invitation=resent, by=admin)
    assert _reason(old_token, user) == "unknown"
    assert invitation_accept(token=token_for(resent), user=user).joined
    assert not Membership.objects.filter(user=user).exclude(role=Role.REVIEWER).exists()
    assert Membership.objects.filter(user=user).count() == 1


def test_resend_of_expired_invitation_revives_it(invite, admin):
    inv, _ = invite()
    Invitation.objects.filter(pk=inv.pk).update(expires_at=timezone.now() - timedelta(days=1))
    inv = invitations.invitation_resend(invitation=Invitation.objects.get(pk=inv.pk), by=admin)
    assert inv.status == "pending" and inv.expires_at > timezone.now() + timedelta(days=6)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(position=st.integers(min_value=0, max_value=63), data=st.data())
def test_any_altered_token_is_refused(invite, position, data):
    Invitation.objects.all().delete()
    _inv, token = invite()
    replacement = data.draw(st.sampled_from([c for c in "0123456789abcdef" if c != token[position]]))
    tampered = token[:position] + replacement + token[position + 1 :]
    cut = token[: data.draw(st.integers(min_value=0, max_value=63))]
    user = UserFactory()
    assert _reason(tampered, user) == "unknown"
    assert _reason(cut, user) == "unknown"
    assert not Membership.objects.filter(user=user).exists()


def test_already_a_member_keeps_role_and_consumes_link(invite, workspace):
    inv, token = invite(role=Role.ADMIN)
    member = UserFactory(email="other@example.com")
    MembershipFactory(workspace=workspace, user=member, role=Role.VIEWER)
    accepted = invitation_accept(token=token, user=member)
    assert not accepted.joined and accepted.membership.role == Role.VIEWER
    event = AuditEvent.objects.get(verb="invitation.accepted")
    assert event.changes["already_member"] is True and event.changes["email_matches"] is False
    assert not AuditEvent.objects.filter(verb="member.added").exists()


def test_invitation_mail_waits_for_commit(invite, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        inv, _ = invite()
    assert len(callbacks) == 1  # the send task is enqueued only once the invitation is committed
    assert Invitation.objects.get(pk=inv.pk).sent_at is None


# -- the accept page -------------------------------------------------------------------------------------


def test_anonymous_visitor_is_offered_log_in_or_sign_up(client, invite):
    _inv, token = invite()
    html = client.get(f"/invitations/{token}/").content.decode()
    assert "newbie@example.com" in html and "Acme" in html
    assert f"/login/?next=%2Finvitations%2F{token}%2F" in html
    assert 'value="signup"' in html


def test_sign_up_through_the_link_creates_the_user_and_joins(client, invite, workspace):
    _inv, token = invite()
    resp = client.post(
        f"/invitations/{token}/",
        {
            "action": "signup",
            "username": "newbie",
            "password1": "Zx9!long-pass",
            "password2": "Zx9!long-pass",
        },
    )
    assert resp.status_code == 302 and resp["Location"] == "/"
    membership = Membership.objects.select_related("user").get(workspace=workspace, user__username="newbie")
    assert membership.user.email == "newbie@example.com" and membership.role == Role.REVIEWER
    assert client.get("/").status_code == 200  # logged in, in the workspace
    assert {"user.signed_up", "invitation.accepted", "member.added"} <= set(
        AuditEvent.objects.values_list("verb", flat=True)
    )


def test_bad_sign_up_is_a_form_error_and_creates_nothing(client, invite):
    _inv, token = invite()
    UserFactory(username="taken")
    resp = client.post(
        f"/invitations/{token}/",
        {"action": "signup", "username": "taken", "password1": "Zx9!long-pass", "password2": "other"},
    )
    assert resp.status_code == 400
    assert Invitation.objects.get().accepted_at is None
    assert not Membership.objects.filter(user__username="taken").exists()


def test_logged_in_user_accepts_then_link_is_used(client, invite, workspace):
    _inv, token = invite()
    user = UserFactory(email="someone-else@example.com")
    client.force_login(user)
    assert b"Accept and join" in client.get(f"/invitations/{token}/").content
    assert client.post(f"/invitations/{token}/", {"action": "accept"}).status_code == 302
    assert Membership.objects.get(workspace=workspace, user=user).role == Role.REVIEWER
    again = client.get(f"/invitations/{token}/")
    assert again.status_code == 410 and b"already been used" in again.content


def test_get_never_accepts_and_bad_links_answer_404(client, invite):
    _inv, token = invite()
    user = UserFactory()
    client.force_login(user)
    client.get(f"/invitations/{token}/")
    assert not Membership.objects.filter(user=user).exists()
    resp = client.post(f"/invitations/{'0' * 64}/", {"action": "accept"})
    assert resp.status_code == 404 and b"not valid" in resp.content
    assert not Membership.objects.filter(user=user).exists()


# -- the settings page -----------------------------------------------------------------------------------


def test_settings_page_invites_lists_link_resends_and_revokes(client_for, workspace):
    client = client_for(Role.ADMIN)
    resp = client.post("/settings/", {"action": "invite", "email": "Nora@Example.com", "role": "viewer"})
    assert resp.status_code == 302
    inv = Invitation.objects.get(workspace=workspace)
    html = client.get("/settings/").content.decode()
    assert invitations.accept_url(inv) in html and "nora@example.com" in html and "queued" in html

    client.post(f"/settings/invitations/{inv.pk}/resend/")
    fresh = Invitation.objects.get(pk=inv.pk)
    assert fresh.token_hash != inv.token_hash
    html = client.get("/settings/").content.decode()
    assert invitations.accept_url(fresh) in html and invitations.accept_url(inv) not in html

    client.post(f"/settings/invitations/{inv.pk}/revoke/")
    assert Invitation.objects.get(pk=inv.pk).revoked_at is not None
    html = client.get("/settings/").content.decode()
    assert "No open invitations." in html and invitations.accept_url(fresh) not in html


def test_settings_invite_answer_does_not_depend_on_accounts(client_for):
    client = client_for(Role.ADMIN)
    UserFactory(username="alice", email="alice@a.example")
    known = client.post("/settings/", {"action": "invite", "email": "alice@a.example", "role": "viewer"})
    unknown = client.post("/settings/", {"action": "invite", "email": "ghost@a.example", "role": "viewer"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]


def test_settings_invite_errors_are_form_errors(client_for):
    client = client_for(Role.ADMIN)
    assert (
        client.post("/settings/", {"action": "invite", "email": "nope", "role": "viewer"}).status_code == 400
    )
    client.post("/settings/", {"action": "invite", "email": "a@example.com", "role": "viewer"})
    resp = client.post("/settings/", {"action": "invite", "email": "a@example.com", "role": "viewer"})
    assert resp.status_code == 400 and b"open invitation" in resp.content
    assert (
        client.post("/settings/", {"action": "add-member", "user": "x", "role": "viewer"}).status_code == 400
    )
    assert Invitation.objects.count() == 1


def test_settings_other_workspaces_invitations_answer_404(client_for, other_workspace):
    client = client_for(Role.ADMIN)
    theirs = invitation_create(workspace=other_workspace, email="t@example.com", role="viewer", by=None)
    for action in ("resend", "revoke"):
        assert client.post(f"/settings/invitations/{theirs.pk}/{action}/").status_code == 404
    assert client.post(f"/settings/invitations/{theirs.pk}/explode/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert "t@example.com" not in client.get("/settings/").content.decode()


def test_settings_page_marks_demo_delivery_and_send_errors(client_for, workspace):
    client = client_for(Role.ADMIN)
    demo = invitation_create(workspace=workspace, email="d@example.com", role="viewer", by=client.user)
    failed = invitation_create(workspace=workspace, email="f@example.com", role="viewer", by=client.user)
    Invitation.objects.filter(pk=demo.pk).update(
        sent_at=timezone.now(), send_demo=True, send_provider="demo_email", sent_token_hash=demo.token_hash
    )
    Invitation.objects.filter(pk=failed.pk).update(send_error="No provider available for send_email")
    html = client.get("/settings/").content.decode()
    assert "demo provider" in html and "not really delivered" in html
    assert "not sent" in html and "No provider available for send_email" in html


@pytest.mark.parametrize("role", [Role.MARKETER, Role.REVIEWER, Role.VIEWER])
def test_non_admins_cannot_invite_on_the_dashboard(client_for, role):
    client = client_for(role)
    assert (
        client.post("/settings/", {"action": "invite", "email": "a@example.com", "role": "admin"}).status_code
        == 403
    )
    assert not Invitation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_accepts_make_one_member(workspace):
    inv = invitation_create(workspace=workspace, email="race@example.com", role=Role.VIEWER, by=None)
    token = token_for(inv)
    users = [UserFactory(), UserFactory()]
    start = threading.Barrier(2)
    outcomes = []

    def accept(user):
        start.wait(5)
        try:
            invitation_accept(token=token, user=user)
            outcomes.append("joined")
        except (InvitationInvalid, OperationalError) as exc:  # SQLite may refuse the loser's write outright
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert outcomes.count("joined") == 1
    assert Membership.objects.filter(workspace=workspace, user__in=users).count() == 1
    assert AuditEvent.objects.filter(verb="invitation.accepted").count() == 1
