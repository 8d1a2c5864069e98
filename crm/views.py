"""CRM dashboard pages: contact list with filters, contact detail with provenance, segment builder with live
count (HTMX), import wizard (upload → mapping preview → progress → error report)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.generic import TemplateView

from aicmo.models import Job
from aicmo.roles import WRITE
from aicmo.tenancy import get_scoped_or_404
from aicmo.views import WorkspaceView

from . import exporting, importing, services
from .filters import MAX_ID, ContactFilter
from .models import Channel, Contact, ContactList, CustomFieldDefinition, ImportRun, Segment, Tag
from .segments import SegmentRuleError, compile_rules, field_catalog, operator_catalog
from .selectors import contact_detail, contacts_for, lists_for

PAGE_SIZE = 50


def _pk_or_none(value) -> int | None:
    """An id from a query string or form if it is ASCII digits within the database's range."""
    value = str(value or "")
    # len() first: int() refuses strings past 4,300 digits (ValueError); 20 digits always exceed MAX_ID.
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or not 1 <= int(value) <= MAX_ID:
        return None
    return int(value)


def _pk_or_404(value) -> int:
    pk = _pk_or_none(value)
    if pk is None:
        raise Http404("Not found.")
    return pk


def _segment_from_query(request) -> Segment | None:
    value = request.GET.get("segment", "")
    if not value:
        return None
    return get_scoped_or_404(Segment.objects.all(), request, pk=_pk_or_404(value))


class ContactListView(WorkspaceView, TemplateView):
    template_name = "crm/contact_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        qs = contacts_for(self.workspace)
        segment = _segment_from_query(self.request)
        if segment is not None:
            qs = qs.filter(compile_rules(segment.rules, self.workspace))
        filterset = ContactFilter(self.request.GET or None, queryset=qs)
        page = Paginator(filterset.qs, PAGE_SIZE).get_page(self.request.GET.get("page"))
        query = self.request.GET.copy()
        query.pop("page", None)
        ctx.update(
            filterset=filterset,
            page=page,
            segment=segment,
            querystring=query.urlencode(),
            can_write=self.tenant.allows(WRITE),
            lists=lists_for(self.workspace) if self.tenant.allows(WRITE) else [],
            active_list=self._active_list(),
        )
        return ctx

    def _active_list(self) -> ContactList | None:
        """The list the page is filtered by (`?list=`), for its name and the "run the whole list" buttons."""
        pk = _pk_or_none(self.request.GET.get("list"))
        return ContactList.objects.for_workspace(self.workspace).filter(pk=pk).first() if pk else None


class ContactExportView(WorkspaceView):
    def get(self, request):
        qs = Contact.objects.for_workspace(self.workspace)
        segment = _segment_from_query(request)
        if segment is not None:
            qs = qs.filter(compile_rules(segment.rules, self.workspace))
        qs = ContactFilter(request.GET or None, queryset=qs).qs
        keys = list(CustomFieldDefinition.objects.for_workspace(self.workspace).values_list("key", flat=True))
        return exporting.streaming_csv_response(exporting.contact_rows(qs, keys), "contacts.csv")


class ContactDetailView(WorkspaceView, TemplateView):
    template_name = "crm/contact_detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        contact = contact_detail(self.workspace, kwargs["pk"])
        if contact is None:
            raise Http404("Not found.")
        fields = []
        for name in ("first_name", "last_name", "title", "phone", "company"):
            value = getattr(contact, name)
            fields.append(
                {
                    "name": name,
                    "value": value or "",
                    "provenance": contact.provenance.get(name),
                    "typed": name in contact.typed_fields,
                }
            )
        ctx.update(
            contact=contact,
            fields=fields,
            channels=Channel.choices,
            suppressed={s.channel: s for s in contact.suppressions.all()},
            can_write=self.tenant.allows(WRITE),
        )
        return ctx


