"""CRM dashboard pages: contact list with filters, contact detail with provenance, segment builder with live
count (HTMX), import wizard (upload → mapping preview → progress → error report)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import capfirst
from django.views.generic import TemplateView

from aicmo.models import Job
from aicmo.roles import WRITE
from aicmo.tenancy import get_scoped_or_404
from aicmo.views import WorkspaceView

from . import exporting, importing, services
from .filters import MAX_ID, ContactFilter
from .forms import ContactForm
from .models import (
    Channel,
    Company,
    Contact,
    ContactList,
    CustomFieldDefinition,
    FieldType,
    ImportRun,
    Segment,
    Tag,
)
from .normalize import normalize_domain
from .segments import (
    SegmentRuleError,
    compile_rules,
    field_catalog,
    operator_catalog,
    saved_segment_q,
    segment_error_messages,
)
from .selectors import (
    companies_for,
    contact_by_email,
    contact_detail,
    contacts_for,
    lists_for,
    tags_with_counts,
)
from .usage import list_dependents, segment_dependents

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


def _matching(request, workspace, params, queryset) -> tuple[Segment | None, ContactFilter]:
    """The contact list's filter (saved segment from ``?segment=`` plus `ContactFilter`) over `queryset`.

    The list page, the CSV export and "all N matching" bulk actions share it, so a bulk action reaches
    exactly the contacts the page counted. A segment whose rules no longer compile matches nobody (with a
    message)."""
    segment = None
    if params.get("segment", ""):
        segment = get_scoped_or_404(Segment.objects.all(), request, pk=_pk_or_404(params["segment"]))
        try:
            queryset = queryset.filter(saved_segment_q(segment))
        except SegmentRuleError as exc:
            messages.error(request, segment_error_text(exc))
            queryset = queryset.none()
    return segment, ContactFilter(params or None, queryset=queryset)


def _field_label(name: str) -> str:
    """A contact field's human label (its model verbose name, capitalised): ``first_name`` -> ``First name``."""
    return capfirst(Contact._meta.get_field(name).verbose_name)


def segment_error_text(exc: SegmentRuleError) -> str:
    """The dashboard/admin wording of a segment that does not compile (the API returns the same dict)."""
    return "The segment's rules do not compile: " + "; ".join(
        f"{k}: {v}" for k, v in segment_error_messages(exc).items()
    )


