"""Workspace and membership services (role changes are audited)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils.text import slugify

from .audit import audit_record
from .models import Membership, Role, Workspace


def named_rows_ensure(model, *, workspace: Workspace, names: Iterable[str]) -> list:
    """The rows of a workspace-owned `model` unique on (workspace, name) for `names`, creating the missing
    ones (tags in crm and media). Names are trimmed and cut to the field's length; blanks are dropped.
    Safe under concurrency: a row created meanwhile by someone else is read back, not duplicated."""
    max_length = model._meta.get_field("name").max_length
    wanted = sorted({n.strip()[:max_length] for n in names if n and n.strip()})
    if not wanted:
        return []
    rows = model.objects.for_workspace(workspace).filter(name__in=wanted)
    existing = {row.name: row for row in rows}
    missing = [model(workspace=workspace, name=n) for n in wanted if n not in existing]
    if missing:
        model.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {row.name: row for row in rows.all()}
    return list(existing.values())


class LastAdminError(ValueError):
    """A workspace must keep at least one admin."""


@transaction.atomic
def workspace_create(*, name: str, slug: str | None = None, owner=None) -> Workspace:
    ws = Workspace.objects.create(name=name, slug=slug or slugify(name)[:60])
    if owner is not None:
        Membership.objects.create(workspace=ws, user=owner, role=Role.ADMIN)
        audit_record(workspace=ws, actor=owner, verb="workspace.created", target=ws)
    return ws


class NotAMemberError(ValueError):
    """Role changes apply to existing members only; people join through an invitation."""


@transaction.atomic
def membership_add(*, workspace: Workspace, user, role: str, by, actor_label: str | None = None, via: str):
    """Make `user` a member with `role`; returns (membership, created). Idempotent: an existing member keeps
    their role. Only two doors call this: an accepted invitation and the operators' `workspace_add_member`
    command (`via` names which, in the audit row); nothing lets an admin name an account directly."""
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}")
    membership, created = Membership.objects.get_or_create(
        workspace=workspace, user=user, defaults={"role": role}
    )
    if created:
        audit_record(
            workspace=workspace,
            actor=by,
            actor_label=actor_label,
            verb="member.added",
            target=membership,
            changes={"user": user.get_username(), "role": role, "via": via},
        )
    return membership, created


@transaction.atomic
def membership_set(*, membership: Membership, role: str, by, actor_label: str | None = None) -> Membership:
    """Change an existing member's role (audited); the last admin cannot be demoted (LastAdminError)."""
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}")
    locked = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user", "workspace")
        .filter(pk=membership.pk)
        .first()
    )
    if locked is None:
        raise NotAMemberError("This person is no longer a member of the workspace.")
    old = locked.role
    if old == role:
        return locked
    if old == Role.ADMIN and not _other_admins(locked):
        raise LastAdminError("The workspace must keep at least one admin.")
    locked.role = role
    locked.save(update_fields=["role"])
    audit_record(
        workspace=locked.workspace,
        actor=by,
        actor_label=actor_label,
        verb="member.role_changed",
        target=locked,
        changes={"user": locked.user.get_username(), "from": old, "to": role},
    )
    return locked


def _other_admins(membership: Membership) -> bool:
    return (
        Membership.objects.filter(workspace_id=membership.workspace_id, role=Role.ADMIN)
        .exclude(pk=membership.pk)
        .exists()
    )


@transaction.atomic
def membership_remove(*, membership: Membership, by) -> None:
    if membership.role == Role.ADMIN and not _other_admins(membership):
        raise LastAdminError("The workspace must keep at least one admin.")
    audit_record(
        workspace=membership.workspace,
        actor=by,
        verb="member.removed",
        target=membership,
        changes={"user": membership.user.get_username(), "role": membership.role},
    )
    membership.delete()
