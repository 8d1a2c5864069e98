"""Operators add a member directly (people otherwise join by invitation): audited as the operator."""

from __future__ import annotations

import getpass

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from aicmo.models import Role, Workspace
from aicmo.tenancy import workspace_lookup
from aicmo.workspaces import LastAdminError, membership_add, membership_set


class Command(BaseCommand):
    help = (
        "Add a user to a workspace with a role, or change their role if they are already a member. "
        "For operators with shell access; admins in the product invite people instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="workspace slug or id")
        parser.add_argument("--user", required=True, help="username or email address")
        parser.add_argument("--role", required=True, choices=Role.values)

    def handle(self, *args, workspace, user, role, **options):
        ws = Workspace.objects.filter(**workspace_lookup(workspace.strip())).first()
        if ws is None:
            raise CommandError(f"No workspace with slug or id {workspace!r}.")
        value = user.strip()
        users = get_user_model().objects.filter(is_active=True)
        found = list(users.filter(username=value)[:1]) or list(users.filter(email__iexact=value)[:2])
        if len(found) != 1:
            what = "Several active users have" if found else "No active user has"
            raise CommandError(f"{what} the username or email {value!r}.")
        label = f"operator:{getpass.getuser()}"
        membership, created = membership_add(
            workspace=ws, user=found[0], role=role, by=None, actor_label=label, via="command"
        )
        if created:
            self.stdout.write(f"{found[0].get_username()} joined {ws.slug} as {role}.")
            return
        old = membership.role
        try:
            membership_set(membership=membership, role=role, by=None, actor_label=label)
        except LastAdminError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{found[0].get_username()} was already a member of {ws.slug}; role {old} -> {role}."
        )