class ContactListView(WorkspaceView, TemplateView):
    template_name = "crm/contact_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        segment, filterset = _matching(
            self.request, self.workspace, self.request.GET, contacts_for(self.workspace)
        )
        page = Paginator(filterset.qs, PAGE_SIZE).get_page(self.request.GET.get("page"))
        query = self.request.GET.copy()
        query.pop("page", None)
        ctx.update(
            filterset=filterset,
            page=page,
            segment=segment,
            querystring=query.urlencode(),
            can_write=self.tenant.allows(WRITE),
            more_than_page=page.paginator.count > len(page.object_list),
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
            try:
                qs = qs.filter(saved_segment_q(segment))
            except SegmentRuleError as exc:
                messages.error(request, segment_error_text(exc))
                return HttpResponseRedirect(f"{reverse('crm:segment', args=[segment.pk])}")
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
                    "label": _field_label(name),
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


# ---------------------------------------------------------------- contact create / edit / delete / merge

COMPANY_OPTIONS = 500  # the company picker lists this many; any other domain can still be typed


class ContactFormView(WorkspaceView, TemplateView):
    """GET: the contact form (new, or edit with ``pk``). POST: `services.contact_create` / `contact_update`;
    service errors land on the fields they name and the form is shown again (400), nothing written."""

    template_name = "crm/contact_form.html"

    def _contact(self) -> Contact | None:
        pk = self.kwargs.get("pk")
        return (
            get_scoped_or_404(Contact.objects.select_related("company"), self.request, pk=pk) if pk else None
        )

    def _render(self, form, contact, status=200):
        companies = Company.objects.for_workspace(self.workspace).order_by("domain")[:COMPANY_OPTIONS]
        ctx = self.get_context_data(form=form, contact=contact, companies=companies)
        return self.render_to_response(ctx, status=status)

    def get(self, request, pk=None):
        contact = self._contact()
        return self._render(ContactForm(workspace=self.workspace, contact=contact), contact)

    def post(self, request, pk=None):
        contact = self._contact()
        form = ContactForm(request.POST, workspace=self.workspace, contact=contact)
        if form.is_valid():
            try:
                if contact is None:
                    contact = services.contact_create(
                        workspace=self.workspace,
                        data=form.service_data(),
                        by=request.user,
                        source="dashboard",
                    )
                    messages.success(request, f"Contact {contact.email} created.")
                else:
                    contact = services.contact_update(
                        contact=contact, data=form.service_data(), by=request.user
                    )
                    messages.success(request, f"Contact {contact.email} saved.")
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                return HttpResponseRedirect(reverse("crm:contact", args=[contact.pk]))
        return self._render(form, contact, status=400)


def contact_footprint(contact: Contact) -> dict:
    """What a delete or an erasure of `contact` touches, for the confirmation page (counts)."""
    return {
        "tags": contact.tags.count(),
        "lists": contact.list_memberships.count(),
        "enrichment_records": contact.enrichment_records.count(),
        "consent_events": contact.consent_events.count(),
        "transitions": contact.transitions.count(),
    }


class ContactDeleteView(WorkspaceView, TemplateView):
    """GET: a confirmation naming what delete and GDPR erasure each do to this contact. POST ``action``:
    ``delete`` (`services.contact_delete`) or ``erase`` (`services.contact_erase`)."""

    template_name = "crm/contact_delete.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        contact = get_scoped_or_404(Contact.objects.all(), self.request, pk=kwargs["pk"])
        ctx.update(contact=contact, footprint=contact_footprint(contact), can_write=self.tenant.allows(WRITE))
        return ctx

    def post(self, request, pk):
        contact = get_scoped_or_404(Contact.objects.all(), request, pk=pk)
        action = request.POST.get("action")
        if action == "erase":
            email = contact.email
            services.contact_erase(contact=contact, by=request.user)
            messages.success(request, f"{email} erased: personal data removed, the address is blocked.")
            return HttpResponseRedirect(reverse("crm:contact", args=[contact.pk]))
        if action == "delete":
            email = contact.email
            services.contact_delete(contact=contact, by=request.user)
            messages.success(request, f"Contact {email} deleted.")
            return HttpResponseRedirect(reverse("crm:index"))
        messages.error(request, "Choose delete or erase.")
        return HttpResponseRedirect(reverse("crm:contact-delete", args=[contact.pk]))


class ContactMergeView(WorkspaceView, TemplateView):
    """GET ``?other=<email>``: both contacts side by side and what merging does. POST ``other=<id>``: fold
    that duplicate into this contact (`services.contact_merge`); the duplicate is deleted."""

    template_name = "crm/contact_merge.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        contact = get_scoped_or_404(Contact.objects.select_related("company"), self.request, pk=kwargs["pk"])
        wanted = self.request.GET.get("other", "").strip()
        other = contact_by_email(self.workspace, wanted) if wanted else None
        error = ""
        if wanted and other is None:
            error = f"No contact with the email {wanted} in this workspace."
        elif other is not None and other.pk == contact.pk:
            error, other = "That is this contact; give the duplicate's email.", None
        rows = []
        if other is not None:
            for name in (*services.EDITABLE_FIELDS, "company"):
                mine, theirs = getattr(contact, name), getattr(other, name)
                rows.append(
                    {
                        "name": name,
                        "label": _field_label(name),
                        "mine": mine or "",
                        "theirs": theirs or "",
                        "fills": not mine and theirs,
                    }
                )
        ctx.update(
            contact=contact,
            other=other,
            wanted=wanted,
            error=error,
            rows=rows,
            can_write=self.tenant.allows(WRITE),
        )
        return ctx

    def post(self, request, pk):
        contact = get_scoped_or_404(Contact.objects.all(), request, pk=pk)
        other = get_scoped_or_404(Contact.objects.all(), request, pk=_pk_or_404(request.POST.get("other")))
        try:
            merged = services.contact_merge(primary=contact, duplicate=other, by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return HttpResponseRedirect(reverse("crm:contact-merge", args=[contact.pk]))
        messages.success(request, f"{other.email} merged into {merged.email}.")
        return HttpResponseRedirect(reverse("crm:contact", args=[merged.pk]))


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
        if segment is not None:
            try:
                saved_segment_q(segment)
            except SegmentRuleError as exc:
                messages.error(self.request, segment_error_text(exc))
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
            _field_errors(request, exc)
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

MAX_MATCHING = services.MAX_RUN_CONTACTS  # "all N matching": the most one bulk action takes
MAX_SELECTED = 1000  # checkboxes on one page are at most PAGE_SIZE; anything beyond is not a browser
RUN_STARTERS = {"enrichment": services.enrichment_start, "verification": services.verification_start}
RUN_KINDS = ("crm.enrichment", "crm.verification")


def _back(request, default: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


def _selected_contact_ids(request, workspace) -> list[int]:
    """The ticked contacts: every id must be a contact of this workspace, else 404 (like any other id).

    With ``scope=matching`` it is every contact the list page's filter (the posted ``query`` string, the
    page's own query string) matches, not only the visible page; more than `MAX_MATCHING`
    raises `services.RunTooLarge` (the caller says so)."""
    if request.POST.get("scope") == "matching":
        _, filterset = _matching(
            request,
            workspace,
            QueryDict(request.POST.get("query", "")),
            Contact.objects.for_workspace(workspace),
        )
        ids = list(filterset.qs.order_by("pk").values_list("pk", flat=True)[: MAX_MATCHING + 1])
        if len(ids) > MAX_MATCHING:
            raise services.RunTooLarge(
                f"More than {MAX_MATCHING:,} contacts match; narrow the filter or use a list."
            )
        return ids
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
        back = _back(request, reverse("crm:index"))
        try:
            ids = _selected_contact_ids(request, self.workspace)
        except services.RunTooLarge as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(back)
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
            try:
                contact_ids = _selected_contact_ids(request, self.workspace)
            except services.RunTooLarge as exc:
                messages.error(request, str(exc))
                return HttpResponseRedirect(back)
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
            messages.error(request, segment_error_text(exc))
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


# ---------------------------------------------------------------- custom field definitions


def _choices(value: str) -> list[str]:
    return [c.strip() for c in (value or "").split(",") if c.strip()]


def _field_errors(request, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        messages.error(request, " ".join(exc.messages))
        return
    for field, errs in exc.message_dict.items():
        messages.error(request, f"{field}: {' '.join(errs)}")


class CustomFieldIndexView(WorkspaceView, TemplateView):
    """Custom field definitions with the segments using each; POST creates one (services.custom_field_create)."""

    template_name = "crm/field_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["fields"] = CustomFieldDefinition.objects.for_workspace(self.workspace).order_by("key")
        ctx["types"] = FieldType.choices
        ctx["can_write"] = self.tenant.allows(WRITE)
        return ctx

    def post(self, request):
        try:
            field = services.custom_field_create(
                workspace=self.workspace,
                key=request.POST.get("key", "").strip(),
                label=request.POST.get("label", ""),
                type=request.POST.get("type", FieldType.TEXT),
                choices=_choices(request.POST.get("choices", "")),
                by=request.user,
            )
        except ValidationError as exc:
            _field_errors(request, exc)
        else:
            messages.success(request, f"Field {field.key} created.")
        return HttpResponseRedirect(reverse("crm:fields"))


class CustomFieldEditView(WorkspaceView):
    """POST: change (relabel, rename, retype with optional convert) or delete one definition."""

    def post(self, request, pk):
        field = get_scoped_or_404(CustomFieldDefinition.objects.all(), request, pk=pk)
        try:
            if request.POST.get("action") == "delete":
                report = services.custom_field_delete(definition=field, by=request.user)
                broken = ", ".join(report["segments"]) or "none"
                messages.success(
                    request,
                    f"Field {field.key} deleted ({report['values_removed']} values removed; "
                    f"segments marked broken: {broken}).",
                )
            else:
                change = services.custom_field_update(
                    definition=field,
                    key=request.POST.get("key", field.key).strip(),
                    label=request.POST.get("label", field.label),
                    type=request.POST.get("type", field.type),
                    choices=_choices(request.POST.get("choices", ",".join(field.choices or []))),
                    convert=request.POST.get("convert") == "on",
                    by=request.user,
                )
                report = change.as_dict()
                messages.success(request, f"Field {change.field.key} saved: {report}")
        except ValidationError as exc:
            _field_errors(request, exc)
        return HttpResponseRedirect(reverse("crm:fields"))


# ---------------------------------------------------------------- companies and tags


class CompanyIndexView(WorkspaceView, TemplateView):
    """Companies with their contact counts (search ``q`` on name/domain, paged); POST creates one
    (`services.company_create`)."""

    template_name = "crm/company_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        q = self.text_param("q")
        page = Paginator(companies_for(self.workspace, search=q), PAGE_SIZE).get_page(
            self.request.GET.get("page")
        )
        ctx.update(page=page, q=q, can_write=self.tenant.allows(WRITE))
        return ctx

    def post(self, request):
        try:
            company = services.company_create(
                workspace=self.workspace,
                domain=request.POST.get("domain", ""),
                name=request.POST.get("name", ""),
                by=request.user,
            )
        except ValidationError as exc:
            _field_errors(request, exc)
            return HttpResponseRedirect(reverse("crm:companies"))
        messages.success(request, f"Company {company.domain} created.")
        return HttpResponseRedirect(reverse("crm:company", args=[company.pk]))


class CompanyDetailView(WorkspaceView, TemplateView):
    """One company: its contacts, edit (name, domain), merge a duplicate in (by its domain), delete with what
    it touches. POST ``action`` = ``save`` | ``merge`` | ``delete`` calls the company services."""

    template_name = "crm/company_detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        company = get_scoped_or_404(Company.objects.all(), self.request, pk=kwargs["pk"])
        contacts = contacts_for(self.workspace).filter(company=company).order_by("email")
        ctx.update(
            company=company,
            contacts=contacts[:PAGE_SIZE],
            dependents=services.company_dependents(company),
            can_write=self.tenant.allows(WRITE),
        )
        return ctx

    def post(self, request, pk):
        company = get_scoped_or_404(Company.objects.all(), request, pk=pk)
        action = request.POST.get("action")
        here = reverse("crm:company", args=[company.pk])
        try:
            if action == "delete":
                report = services.company_delete(company=company, by=request.user)
                messages.success(
                    request, f"Company {company.domain} deleted; {report['contacts']} contacts now have none."
                )
                return HttpResponseRedirect(reverse("crm:companies"))
            if action == "merge":
                wanted = normalize_domain(request.POST.get("other", ""))
                other = Company.objects.for_workspace(self.workspace).filter(domain=wanted).first()
                if other is None:
                    messages.error(request, f"No company with the domain {wanted or '(blank)'} here.")
                    return HttpResponseRedirect(here)
                report = services.company_merge(primary=company, duplicate=other, by=request.user)
                messages.success(
                    request, f"{other.domain} merged in: {report['moved_contacts']} contacts moved over."
                )
                return HttpResponseRedirect(here)
            services.company_update(
                company=company,
                name=request.POST.get("name", company.name),
                domain=request.POST.get("domain", company.domain),
                by=request.user,
            )
            messages.success(request, "Company saved.")
        except ValidationError as exc:
            _field_errors(request, exc)
        return HttpResponseRedirect(here)


class TagIndexView(WorkspaceView, TemplateView):
    """Tags with how many contacts carry each; POST creates one (`services.tag_create`)."""

    template_name = "crm/tag_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(tags=tags_with_counts(self.workspace), can_write=self.tenant.allows(WRITE))
        return ctx

    def post(self, request):
        try:
            tag = services.tag_create(
                workspace=self.workspace, name=request.POST.get("name", ""), by=request.user
            )
        except ValidationError as exc:
            _field_errors(request, exc)
        else:
            messages.success(request, f"Tag {tag.name} created.")
        return HttpResponseRedirect(reverse("crm:tags"))


class TagDetailView(WorkspaceView, TemplateView):
    """One tag: what depends on it (contacts, saved segments naming it), rename (segments follow) and delete
    (segments naming it are marked broken). POST ``action`` = ``rename`` | ``delete``."""

    template_name = "crm/tag_detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        tag = get_scoped_or_404(Tag.objects.all(), self.request, pk=kwargs["pk"])
        ctx.update(tag=tag, dependents=services.tag_dependents(tag), can_write=self.tenant.allows(WRITE))
        return ctx

    def post(self, request, pk):
        tag = get_scoped_or_404(Tag.objects.all(), request, pk=pk)
        try:
            if request.POST.get("action") == "delete":
                report = services.tag_delete(tag=tag, by=request.user)
                broken = ", ".join(report["segments"]) or "none"
                messages.success(
                    request,
                    f"Tag {tag.name} deleted: removed from {report['contacts']} contacts; "
                    f"segments marked broken: {broken}.",
                )
                return HttpResponseRedirect(reverse("crm:tags"))
            tag = services.tag_rename(tag=tag, name=request.POST.get("name", ""), by=request.user)
            messages.success(request, f"Tag renamed to {tag.name}.")
        except ValidationError as exc:
            _field_errors(request, exc)
        return HttpResponseRedirect(reverse("crm:tag", args=[tag.pk]))


# ---------------------------------------------------------------- list and segment management


class CollectionManageView(WorkspaceView, TemplateView):
    """One static list or saved segment: what uses it outside crm, rename, duplicate, delete (refused while
    in use, naming the users). POST ``action`` = ``rename`` | ``duplicate`` | ``delete`` with ``name``."""

    template_name = "crm/collection_manage.html"
    model = None
    noun = ""
    index = ""
    manage = ""  # this page's URL name

    def _object(self, request, pk):
        return get_scoped_or_404(self.model.objects.all(), request, pk=pk)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        obj = self._object(self.request, kwargs["pk"])
        ctx.update(
            obj=obj,
            noun=self.noun,
            index=reverse(self.index),
            users=self.dependents(obj),
            contacts_url=f"{reverse('crm:index')}?{self.noun}={obj.pk}",
            can_write=self.tenant.allows(WRITE),
        )
        return ctx

    def post(self, request, pk):
        obj = self._object(request, pk)
        action, name = request.POST.get("action"), request.POST.get("name", "")
        here = request.path
        try:
            if action == "delete":
                self.delete(obj, request.user)
                messages.success(request, f"{self.noun.title()} {obj.name} deleted.")
                return HttpResponseRedirect(reverse(self.index))
            if action == "duplicate":
                copy = self.duplicate(obj, name, request.user)
                messages.success(request, f"{self.noun.title()} {obj.name} copied to {copy.name}.")
                return HttpResponseRedirect(reverse(self.manage, args=[copy.pk]))
            if action == "rename":
                obj = self.rename(obj, name, request.user)
                messages.success(request, f"{self.noun.title()} renamed to {obj.name}.")
            else:
                messages.error(request, "Choose rename, duplicate or delete.")
        except ValidationError as exc:
            _field_errors(request, exc)
        return HttpResponseRedirect(here)


class ListManageView(CollectionManageView):
    model, noun, index, manage = ContactList, "list", "crm:lists", "crm:list"

    def dependents(self, obj):
        return list_dependents(obj)

    def rename(self, obj, name, by):
        return services.list_rename(contact_list=obj, name=name, by=by)

    def duplicate(self, obj, name, by):
        return services.list_duplicate(contact_list=obj, name=name, by=by)

    def delete(self, obj, by):
        return services.list_delete(contact_list=obj, by=by)


class SegmentManageView(CollectionManageView):
    model, noun, index, manage = Segment, "segment", "crm:segments", "crm:segment-manage"

    def dependents(self, obj):
        return segment_dependents(obj)

    def rename(self, obj, name, by):
        return services.segment_rename(segment=obj, name=name, by=by)

    def duplicate(self, obj, name, by):
        return services.segment_duplicate(segment=obj, name=name, by=by)

    def delete(self, obj, by):
        return services.segment_delete(segment=obj, by=by)
