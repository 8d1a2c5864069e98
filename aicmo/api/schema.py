"""OpenAPI generation: API-key authentication, the query parameters each operation accepts, and one shared
set of error responses."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from .filters import filters_apply, paginates


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "aicmo.apikeys.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A workspace API key: `Authorization: Bearer aicmo_…` (or the `X-Api-Key` header).",
        }


class AutoSchema(SpectacularAutoSchema):
    """Documents query parameters by the same rules ``aicmo.api.filters.query_param_names`` enforces."""

    def get_filter_backends(self):
        return list(getattr(self.view, "filter_backends", [])) if filters_apply(self.view) else []

    def _get_pagination_parameters(self):
        if not paginates(self.view):
            return []
        return self.view.paginator.get_schema_operation_parameters(self.view)

    def get_override_parameters(self):
        extras = getattr(self.view, "query_parameters", {}).get(getattr(self.view, "action", None), [])
        return [*super().get_override_parameters(), *extras]
