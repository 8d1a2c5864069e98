"""API base. Names are loaded lazily: DRF imports `aicmo.api.pagination` while building its own
generic views, so importing the viewset module eagerly here would be circular."""

from importlib import import_module

_EXPORTS = {
    "ID_SCHEMA": "base",
    "MAX_ID": "base",
    "id_parameter": "base",
    "WorkspaceGenericViewSet": "base",
    "WorkspaceIdsField": "base",
    "WorkspaceReadOnlyViewSet": "base",
    "WorkspaceRelatedField": "base",
    "WorkspaceScopedMixin": "base",
    "WorkspaceViewSet": "base",
    "error_body": "errors",
    "error_response": "errors",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