class ContactSubscriptionView(WorkspaceView):
    """POST: unsubscribe or resubscribe a channel from the contact page."""

    def post(self, request, pk):
        contact = get_scoped_or_404(Contact.objects.all(), request, pk=pk)
        channel = request.POST.get("channel", Channel.EMAIL)
        if channel not in Channel.values:
            channel = Channel.EMAIL
        try:
            if request.POST.get("action") == "resubscribe":
                services.contact_resubscribe(
                    contact=contact,
                    channel=channel,
                    source="dashboard",
                    ip=request.META.get("REMOTE_ADDR"),
                    by=request.user,
                )
            else:
                services.contact_unsubscribe(
                    contact=contact, channel=channel, source="dashboard", ip=request.META.get("REMOTE_ADDR")
                )
        except services.SuppressionError as exc:
            messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("crm:contact", args=[contact.pk]))


class SegmentListView(WorkspaceView, TemplateView):
    template_name = "crm/segment_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["segments"] = Segment.objects.for_workspace(self.workspace).order_by("name")
        ctx["can_write"] = self.tenant.allows(WRITE)
        return ctx


EXAMPLE_RULES = {
    "op": "and",
    "rules": [
        {"field": "lifecycle", "operator": "lifecycle_in", "value": ["enriched", "verified"]},
        {
            "op": "or",
            "rules": [
                {"field": "score", "operator": "gte", "value": 50},
                {"field": "tags", "operator": "has_tag", "value": "customer"},
            ],
        },
        {"field": "suppression", "operator": "not_suppressed", "value": "email"},
    ],
}


class SegmentBuilderView(WorkspaceView, TemplateView):
    """Rules are edited in a visual AND/OR builder (crm/static/crm/segment_builder.js) that writes the JSON
    tree into the ``rules`` textarea; without JS the textarea is edited directly. Every change re-counts
    through HTMX."""

    template_name = "crm/segment_builder.html"

    def _segment(self):
        pk = self.kwargs.get("pk")
        return get_scoped_or_404(Segment.objects.all(), self.request, pk=pk) if pk else None

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        segment = self._segment()
        rules = segment.rules if segment else EXAMPLE_RULES
        catalog = field_catalog(self.workspace)
        ctx.update(
            segment=segment,
            rules_json=json.dumps(rules, indent=2),
            catalog=catalog,
            builder_catalog={
                "fields": catalog,
                "operators": operator_catalog(),
                "tags": list(Tag.objects.for_workspace(self.workspace).values_list("name", flat=True)[:500]),
            },
            can_write=self.tenant.allows(WRITE),
        )
        return ctx

    def post(self, request, pk=None):
        segment = self._segment()
        name = request.POST.get("name", "").strip()
        try:
            rules = json.loads(request.POST.get("rules", ""))
        except json.JSONDecodeError as exc:
            messages.error(request, f"Rules are not valid JSON: {exc}")
            return HttpResponseRedirect(request.path)
        if not name:
            messages.error(request, "Give the segment a name.")
            return HttpResponseRedirect(request.path)
        try:
            segment = services.segment_save(
                workspace=self.workspace,
                name=name,
                rules=rules,
                segment=segment,
                description=request.POST.get("description", ""),
            )
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                messages.error(request, f"{field}: {' '.join(errs)}")
            return HttpResponseRedirect(request.path)
        messages.success(request, f"Segment {segment.name} saved.")
        return HttpResponseRedirect(reverse("crm:segment", args=[segment.pk]))


class SegmentCountView(WorkspaceView):
    """HTMX partial: live count + first contacts, or the field-level errors."""

    post_permission = "read"

    def post(self, request):
        errors, count, preview = {}, None, []
        try:
            rules = json.loads(request.POST.get("rules", ""))
            q = compile_rules(rules, self.workspace)
            qs = contacts_for(self.workspace).filter(q)
            count, preview = qs.count(), list(qs[:10])
        except json.JSONDecodeError as exc:
            errors = {"rules": f"Not valid JSON: {exc}"}
        except SegmentRuleError as exc:
            errors = exc.errors
        return render(
            request, "crm/partials/segment_count.html", {"count": count, "errors": errors, "preview": preview}
        )


