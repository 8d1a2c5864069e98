"""Media admin: uploads go through `asset_upload` (content check + SHA-256), actions call services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils.html import format_html

from aicmo.admin import WorkspaceAdmin, _roles

from . import services
from .models import MediaAsset, MediaLibrary, Rendition, Suggestion, Tag
from .validation import UploadRejected, inspect_upload


def _role(request, workspace_id: int) -> str | None:
    return "admin" if request.user.is_superuser else _roles(request).get(workspace_id)


@admin.register(MediaLibrary)
class MediaLibraryAdmin(WorkspaceAdmin):
    list_display = ["name", "workspace", "created_at"]
    list_filter = ["workspace"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        if change:
            services.library_update(library=obj, by=request.user, name=obj.name, description=obj.description)
        else:
            created = services.library_create(workspace=obj.workspace, name=obj.name, description=obj.description,
                                              by=request.user)  # fmt: skip
            obj.pk = created.pk


@admin.register(Tag)
class TagAdmin(WorkspaceAdmin):
    list_display = ["name", "workspace"]
    list_filter = ["workspace"]
    search_fields = ["name"]


class RenditionInline(admin.TabularInline):
    model = Rendition
    fields = ["spec", "width", "height", "format", "size_bytes", "created_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


class AssetAddForm(forms.ModelForm):
    upload = forms.FileField(help_text="Checked by content; an exact duplicate opens the existing asset.")

    class Meta:
        model = MediaAsset
        fields = ["workspace", "library", "title", "alt_text", "description", "category"]

    def clean_upload(self):
        upload = self.cleaned_data["upload"]
        try:
            inspect_upload(upload)
        except UploadRejected as exc:
            raise ValidationError(exc.message, code=exc.code) from exc
        return upload

    def clean(self):
        data = super().clean()
        workspace, library = data.get("workspace"), data.get("library")
        if workspace and library and library.workspace_id != workspace.pk:
            raise ValidationError({"library": "Choose a library of the same workspace."})
        return data


class TagActionForm(admin.helpers.ActionForm):
    value = forms.CharField(required=False, label="Tag / library id / note")


@admin.register(MediaAsset)
class MediaAssetAdmin(WorkspaceAdmin):
    list_display = ["thumb", "title", "kind", "status", "library", "size_bytes", "workspace", "created_at"]
    list_filter = ["status", "kind", "workspace", "library"]
    search_fields = ["title", "original_filename", "sha256", "alt_text"]
    list_select_related = ["library", "workspace"]
    readonly_fields = [
        "thumb", "kind", "status", "sha256", "phash", "mime_type", "original_filename", "filename", "sanitized", "width",
        "height", "aspect_ratio", "format", "color_mode", "has_alpha", "size_bytes", "duration_seconds",
        "page_count", "frame_count", "exif_orientation_applied", "review_note", "reviewed_by", "reviewed_at",
        "published_at", "archived_at", "last_used_at", "uploaded_by", "created_at",
    ]  # fmt: skip
    fields = ["workspace", "library", "title", "alt_text", "description", "category", "tags", "focal_x", "focal_y",
              *readonly_fields]  # fmt: skip
    inlines = [RenditionInline]
    action_form = TagActionForm
    actions = ["approve", "reject", "archive", "rebuild_renditions", "add_tag", "move_to_library"]

    @admin.display(description="Preview")
    def thumb(self, obj):
        if obj.pk and obj.is_raster:
            url = reverse("media:rendition-file", args=[obj.pk, "thumbnail"])
            return format_html('<img src="{}" alt="" style="max-width:80px;max-height:80px">', url)
        return obj.get_kind_display() if obj.pk else ""

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = AssetAddForm
            kwargs["fields"] = AssetAddForm.Meta.fields
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return [*AssetAddForm.Meta.fields, "upload"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            data = {k: form.cleaned_data[k] for k in ("title", "alt_text", "description", "category", "focal_x",
                                                      "focal_y")}  # fmt: skip
            tags = [t.name for t in form.cleaned_data.get("tags", [])]
            services.asset_update(asset=MediaAsset.objects.get(pk=obj.pk), by=request.user,
                                  library=form.cleaned_data["library"], tags=tags, **data)  # fmt: skip
            return
        upload = form.cleaned_data["upload"]
        result = services.asset_upload(
            library=form.cleaned_data["library"], file=upload, by=request.user, filename=upload.name,
            title=obj.title, alt_text=obj.alt_text, description=obj.description, category=obj.category,
        )  # fmt: skip
        obj.pk = result.asset.pk
        if result.duplicate:
            messages.warning(
                request, f"This file is already in the workspace as “{result.asset}”; nothing was stored."
            )

    def save_related(self, request, form, formsets, change):
        """Tags are saved by `asset_update` in save_model; renditions are read-only."""

    def _each(self, request, queryset, fn, ok: str):
        done = 0
        for asset in queryset:
            try:
                fn(asset)
                done += 1
            except (ValidationError, PermissionDenied) as exc:
                self.message_user(
                    request, f"{asset}: {'; '.join(getattr(exc, 'messages', [str(exc)]))}", messages.ERROR
                )
        if done:
            self.message_user(request, f"{done} asset(s) {ok}.", messages.SUCCESS)

    @admin.action(description="Approve selected assets (reviewers)")
    def approve(self, request, queryset):
        note = request.POST.get("value", "")
        self._each(request, queryset, lambda a: services.asset_approve(
            asset=a, by=request.user, note=note, role=_role(request, a.workspace_id)), "approved")  # fmt: skip

    @admin.action(description="Reject selected assets (reviewers; note in the field)")
    def reject(self, request, queryset):
        note = request.POST.get("value", "")
        self._each(request, queryset, lambda a: services.asset_reject(
            asset=a, by=request.user, note=note, role=_role(request, a.workspace_id)), "rejected")  # fmt: skip

    @admin.action(description="Archive selected assets")
    def archive(self, request, queryset):
        self._each(request, queryset, lambda a: services.asset_archive(asset=a, by=request.user), "archived")

    @admin.action(description="Rebuild renditions")
    def rebuild_renditions(self, request, queryset):
        self._each(request, queryset.filter(kind__in=["image", "gif"]),
                   lambda a: services.asset_request_renditions(asset=a, by=request.user, force=True), "queued")  # fmt: skip

    @admin.action(description="Add the tag in the field")
    def add_tag(self, request, queryset):
        tag = request.POST.get("value", "").strip()
        if not tag:
            self.message_user(request, "Type a tag in the field first.", messages.ERROR)
            return
        self._each(request, queryset.prefetch_related("tags"), lambda a: services.asset_update(
            asset=a, by=request.user, tags=[*(t.name for t in a.tags.all()), tag]), "tagged")  # fmt: skip

    @admin.action(description="Move to the library id in the field")
    def move_to_library(self, request, queryset):
        value = request.POST.get("value", "").strip()
        for asset in queryset:
            library = MediaLibrary.objects.for_workspace(asset.workspace_id).filter(pk=int(value)).first() \
                if value.isdigit() else None  # fmt: skip
            if library is None:
                self.message_user(request, f"{asset}: no library {value!r} in its workspace.", messages.ERROR)
                continue
            services.asset_update(asset=asset, by=request.user, library=library)


@admin.register(Suggestion)
class SuggestionAdmin(WorkspaceAdmin):
    list_display = ["asset", "code", "message", "status", "saving_bytes", "computed_at"]
    list_filter = ["code", "status", "workspace"]
    readonly_fields = ["asset", "code", "message", "details", "saving_bytes", "status", "computed_at", "resolved_by",
                       "resolved_at"]  # fmt: skip
    fields = readonly_fields
    actions = ["dismiss"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Dismiss selected suggestions")
    def dismiss(self, request, queryset):
        for suggestion in queryset.select_related("asset"):
            services.suggestion_dismiss(suggestion=suggestion, by=request.user)
