"""The one mechanism that decides which workspace a request acts in, and with which role.

Every user-facing queryset is narrowed with ``scope(queryset, request)``; API viewsets, dashboard views,
admin pages and exports all go through it, so cross-workspace ids simply do not exist for the caller (404).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404

from .models import ApiKey, Membership, Role, Workspace
from .roles import role_allows

SESSION_KEY = "aicmo_workspace_id"
HEADER = "HTTP_X_WORKSPACE"


@dataclass(frozen=True)
class Tenant:
    workspace: Workspace
    role: str
    api_key: ApiKey | None = None

    def allows(self, perm: str) -> bool:
        return role_allows(self.role, perm)


def _requested_workspace(request) -> str | None:
    wanted = request.META.get(HEADER)
    if wanted:
        return wanted
    session = getattr(request, "session", None)
    if session is not None:
        value = session.get(SESSION_KEY)
        return str(value) if value else None
    return None


def workspace_lookup(wanted: str) -> dict:
    """An id (ASCII digits; past 18 they name no row, and int() refuses 4,300+) or else a slug (without NUL,
    which PostgreSQL refuses in a query)."""
    if wanted.isascii() and wanted.isdigit():
        return {"pk": int(wanted) if len(wanted) <= 18 else 0}
    return {"slug": wanted} if "\x00" not in wanted else {"pk": 0}


def resolve_tenant(request, auth=None) -> Tenant | None:
    """Workspace + role for this request: an API key fixes both; a session user picks among memberships."""
    if isinstance(auth, ApiKey):
        return Tenant(workspace=auth.workspace, role=auth.role, api_key=auth)
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    wanted = _requested_workspace(request)
    # Without an explicit choice, the workspace the user joined first (their "home" workspace).
    memberships = (
        Membership.objects.filter(user=user).select_related("workspace").order_by("created_at", "id")
    )
    membership = None
    if wanted:
        ws_filter = workspace_lookup(wanted)
        membership = memberships.filter(workspace__in=Workspace.objects.filter(**ws_filter)).first()
        if membership is None and user.is_superuser:
            ws = Workspace.objects.filter(**ws_filter).first()
            if ws is not None:
                return Tenant(workspace=ws, role=Role.ADMIN)
        if membership is None and request.META.get(HEADER):
            return None  # an explicit header for a foreign workspace never falls back silently
    if membership is None:
        membership = memberships.first()
    if membership is None:
        if user.is_superuser:
            ws = Workspace.objects.order_by("name").first()
            return Tenant(workspace=ws, role=Role.ADMIN) if ws else None
        return None
    role = Role.ADMIN if user.is_superuser else membership.role
    return Tenant(workspace=membership.workspace, role=role)


def bind_tenant(request, auth=None) -> Tenant | None:
    tenant = resolve_tenant(request, auth)
    request.tenant = tenant
    request.workspace = tenant.workspace if tenant else None
    inner = getattr(request, "_request", None)
    if inner is not None:
        inner.tenant = tenant
        inner.workspace = request.workspace
    return tenant


def scope(queryset: QuerySet, request_or_workspace) -> QuerySet:
    """Narrow a queryset of a workspace-owned model to the caller's workspace (none when there is none)."""
    workspace = getattr(request_or_workspace, "workspace", request_or_workspace)
    if workspace is None or not isinstance(workspace, Workspace | int):
        return queryset.none()
    return queryset.filter(workspace=workspace)


# Ids per IN (...) query: well under SQLite's 32,766 bound variables and PostgreSQL's 65,535.
RESOLVE_CHUNK = 10_000
MAX_ID = 2**63 - 1  # bigint primary keys
# How many missing ids an error message names (the count is always given).
MISSING_SHOWN = 20


def resolve_ids(queryset_or_model: QuerySet | type[Model], ids: Iterable[int], workspace) -> list[int]:
    """The given primary keys, deduplicated in the order given, after checking that each names a row of
    ``workspace``. Bulk and nested endpoints resolve body ids through here, so an id of another workspace
    (or of no row) is a 400 naming it instead of being skipped silently.

    Raises django's ``ValidationError`` ("Not found in this workspace: 12, 15.") listing up to
    ``MISSING_SHOWN`` missing ids; the API's exception handler turns it into a 400 error body.
    """
    queryset = (
        queryset_or_model._default_manager.all() if isinstance(queryset_or_model, type) else queryset_or_model
    )
    wanted = list(dict.fromkeys(ids))
    scoped = scope(queryset, workspace)
    found: set[int] = set()
    # Ids no database row can have (0, negative, past bigint) are missing without a query: SQLite cannot
    # even bind an int past 64 bits.
    lookable = [i for i in wanted if 0 < i <= MAX_ID]
    for start in range(0, len(lookable), RESOLVE_CHUNK):
        chunk = lookable[start : start + RESOLVE_CHUNK]
        found.update(scoped.filter(pk__in=chunk).values_list("pk", flat=True))
    missing = [i for i in wanted if i not in found]
    if missing:
        shown = ", ".join(str(i) for i in missing[:MISSING_SHOWN])
        more = f" (and {len(missing) - MISSING_SHOWN} more)" if len(missing) > MISSING_SHOWN else ""
        raise ValidationError(f"Not found in this workspace: {shown}{more}.", code="does_not_exist")
    return wanted


def get_scoped_or_404(queryset: QuerySet, request, **lookup):
    obj = scope(queryset, request).filter(**lookup).first()
    if obj is None:
        raise Http404("Not found.")
    return obj


class WorkspaceMiddleware:
    """Binds the session user's workspace for dashboards and admin. API views rebind after authentication."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = None
        request.workspace = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            bind_tenant(request)
        return self.get_response(request)


def workspace_context(request) -> dict:
    tenant = getattr(request, "tenant", None)
    user = getattr(request, "user", None)
    memberships = []
    if user is not None and user.is_authenticated:
        memberships = list(
            Membership.objects.filter(user=user).select_related("workspace").order_by("workspace__name")
        )
    from .navigation import nav_items

    return {
        "tenant": tenant,
        "current_workspace": tenant.workspace if tenant else None,
        "current_role": tenant.role if tenant else None,
        "my_memberships": memberships,
        "nav_items": nav_items(request),
    }
