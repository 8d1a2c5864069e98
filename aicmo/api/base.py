"""Base API classes: every viewset is workspace-scoped and role-checked by construction."""

from __future__ import annotations

from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.permissions import IsAuthenticated

from aicmo.tenancy import bind_tenant, scope

from .permissions import WorkspaceRolePermission


class WorkspaceScopedMixin:
    """Binds the tenant after authentication and scopes `get_queryset()` to it (other ids → 404)."""

    permission_classes = [IsAuthenticated, WorkspaceRolePermission]

    def initial(self, request, *args, **kwargs):
        self.perform_authentication(request)
        if request.user and request.user.is_authenticated and bind_tenant(request, request.auth) is None:
            raise exceptions.NotFound("No workspace found for this user (check the X-Workspace header).")
        super().initial(request, *args, **kwargs)

    @property
    def workspace(self):
        return getattr(self.request, "workspace", None)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # OpenAPI generation: no caller, no rows
            return super().get_queryset().none()
        return scope(super().get_queryset(), self.request)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["workspace"] = getattr(self.request, "workspace", None)
        return context


class WorkspaceViewSet(WorkspaceScopedMixin, viewsets.ModelViewSet):
    """CRUD over a workspace-owned model. Subclasses call services from perform_create/update/destroy."""

    def perform_create(self, serializer):
        serializer.save(workspace=self.request.workspace)


class WorkspaceReadOnlyViewSet(WorkspaceScopedMixin, viewsets.ReadOnlyModelViewSet):
    pass


class WorkspaceGenericViewSet(WorkspaceScopedMixin, viewsets.GenericViewSet):
    pass


class WorkspaceRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key whose choices are limited to the caller's workspace (foreign ids: "does not exist")."""

    def get_queryset(self):
        workspace = self.context.get("workspace")
        return scope(super().get_queryset(), workspace)


__all__ = [
    "WorkspaceGenericViewSet",
    "WorkspaceReadOnlyViewSet",
    "WorkspaceRelatedField",
    "WorkspaceScopedMixin",
    "WorkspaceViewSet",
    "mixins",
]
