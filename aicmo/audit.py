"""Audit log writes. Services call `audit_record` for approvals, sends, imports, deletions, credential and
role changes; nothing else writes AuditEvent rows."""

from __future__ import annotations

from typing import Any

from django.db import models

from .models import AuditEvent, Workspace


def _label(actor) -> str:
    if actor is None:
        return "system"
    return getattr(actor, "get_username", lambda: str(actor))()


def audit_record(
    *,
    workspace: Workspace,
    actor,
    verb: str,
    target: models.Model | None = None,
    changes: dict[str, Any] | None = None,
    actor_label: str | None = None,
) -> AuditEvent:
    user = actor if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None) else None
    return AuditEvent.objects.create(
        workspace=workspace,
        actor=user,
        actor_label=(actor_label or _label(actor))[:150],
        verb=verb,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:255] if target is not None else "",
        changes=changes or {},
    )
