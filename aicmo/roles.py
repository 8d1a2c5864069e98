"""What each role may do. Views decide *who* may act by asking `role_allows`; services enforce rules."""

from __future__ import annotations

from .models import Role

READ = "read"
WRITE = "write"
APPROVE = "approve"
MANAGE = "manage"

PERMISSIONS: dict[str, frozenset[str]] = {
    Role.VIEWER: frozenset({READ}),
    Role.MARKETER: frozenset({READ, WRITE}),
    Role.REVIEWER: frozenset({READ, WRITE, APPROVE}),
    Role.ADMIN: frozenset({READ, WRITE, APPROVE, MANAGE}),
}


def role_allows(role: str | None, perm: str) -> bool:
    return bool(role) and perm in PERMISSIONS.get(role, frozenset())
