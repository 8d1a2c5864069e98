"""CRM admin: scoped by WorkspaceAdmin; every action calls a crm service."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError

from aicmo.admin import WorkspaceAdmin
from aicmo.models import Workspace

from . import exporting, importing, services
from .models import (
    Company,
    ConsentEvent,
    Contact,
    ContactList,
    CustomFieldDefinition,
    EnrichmentConflict,
    EnrichmentRecord,
    ImportRowError,
    ImportRun,
    Segment,
    Suppression,
    Tag,
)
from .normalize import InvalidEmail, normalize_email


class ContactActionForm(ActionForm):
    tag = forms.CharField(required=False, help_text="Tag name for “Tag selected contacts”")
    contact_list = forms.IntegerField(required=False, label="List id", help_text="For “Add to list”")


class EnrichmentRecordInline(admin.TabularInline):
    model = EnrichmentRecord
    fields = ["provider", "fetched_at", "matched", "fields", "credits_used", "demo"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


class ConsentInline(admin.TabularInline):
    model = ConsentEvent
    fields = ["kind", "granted", "source", "ip", "at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


class SuppressionInline(admin.TabularInline):
    model = Suppression
    fields = ["channel", "reason", "source", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


def _workspace_groups(queryset):
    groups: dict[int, list[int]] = {}
    for pk, ws in queryset.values_list("pk", "workspace_id"):
        groups.setdefault(ws, []).append(pk)
    return groups


class ContactAdminForm(forms.ModelForm):
    """Email is a plain form field checked by the shared normalizer and written by the contact services: the
    model's EmailField validator (Django's regex) would refuse internationalized addresses."""

    email = forms.CharField(max_length=1000, strip=False)

    class Meta:
        model = Contact
        exclude = ["email"]  # noqa: DJ006 - every other field as the admin shows it; email is declared above

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial.setdefault("email", self.instance.email)

    def clean_email(self):
        try:
            return normalize_email(self.cleaned_data["email"])
        except InvalidEmail as exc:
            raise ValidationError(str(exc)) from None


@admin.register(Contact)
class ContactAdmin(WorkspaceAdmin):
    form = ContactAdminForm
    list_display = [
        "email",
        "first_name",
        "last_name",
        "company",
        "lifecycle",
        "verification",
        "engagement_score",
        "workspace",
        "created_at",
    ]
    list_filter = ["lifecycle", "verification", "engagement_tier", "source", "workspace"]
    search_fields = ["email", "first_name", "last_name", "company__name", "company__domain"]
    autocomplete_fields = ["company", "tags"]
    list_select_related = ["company", "workspace"]
    readonly_fields = [
        "lifecycle",
        "verification",
        "verified_at",
        "typed_fields",
        "provenance",
        "enriched_at",
        "erased_at",
        "created_at",
        "updated_at",
        "last_engaged_at",
        "engagement_score",
        "engagement_tier",
    ]
    inlines = [SuppressionInline, ConsentInline, EnrichmentRecordInline]
    action_form = ContactActionForm
    actions = ["enrich", "verify", "tag", "add_to_list", "export_csv", "merge"]

    def save_model(self, request, obj, form, change):
        data = {
            f: form.cleaned_data.get(f)
            for f in ("email", "first_name", "last_name", "title", "phone", "source", "custom")
            if f in form.cleaned_data
        }
        if form.cleaned_data.get("company"):
            data["company"] = form.cleaned_data["company"]
        try:
            if change:
                services.contact_update(contact=obj, data=data, by=request.user)
            else:
                created = services.contact_create(workspace=obj.workspace, data=data, by=request.user)
                obj.pk = created.pk
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))

    def delete_model(self, request, obj):
        services.contact_delete(contact=obj, by=request.user)

    def _start_runs(self, request, queryset, start, noun: str) -> None:
        for ws_id, ids in _workspace_groups(queryset).items():
            try:
                job = start(workspace=Workspace.objects.get(pk=ws_id), contact_ids=ids, by=request.user)
            except services.RunTooLarge as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(request, f"{noun} job #{job.pk} started for {job.total} contacts.")

    @admin.action(description="Enrich selected contacts")
    def enrich(self, request, queryset):
        self._start_runs(request, queryset, services.enrichment_start, "Enrichment")

    @admin.action(description="Verify selected emails")
    def verify(self, request, queryset):
        self._start_runs(request, queryset, services.verification_start, "Verification")

    @admin.action(description="Tag selected contacts")
    def tag(self, request, queryset):
        name = request.POST.get("tag", "").strip()
        if not name:
            self.message_user(request, "Type a tag name first.", messages.WARNING)
            return
        for ws_id, ids in _workspace_groups(queryset).items():
            ws = Workspace.objects.get(pk=ws_id)
            services.contacts_tag(workspace=ws, contact_ids=ids, names=[name])
        self.message_user(request, f"Tagged {queryset.count()} contacts with {name!r}.")

    @admin.action(description="Add selected contacts to list")
    def add_to_list(self, request, queryset):
        list_id = request.POST.get("contact_list", "")
        target = ContactList.objects.filter(pk=int(list_id)).first() if list_id.isdigit() else None
        if target is None or not self.has_change_permission(request, target):
            self.message_user(request, "Give the id of one of your lists.", messages.WARNING)
            return
        added = services.list_add_contacts(
            contact_list=target,
            contact_ids=list(queryset.filter(workspace_id=target.workspace_id).values_list("pk", flat=True)),
        )
        self.message_user(request, f"Added {added} contacts to {target}.")

    @admin.action(description="Export selected contacts (CSV)")
    def export_csv(self, request, queryset):
        return exporting.streaming_csv_response(exporting.contact_rows(queryset), "contacts.csv")

    @admin.action(description="Merge two selected contacts (newer into older)")
    def merge(self, request, queryset):
        pair = list(queryset.order_by("created_at", "pk")[:3])
        if len(pair) != 2:
            self.message_user(request, "Select exactly two contacts to merge.", messages.WARNING)
            return
        try:
            merged = services.contact_merge(primary=pair[0], duplicate=pair[1], by=request.user)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return
        self.message_user(request, f"Merged into {merged.email}.")


@admin.register(Company)
class CompanyAdmin(WorkspaceAdmin):
    list_display = ["name", "domain", "workspace", "created_at"]
    search_fields = ["name", "domain"]
    list_filter = ["workspace"]


@admin.register(Tag)
class TagAdmin(WorkspaceAdmin):
    list_display = ["name", "workspace"]
    search_fields = ["name"]
    list_filter = ["workspace"]


@admin.register(ContactList)
class ContactListAdmin(WorkspaceAdmin):
    list_display = ["name", "workspace", "created_at"]
    search_fields = ["name"]
    list_filter = ["workspace"]
    exclude = ["contacts"]


@admin.register(Segment)
class SegmentAdmin(WorkspaceAdmin):
    list_display = ["name", "workspace", "updated_at"]
    search_fields = ["name"]
    list_filter = ["workspace"]

    def save_model(self, request, obj, form, change):
        try:
            services.segment_save(
                workspace=obj.workspace,
                name=obj.name,
                rules=obj.rules,
                description=obj.description,
                segment=obj,
            )
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))


@admin.register(CustomFieldDefinition)
class CustomFieldAdmin(WorkspaceAdmin):
    list_display = ["key", "label", "type", "workspace"]
    list_filter = ["type", "workspace"]


@admin.register(EnrichmentConflict)
class EnrichmentConflictAdmin(WorkspaceAdmin):
    list_display = ["contact", "field", "current_value", "offered_value", "resolution", "created_at"]
    list_filter = ["resolution", "field", "workspace"]
    readonly_fields = ["contact", "record", "field", "current_value", "offered_value", "resolution"]


class ImportRowErrorInline(admin.TabularInline):
    model = ImportRowError
    fields = ["line", "column", "reason", "value"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


class ImportRunForm(forms.ModelForm):
    class Meta:
        model = ImportRun
        fields = ["workspace", "file", "policy", "tags"]

    policy = forms.ChoiceField(choices=[(p, p) for p in importing.POLICIES])
    tags = forms.CharField(required=False, help_text="Comma-separated tags for every imported contact")

    def clean(self):
        cleaned = super().clean()
        upload, workspace = cleaned.get("file"), cleaned.get("workspace")
        if upload and workspace:
            preview = importing.import_preview(workspace=workspace, fh=upload, name=upload.name)
            upload.seek(0)
            if preview["mapping_errors"]:
                raise ValidationError({"file": [f"{k}: {v}" for k, v in preview["mapping_errors"].items()]})
        return cleaned


@admin.register(ImportRun)
class ImportRunAdmin(WorkspaceAdmin):
    """The admin entry point for imports: the add form uploads a file and runs the same import service."""

    form = ImportRunForm
    list_display = [
        "id",
        "original_name",
        "status",
        "created",
        "updated",
        "skipped",
        "failed",
        "workspace",
        "created_at",
    ]
    list_filter = ["status", "workspace"]
    inlines = [ImportRowErrorInline]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "workspace",
            "original_name",
            "file_format",
            "mapping",
            "policy",
            "tags",
            "status",
            "checkpoint_line",
            "created",
            "updated",
            "skipped",
            "failed",
            "job",
            "finished_at",
        ]

    def get_fields(self, request, obj=None):
        return (
            ["workspace", "file", "policy", "tags"] if obj is None else self.get_readonly_fields(request, obj)
        )

    def save_model(self, request, obj, form, change):
        if change:
            return
        upload = form.cleaned_data["file"]
        tags = [t.strip() for t in form.cleaned_data.get("tags", "").split(",") if t.strip()]
        run = importing.import_create(
            workspace=form.cleaned_data["workspace"],
            fh=upload,
            name=upload.name,
            policy=form.cleaned_data["policy"],
            tags=tags,
            by=request.user,
            source="admin-import",
        )
        obj.pk = run.pk

    def save_related(self, request, form, formsets, change):
        """Row errors are written by the import, not by the form."""
