"""Admin base: non-superusers see only rows of workspaces where they are members (admins of the workspace
get write access, others read-only), and the workspace field is limited to those workspaces."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import Http404

from . import jobs
from .models import ApiKey, AuditEvent, Invitation, Job, JobError, Membership, Role, Workspace
from .roles import role_allows


def _roles(request) -> dict[int, str]:
    if not request.user.is_authenticated:
        return {}  # the admin login page asks before anyone has logged in
    cache = getattr(request, "_aicmo_admin_roles", None)
    if cache is None:
        cache = dict(Membership.objects.filter(user=request.user).values_list("workspace_id", "role"))
        request._aicmo_admin_roles = cache
    return cache


class WorkspaceAdmin(admin.ModelAdmin):
    """Scopes the changelist, forms and FK choices to the user's workspaces. Superusers see everything.

    `write_permission` is the role permission needed to add/change/delete (default "write").
    """

    write_permission = "write"
    workspace_field = "workspace"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.workspace_field}__in": list(_roles(request))})

    def _ensure_in_scope(self, request, object_id) -> None:
        """Objects of other workspaces do not exist for this user: 404, not Django's redirect."""
        if object_id is not None:
            try:
                found = self.get_queryset(request).filter(pk=object_id).exists()
            except (ValueError, ValidationError):
                found = False
            if not found:
                raise Http404("Not found.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._ensure_in_scope(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._ensure_in_scope(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._ensure_in_scope(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def _writable_workspaces(self, request) -> list[int]:
        return [ws for ws, role in _roles(request).items() if role_allows(role, self.write_permission)]

    def has_module_permission(self, request):
        return request.user.is_active and (request.user.is_superuser or bool(_roles(request)))

    def has_view_permission(self, request, obj=None):
        if request.user.is_superuser:
            return True
        return bool(_roles(request)) and (
            obj is None or getattr(obj, f"{self.workspace_field}_id") in _roles(request)
        )

    def has_add_permission(self, request):
        return request.user.is_superuser or bool(self._writable_workspaces(request))

    def has_change_permission(self, request, obj=None):
        if request.user.is_superuser:
            return True
        writable = self._writable_workspaces(request)
        return bool(writable) and (obj is None or getattr(obj, f"{self.workspace_field}_id") in writable)

    has_delete_permission = has_change_permission

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if request.user.is_superuser or field is None:
            return field
        if db_field.name == self.workspace_field:
            field.queryset = field.queryset.filter(pk__in=self._writable_workspaces(request))
        elif hasattr(db_field.related_model, "workspace_id"):
            field.queryset = field.queryset.filter(workspace__in=list(_roles(request)))
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if (
            field is not None
            and not request.user.is_superuser
            and hasattr(db_field.related_model, "workspace_id")
        ):
            field.queryset = field.queryset.filter(workspace__in=list(_roles(request)))
        return field


class ManageOnlyAdmin(WorkspaceAdmin):
    write_permission = "manage"


@admin.register(Workspace)
class WorkspaceModelAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(pk__in=list(_roles(request)))

    def has_module_permission(self, request):
        return request.user.is_active and (request.user.is_superuser or bool(_roles(request)))

    def has_view_permission(self, request, obj=None):
        return (
            request.user.is_superuser
            or (obj is None and bool(_roles(request)))
            or (obj is not None and obj.pk in _roles(request))
        )

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser or (obj is not None and _roles(request).get(obj.pk) == Role.ADMIN)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(ManageOnlyAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role", "workspace"]
    search_fields = ["user__username", "user__email"]
    autocomplete_fields = ["user"]

    def has_add_permission(self, request):
        # Workspace admins invite people (settings page / API); only operators add members directly.
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        # The person and the workspace of a membership never change: editing them enrolled anyone anywhere.
        return ["user", "workspace", "created_at"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        from .workspaces import membership_add, membership_set

        if change:
            membership_set(membership=obj, role=obj.role, by=request.user)
        else:  # superusers only: operators add people directly, as the workspace_add_member command does
            obj.pk = membership_add(
                workspace=obj.workspace, user=obj.user, role=obj.role, by=request.user, via="admin"
            )[0].pk

    def delete_model(self, request, obj):
        from .workspaces import membership_remove

        membership_remove(membership=obj, by=request.user)


class JobErrorInline(admin.TabularInline):
    model = JobError
    fields = ["item", "message", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0
    show_change_link = False


@admin.register(Job)
class JobAdmin(WorkspaceAdmin):
    list_display = [
        "id",
        "kind",
        "label",
        "status",
        "progress",
        "total",
        "done",
        "failed",
        "workspace",
        "created_at",
    ]
    list_filter = ["status", "kind", "workspace"]
    search_fields = ["label", "kind"]
    readonly_fields = [
        "workspace",
        "kind",
        "label",
        "status",
        "total",
        "done",
        "failed",
        "message",
        "params",
        "result",
        "started_by",
        "created_at",
        "started_at",
        "finished_at",
        "progress",
    ]
    fields = readonly_fields
    inlines = [JobErrorInline]
    actions = ["cancel_jobs"]
    change_form_template = "admin/aicmo/job/change_form.html"

    @admin.display(description="Progress")
    def progress(self, obj):
        return f"{obj.percent} %"

    def has_add_permission(self, request):
        return False

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request, queryset):
        for job in queryset:
            jobs.job_cancel(job=job, by=request.user)


@admin.register(AuditEvent)
class AuditEventAdmin(ManageOnlyAdmin):
    list_display = ["at", "actor_label", "verb", "target_type", "target_repr", "workspace"]
    list_filter = ["verb", "target_type", "workspace"]
    search_fields = ["actor_label", "target_repr", "verb"]
    readonly_fields = [
        "workspace",
        "actor",
        "actor_label",
        "verb",
        "target_type",
        "target_id",
        "target_repr",
        "changes",
        "at",
    ]
    fields = readonly_fields

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        admin_of = [ws for ws, role in _roles(request).items() if role == Role.ADMIN]
        return qs.filter(workspace__in=admin_of)

    def has_view_permission(self, request, obj=None):
        if request.user.is_superuser:
            return True
        admin_of = [ws for ws, role in _roles(request).items() if role == Role.ADMIN]
        return bool(admin_of) and (obj is None or obj.workspace_id in admin_of)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AdminsOnlyAdmin(ManageOnlyAdmin):
    """Rows only workspace admins may even see (API keys, invitations)."""

    def has_view_permission(self, request, obj=None):
        if request.user.is_superuser:
            return True
        writable = self._writable_workspaces(request)
        return bool(writable) and (obj is None or obj.workspace_id in writable)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return (
            qs if request.user.is_superuser else qs.filter(workspace__in=self._writable_workspaces(request))
        )


@admin.register(ApiKey)
class ApiKeyAdmin(AdminsOnlyAdmin):
    list_display = ["name", "prefix", "role", "workspace", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["role", "workspace"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    fields = ["workspace", "name", "role", *readonly_fields]
    actions = ["revoke_keys"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        from django.contrib import messages

        from .apikeys import api_key_create

        created = api_key_create(workspace=obj.workspace, name=obj.name, role=obj.role, by=request.user)
        obj.pk = created.api_key.pk
        messages.warning(request, f"Copy this API key now, it will not be shown again: {created.secret}")

    def has_delete_permission(self, request, obj=None):
        return False  # keys are revoked (kept for the audit trail), never deleted

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request, queryset):
        from .apikeys import api_key_revoke

        for key in queryset:
            api_key_revoke(api_key=key, by=request.user)


@admin.register(Invitation)
class InvitationAdmin(AdminsOnlyAdmin):
    """Read-only here (invite from the settings page or the API); resend and revoke call the same services."""

    list_display = [
        "email",
        "role",
        "workspace",
        "status",
        "invited_by",
        "created_at",
        "expires_at",
        "sent_at",
    ]
    list_filter = ["role", "workspace"]
    search_fields = ["email"]
    fields = [
        *(
            f.name
            for f in Invitation._meta.fields
            if f.name not in ("id", "nonce", "token_hash", "sent_token_hash")
        ),
        "status",
    ]  # never the link's ingredients
    readonly_fields = fields
    actions = ["resend_invitations", "revoke_invitations"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)  # actions only, no edits

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, never deleted (the audit trail points at the row)

    def _each(self, request, queryset, service, done: str) -> None:
        from django.contrib import messages
        from django.core.exceptions import ValidationError

        for invitation in queryset:
            try:
                service(invitation=invitation, by=request.user)
            except ValidationError as exc:
                messages.error(request, f"{invitation.email}: {' '.join(exc.messages)}")
            else:
                messages.success(request, f"{invitation.email}: {done}.")

    @admin.action(description="Send selected invitations again (new links)")
    def resend_invitations(self, request, queryset):
        from .invitations import invitation_resend

        self._each(request, queryset, invitation_resend, "sent again with a new link")

    @admin.action(description="Revoke selected invitations")
    def revoke_invitations(self, request, queryset):
        from .invitations import invitation_revoke

        self._each(request, queryset, invitation_revoke, "revoked")