class ImportListView(WorkspaceView, TemplateView):
    template_name = "crm/import_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["runs"] = ImportRun.objects.for_workspace(self.workspace).select_related("job")[:50]
        ctx["policies"] = importing.POLICIES
        ctx["can_write"] = self.tenant.allows(WRITE)
        return ctx

    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            messages.error(request, "Choose a CSV or XLSX file.")
            return HttpResponseRedirect(reverse("crm:imports"))
        tags = [t.strip() for t in request.POST.get("tags", "").split(",") if t.strip()]
        try:
            run = importing.import_stage(
                workspace=self.workspace,
                fh=upload,
                name=upload.name,
                policy=request.POST.get("policy", "update"),
                tags=tags,
                source="dashboard-import",
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return HttpResponseRedirect(reverse("crm:imports"))
        return HttpResponseRedirect(reverse("crm:import", args=[run.pk]))


ERRORS_SHOWN = 100  # the rest are in the CSV report


class ImportDetailView(WorkspaceView, TemplateView):
    """Before start: mapping preview with a target per column. After: progress bar and error report."""

    template_name = "crm/import_detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        run = get_scoped_or_404(ImportRun.objects.select_related("job"), self.request, pk=kwargs["pk"])
        ctx["run"] = run
        ctx["can_write"] = self.tenant.allows(WRITE)
        if run.job_id is None:
            with run.file.storage.open(run.file.name, "rb") as fh:
                preview = importing.import_preview(
                    workspace=self.workspace, fh=fh, name=run.file.name, mapping=run.mapping
                )
            custom = [
                f"custom.{k}"
                for k in CustomFieldDefinition.objects.for_workspace(self.workspace).values_list(
                    "key", flat=True
                )
            ]
            ctx["preview"] = preview
            ctx["columns"] = [
                {
                    "header": h,
                    "target": preview["mapping"].get(h, ""),
                    "samples": [r[i] if i < len(r) else "" for r in preview["rows"]],
                }
                for i, h in enumerate(preview["headers"])
            ]
            ctx["targets"] = [*importing.CORE_TARGETS, *custom]
        else:
            ctx["errors"] = run.row_errors.order_by("line", "id")[:ERRORS_SHOWN]
        return ctx

    def post(self, request, pk):
        run = get_scoped_or_404(ImportRun.objects.all(), request, pk=pk)
        headers = importing.import_headers(run)
        mapping = {h: request.POST.get(f"map_{i}", "") for i, h in enumerate(headers)}
        try:
            importing.import_start(run=run, mapping=mapping, by=request.user)
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                messages.error(request, f"{field}: {' '.join(errs)}")
        return HttpResponseRedirect(reverse("crm:import", args=[run.pk]))


class ImportResultView(WorkspaceView, TemplateView):
    """The result card alone: the detail page polls it (HTMX, every second) until the import's job finishes,
    so counts, the error table and the report link appear without a reload."""

    template_name = "crm/partials/import_result.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        run = get_scoped_or_404(ImportRun.objects.select_related("job"), self.request, pk=kwargs["pk"])
        if run.job_id is None:
            raise Http404("The import has not started.")
        ctx["run"] = run
        ctx["errors"] = run.row_errors.order_by("line", "id")[:ERRORS_SHOWN]
        return ctx


class ImportErrorsCsvView(WorkspaceView):
    def get(self, request, pk):
        run = get_scoped_or_404(ImportRun.objects.all(), request, pk=pk)
        return exporting.import_errors_response(run)


# ---------------------------------------------------------------- static lists and contact runs

MAX_SELECTED = 1000  # checkboxes on one page are at most PAGE_SIZE; anything beyond is not a browser
RUN_STARTERS = {"enrichment": services.enrichment_start, "verification": services.verification_start}
RUN_KINDS = ("crm.enrichment", "crm.verification")


def _back(request, default: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


def _selected_contact_ids(request, workspace) -> list[int]:
    """The ticked contacts: every id must be a contact of this workspace, else 404 (like any other id)."""
    values = request.POST.getlist("contact")
    if len(values) > MAX_SELECTED:
        raise Http404("Not found.")
    ids = {_pk_or_404(v) for v in values}
    found = set(Contact.objects.for_workspace(workspace).filter(pk__in=ids).values_list("pk", flat=True))
    if found != ids:
        raise Http404("Not found.")
    return sorted(ids)


class ListIndexView(WorkspaceView, TemplateView):
    """Static lists with their sizes; POST creates one."""

    template_name = "crm/list_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["lists"] = lists_for(self.workspace)
        ctx["can_write"] = self.tenant.allows(WRITE)
        return ctx

    def post(self, request):
        try:
            contact_list = services.list_create(
                workspace=self.workspace,
                name=request.POST.get("name", ""),
                description=request.POST.get("description", ""),
                by=request.user,
            )
        except ValidationError as exc:
            for errs in exc.message_dict.values():
                messages.error(request, " ".join(errs))
        else:
            messages.success(request, f"List {contact_list.name} created.")
        return HttpResponseRedirect(reverse("crm:lists"))


class ListMembersView(WorkspaceView):
    """POST from the contact list page: add the ticked contacts to a list, or remove them from it."""

    def post(self, request):
        contact_list = get_scoped_or_404(
            ContactList.objects.all(), request, pk=_pk_or_404(request.POST.get("list"))
        )
        ids = _selected_contact_ids(request, self.workspace)
        back = _back(request, reverse("crm:index"))
        if not ids:
            messages.error(request, "Tick at least one contact.")
        elif request.POST.get("action") == "remove":
            removed = services.list_remove_contacts(contact_list=contact_list, contact_ids=ids)
            messages.success(request, f"Removed {removed} from {contact_list.name}.")
        else:
            added = services.list_add_contacts(contact_list=contact_list, contact_ids=ids)
            messages.success(
                request, f"Added {added} to {contact_list.name} ({len(ids) - added} already there)."
            )
        return HttpResponseRedirect(back)


class RunStartView(WorkspaceView):
    """POST: start an enrichment or verification run for the ticked contacts, a list or a segment."""

    def post(self, request):
        back = _back(request, reverse("crm:index"))
        starter = RUN_STARTERS.get(request.POST.get("kind", ""))
        if starter is None:
            messages.error(request, "Choose enrichment or verification.")
            return HttpResponseRedirect(back)
        list_id = segment_id = contact_ids = None
        if request.POST.get("list"):
            list_id = get_scoped_or_404(
                ContactList.objects.all(), request, pk=_pk_or_404(request.POST["list"])
            ).pk
        elif request.POST.get("segment"):
            segment_id = get_scoped_or_404(
                Segment.objects.all(), request, pk=_pk_or_404(request.POST["segment"])
            ).pk
        else:
            contact_ids = _selected_contact_ids(request, self.workspace)
            if not contact_ids:
                messages.error(request, "Tick at least one contact, or run a whole list or segment.")
                return HttpResponseRedirect(back)
        try:
            job = starter(
                workspace=self.workspace,
                contact_ids=contact_ids,
                list_id=list_id,
                segment_id=segment_id,
                by=request.user,
            )
        except SegmentRuleError as exc:
            messages.error(request, f"The segment's rules no longer compile: {exc.errors}")
            return HttpResponseRedirect(back)
        except services.RunTooLarge as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(back)
        return HttpResponseRedirect(reverse("crm:run", args=[job.pk]))


class RunListView(WorkspaceView, TemplateView):
    template_name = "crm/run_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["runs"] = (
            Job.objects.for_workspace(self.workspace).filter(kind__in=RUN_KINDS).order_by("-pk")[:20]
        )
        return ctx


class RunDetailView(WorkspaceView, TemplateView):
    """One enrichment/verification run: the live progress bar and the per-contact errors."""

    template_name = "crm/run_detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        job = get_scoped_or_404(Job.objects.filter(kind__in=RUN_KINDS), self.request, pk=kwargs["pk"])
        ctx.update(job=job, errors=job.errors.all()[:100])
        return ctx
