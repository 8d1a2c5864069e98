from rest_framework import permissions

from aicmo.roles import READ, WRITE


class WorkspaceRolePermission(permissions.BasePermission):
    """Requires a workspace for the caller and a role allowing the view's action.

    Safe methods need `read`, others `write`; a view sets it per action with
    `action_permissions = {"approve": APPROVE, "evaluate": READ}` (a POST that only reads) or for the
    whole view with `required_permission`.
    """

    message = "Your role in this workspace does not allow this action."

    def has_permission(self, request, view) -> bool:
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            return False
        perm = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if perm is None:
            perm = getattr(view, "required_permission", None)
        if perm is None:
            perm = READ if request.method in permissions.SAFE_METHODS else WRITE
        return tenant.allows(perm)
