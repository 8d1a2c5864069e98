"""Base API classes: every viewset is workspace-scoped and role-checked by construction."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.fields import get_error_detail
from rest_framework.permissions import IsAuthenticated

from aicmo.tenancy import bind_tenant, resolve_ids, scope

from .bodies import body_type_errors
from .filters import ID_SCHEMA, MAX_ID, query_param_names, query_value_errors
from .permissions import WorkspaceRolePermission


class WorkspaceScopedMixin:
    """Binds the tenant after authentication and scopes `get_queryset()` to it (other ids → 404)."""

    permission_classes = [IsAuthenticated, WorkspaceRolePermission]
    # Documented query parameters beyond filters/search/ordering/pagination, per action:
    # {"list": [OpenApiParameter("kind", str), ...]}. The schema shows them; any other name is a 400.
    query_parameters: dict = {}
    # Actions besides "list" that run filter_queryset / paginate_queryset (e.g. a CSV export, a sub-list).
    filtered_actions: tuple[str, ...] = ()
    paginated_actions: tuple[str, ...] = ()

    def initial(self, request, *args, **kwargs):
        self.perform_authentication(request)
        if request.user and request.user.is_authenticated and bind_tenant(request, request.auth) is None:
            raise exceptions.NotFound("No workspace found for this user (check the X-Workspace header).")
        super().initial(request, *args, **kwargs)
        self.check_query_params(request)
        self.check_body_types(request)

    def check_query_params(self, request) -> None:
        """400 naming every query parameter this action does not know, so a typo is never "all rows", and
        every value the schema's choices or type refuse (``aicmo.api.filters.query_value_errors``)."""
        if getattr(self, "action", None) is None:  # a method the view does not serve: DRF answers 405
            return
        unknown = sorted(set(request.query_params) - query_param_names(self))
        if unknown:
            raise exceptions.ValidationError(
                {name: ["Unknown query parameter for this operation."] for name in unknown}
            )
        errors = query_value_errors(request)
        if errors:
            raise exceptions.ValidationError(errors)

    def perform_content_negotiation(self, request, force=False):
        """DRF answers 404 for a ``?format=`` it has no renderer for; where the operation documents
        ``format`` (CSV downloads: ``csv``/``json``), the value is a query value like any other: a 400."""
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            errors = query_value_errors(request) if getattr(self, "action", None) else {}
            if "format" in errors:
                raise exceptions.ValidationError({"format": errors["format"]}) from None
            raise

    def check_body_types(self, request) -> None:
        """400 naming every JSON body value whose type the operation's schema does not allow (``"12"`` for
        an integer, ``1`` for a boolean): DRF's fields would coerce it (aicmo.api.bodies)."""
        if getattr(self, "action", None) is None:
            return
        errors = body_type_errors(request)
        if errors:
            raise exceptions.ValidationError(errors)

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


def id_parameter(name: str, description: str) -> OpenApiParameter:
    """An optional id query parameter, documented with the range every id check enforces (1 … MAX_ID):
    a schema-valid value is never refused for its shape."""
    return OpenApiParameter(name, ID_SCHEMA, description=description)


class WorkspaceIdsField(serializers.ListField):
    """A list of ids of ``queryset``'s model, each of which must name a row of the caller's workspace.

    Validates to the ids deduplicated in the order given (``aicmo.tenancy.resolve_ids``); any foreign or
    missing id makes the field invalid with a message naming it, so nothing is half-applied."""

    def __init__(self, *, queryset, **kwargs):
        self.queryset = queryset
        kwargs.setdefault("child", serializers.IntegerField(min_value=1, max_value=MAX_ID))
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        ids = super().to_internal_value(data)
        try:
            return resolve_ids(self.queryset, ids, self.context.get("workspace"))
        except DjangoValidationError as exc:
            raise serializers.ValidationError(get_error_detail(exc)) from None  # keeps does_not_exist: a 404


__all__ = [
    "ID_SCHEMA",
    "MAX_ID",
    "id_parameter",
    "WorkspaceIdsField",
    "WorkspaceGenericViewSet",
    "WorkspaceReadOnlyViewSet",
    "WorkspaceRelatedField",
    "WorkspaceScopedMixin",
    "WorkspaceViewSet",
    "mixins",
]
