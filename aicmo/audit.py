"""Audit log writes. Services call `audit_record` for approvals, sends, imports, deletions, credential and
role changes; nothing else writes AuditEvent rows. Every verb has a sentence in `aicmo.activity.PHRASES`;
`audit_record` refuses a verb without one (ValueError), so a new action cannot reach the feed as code."""

from __future__ import annotations

from typing import Any

from django.db import models

from .activity import is_known
from .models import AuditEvent, Workspace


def _label(actor) -> str:
    if actor is None:
        return "system"
    return getattr(actor, "get_username", lambda: str(actor))()


def _target_label(target) -> str:
    """How the feed names the object: its ``audit_label`` when the model has one, else ``str()``."""
    if target is None:
        return ""
    return str(getattr(target, "audit_label", None) or target)


def audit_record(
    *,
    workspace: Workspace,
    actor,
    verb: str,
    target: models.Model | None = None,
    changes: dict[str, Any] | None = None,
    actor_label: str | None = None,
) -> AuditEvent:
    if not is_known(verb):
        raise ValueError(f"Audit verb {verb!r} has no phrase: add it to aicmo.activity.PHRASES.")
    user = actor if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None) else None
    return AuditEvent.objects.create(
        workspace=workspace,
        actor=user,
        actor_label=(actor_label or _label(actor))[:150],
        verb=verb,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=_target_label(target)[:255],
        changes=changes or {},
    )
