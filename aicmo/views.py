"""Dashboard shell: base view class, home, workspace switcher, job progress partial."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View, defaults
from django.views.generic import TemplateView

from . import selectors
from .activity import describe
from .exports import audit_export_start
from .jobs import job_cancel
from .models import FINISHED_JOB_STATUSES, Job, Membership
from .overview import getting_started, overview_figures, overview_panels
from .roles import MANAGE, READ, WRITE
from .tenancy import SESSION_KEY, get_scoped_or_404


class WorkspaceView(LoginRequiredMixin, View):
    """Login required, a workspace bound, and the role allowing `required_permission` (POST: WRITE)."""

    required_permission = READ
    post_permission = WRITE

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            return render(request, "aicmo/no_workspace.html", status=403)
        perm = self.post_permission if request.method == "POST" else self.required_permission
        if not tenant.allows(perm):
            raise PermissionDenied("Your role in this workspace does not allow this.")
        self.tenant = tenant
        self.workspace = tenant.workspace
        return super().dispatch(request, *args, **kwargs)

    def text_param(self, name: str, *, max_length: int = 100) -> str:
        """A free-text query parameter for a filter or search: NUL removed (it never matches stored text
        and PostgreSQL refuses it in a query), surrounding space stripped, at most `max_length` characters."""
        return self.request.GET.get(name, "").replace("\x00", "").strip()[:max_length]


class WorkspaceTemplateView(WorkspaceView, TemplateView):
    pass


class HomeView(WorkspaceTemplateView):
    template_name = "aicmo/home.html"

    """The overview: each area's counts with their 7-day change, the getting-started checklist (shown until
    every step is done), jobs running now with live progress, recent jobs and (admins) recent activity."""

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        steps = getting_started(self.workspace)
        jobs = selectors.jobs_for(self.workspace)
        ctx.update(
            figures=overview_figures(self.workspace),
            panels=overview_panels(self.workspace),
            steps=steps,
            steps_left=sum(1 for s in steps if not s.done),
            running_jobs=jobs.exclude(status__in=FINISHED_JOB_STATUSES)[:10],
            recent_jobs=jobs.filter(status__in=FINISHED_JOB_STATUSES)[:10],
            recent_events=[
                {"event": e, "words": describe(e)} for e in selectors.audit_events_for(self.workspace)[:10]
            ]
            if self.tenant.allows(MANAGE)
            else [],
        )
        return ctx


class WorkspaceSwitchView(LoginRequiredMixin, View):
    def post(self, request):
        wanted = request.POST.get("workspace", "")
        membership = None
        if wanted.isascii() and wanted.isdigit() and len(wanted) <= 18:  # longer names no row (bigint)
            membership = Membership.objects.filter(user=request.user, workspace_id=int(wanted)).first()
        if membership is None:
            raise Http404("No such workspace.")
        request.session[SESSION_KEY] = membership.workspace_id
        messages.success(request, f"Switched to {membership.workspace.name}.")
        target = request.POST.get("next") or reverse("home")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = reverse("home")
        return HttpResponseRedirect(target)


class JobListView(WorkspaceTemplateView):
    template_name = "aicmo/jobs.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["jobs"] = selectors.jobs_for(self.workspace)[:100]
        return ctx


class JobDetailView(WorkspaceTemplateView):
    template_name = "aicmo/job_detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        job = get_scoped_or_404(Job.objects.select_related("started_by"), self.request, pk=kwargs["pk"])
        ctx["job"] = job
        ctx["errors"] = job.errors.all()[:500]
        return ctx


class JobProgressView(WorkspaceView):
    """The HTMX-polled progress partial; it stops polling once the job has finished."""

    def get(self, request, pk):
        job = get_scoped_or_404(Job.objects.all(), request, pk=pk)
        return render(request, "aicmo/partials/job_progress.html", {"job": job})


class JobDownloadView(WorkspaceView):
    """A job's result file (exports). Needs the permission the job recorded, READ by default."""

    def get(self, request, pk):
        job = get_scoped_or_404(Job.objects.all(), request, pk=pk)
        name = (job.result or {}).get("file")
        if not name or not default_storage.exists(name):
            raise Http404("This job has no file.")
        if not self.tenant.allows(job.params.get("download_permission", READ)):
            raise PermissionDenied("Your role does not allow this download.")
        return FileResponse(
            default_storage.open(name, "rb"), as_attachment=True, filename=name.rsplit("/", 1)[-1]
        )


class AuditLogView(WorkspaceTemplateView):
    template_name = "aicmo/audit.html"
    required_permission = MANAGE
    post_permission = MANAGE

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["events"] = [
            {"event": e, "words": describe(e)} for e in selectors.audit_events_for(self.workspace)[:200]
        ]
        ctx["exports"] = selectors.jobs_for(self.workspace).filter(kind="audit_export")[:5]
        return ctx

    def post(self, request):
        job = audit_export_start(workspace=self.workspace, by=request.user)
        messages.success(request, "Export started.")
        return HttpResponseRedirect(reverse("job-detail", args=[job.pk]))


class JobCancelView(WorkspaceView):
    def post(self, request, pk):
        job = get_scoped_or_404(Job.objects.all(), request, pk=pk)
        job_cancel(job=job, by=request.user)
        if request.headers.get("HX-Request"):
            return render(request, "aicmo/partials/job_progress.html", {"job": job})
        return HttpResponseRedirect(reverse("job-detail", args=[job.pk]))


def page_not_found(request, exception=None):
    """Unknown URLs under /api/ (e.g. a non-numeric id the router does not match) answer with the API
    error body like every other API failure; pages keep the HTML 404."""
    if request.path.startswith("/api/"):
        from .api.errors import error_body

        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)
