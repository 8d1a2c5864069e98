"""Filter backends and the query-parameter contract of API views.

The schema (``aicmo.api.schema.AutoSchema``) and the request check (``WorkspaceScopedMixin``) both read
``query_param_names(view)``, so a list documents exactly the parameters it accepts and answers 400 for any
other (a typo must not silently return every row).
"""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters, serializers

# DRF's own switches, valid on every view and deliberately not part of the documented contract.
ALWAYS_ALLOWED = frozenset({"format"})


class SearchFilter(filters.SearchFilter):
    """DRF's search, offered (and documented) only by views that declare ``search_fields``."""

    def get_schema_operation_parameters(self, view):
        return super().get_schema_operation_parameters(view) if getattr(view, "search_fields", None) else []


def filters_apply(view) -> bool:
    """The view's filter backends and paginator act on this action: lists and ``filtered_actions``."""
    action = getattr(view, "action", None)
    return action == "list" or action in getattr(view, "filtered_actions", ())


def paginates(view) -> bool:
    action = getattr(view, "action", None)
    return getattr(view, "pagination_class", None) is not None and (
        action == "list" or action in getattr(view, "paginated_actions", ())
    )


def query_param_names(view) -> frozenset[str]:
    """Names of the query parameters ``view`` accepts for its current action (filters, search, ordering,
    pagination, and the view's ``query_parameters[action]`` extras: OpenApiParameters or query Serializer
    classes)."""
    names: set[str] = set()
    if filters_apply(view):
        for backend_class in view.filter_backends:
            backend = backend_class()
            if isinstance(backend, DjangoFilterBackend):
                filterset = backend.get_filterset_class(view, view.get_queryset())
                names.update(filterset.base_filters if filterset else ())
            else:
                names.update(p["name"] for p in backend.get_schema_operation_parameters(view))
    if paginates(view):
        names.update(p["name"] for p in view.paginator.get_schema_operation_parameters(view))
    for extra in getattr(view, "query_parameters", {}).get(view.action, ()):
        # an OpenApiParameter, or a Serializer class whose fields are the parameters (as in extend_schema)
        if isinstance(extra, type) and issubclass(extra, serializers.Serializer):
            names.update(extra().fields)
        else:
            names.add(extra.name)
    return frozenset(names | ALWAYS_ALLOWED)
