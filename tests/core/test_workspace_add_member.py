"""`manage.py workspace_add_member`: the operators' direct door, audited as the operator."""

from __future__ import annotations

import getpass

import pytest
from django.core.management import CommandError, call_command

from aicmo.models import AuditEvent, Membership, Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _run(**options):
    call_command("workspace_add_member", *[f"--{k}={v}" for k, v in options.items()])


def test_adds_by_slug_and_email_then_changes_role_by_id_and_username(workspace):
    user = UserFactory(username="nora", email="nora@example.com")
    _run(workspace="acme", user="NORA@example.com", role="reviewer")
    assert Membership.objects.get(workspace=workspace, user=user).role == Role.REVIEWER
    added = AuditEvent.objects.get(verb="member.added")
    assert added.actor is None and added.actor_label == f"operator:{getpass.getuser()}"
    assert added.changes == {"user": "nora", "role": "reviewer", "via": "command"}

    _run(workspace=str(workspace.pk), user="nora", role="admin")
    assert Membership.objects.get(workspace=workspace, user=user).role == Role.ADMIN
    changed = AuditEvent.objects.get(verb="member.role_changed")
    assert changed.changes == {"user": "nora", "from": "reviewer", "to": "admin"}
    assert changed.actor_label.startswith("operator:")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workspace": "nope", "user": "nora", "role": "viewer"}, "No workspace"),
        ({"workspace": "acme", "user": "ghost", "role": "viewer"}, "No active user"),
        ({"workspace": "acme", "user": "twin@example.com", "role": "viewer"}, "Several active users"),
    ],
)
def test_unknown_or_ambiguous_names_are_errors(workspace, options, message):
    UserFactory(username="nora")
    UserFactory(username="t1", email="twin@example.com")
    UserFactory(username="t2", email="TWIN@example.com")
    with pytest.raises(CommandError, match=message):
        _run(**options)
    assert not Membership.objects.exists()


def test_bad_role_is_refused(workspace):
    UserFactory(username="nora")
    with pytest.raises(CommandError):
        _run(workspace="acme", user="nora", role="emperor")


def test_last_admin_is_kept(workspace):
    only = MembershipFactory(workspace=workspace, user=UserFactory(username="solo"), role=Role.ADMIN)
    with pytest.raises(CommandError, match="at least one admin"):
        _run(workspace="acme", user="solo", role="viewer")
    only.refresh_from_db()
    assert only.role == Role.ADMIN
