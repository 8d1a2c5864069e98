"""Media dashboard: asset grid with filters and drag-and-drop upload, asset page, insights, file serving."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from redis.exceptions import RedisError

from aicmo.roles import APPROVE, READ, WRITE
from aicmo.tenancy import get_scoped_or_404
from aicmo.views import WorkspaceTemplateView, WorkspaceView

from . import renditions as rd
from . import selectors, services, video
from .downloads import asset_response, rendition_response
from .models import AssetKind, AssetStatus, MediaAsset, MediaLibrary, Suggestion, SuggestionStatus
from .validation import UploadRejected

PAGE_SIZE = 48


def _int(value) -> int | None:
    """An id from a query string or form, or None: up to 18 ASCII digits always fits the BigAutoField range
    (a longer number names no row, cannot be bound by SQLite, and past 4,300 digits int() refuses it)."""
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _without_page(params) -> str:
    query = params.copy()
    query.pop("page", None)
    return query.urlencode()


class IndexView(WorkspaceTemplateView):
    template_name = "media/index.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        params = self.request.GET
        filters = {
            "library": _int(params.get("library")),
            "kind": params.get("kind", "") if params.get("kind", "") in AssetKind.values else "",
            "status": params.get("status", "") if params.get("status", "") in AssetStatus.values else "",
            "tag": self.text_param("tag", max_length=60),
            "category": self.text_param("category", max_length=60),
            "q": self.text_param("q"),
        }
        page = Paginator(selectors.assets_for(self.workspace, **filters), PAGE_SIZE).get_page(
            params.get("page")
        )
        thumbs = selectors.thumbnails_for(page.object_list)
        libraries = list(selectors.libraries_for(self.workspace))
        # Upload into the library being viewed; otherwise into the default one the API uses too.
        upload_library = filters["library"] or getattr(
            selectors.default_library_for(self.workspace), "pk", None
        )
        ctx.update(
            page=page,
            assets=[(a, thumbs.get(a.pk)) for a in page.object_list],
            filters=filters,
            libraries=libraries,
            upload_libraries=[lib for lib in libraries if lib.archived_at is None],
            upload_library=upload_library,
            viewed_library=next((lib for lib in libraries if lib.pk == filters["library"]), None),
            tags=list(selectors.tags_for(self.workspace).values_list("name", flat=True)),
            kinds=AssetKind.choices,
            statuses=AssetStatus.choices,
            can_write=self.tenant.allows(WRITE),
            querystring=_without_page(params),
        )
        return ctx


class UploadView(WorkspaceView):
    """One file per request (the drag-and-drop script sends each file with its own progress bar);
    a plain multi-file form post also works and reports through messages."""

    def post(self, request):
        library = get_scoped_or_404(MediaLibrary.objects.all(), request, pk=_int(request.POST.get("library")) or 0) \
            if request.POST.get("library") else services.library_get_default(workspace=self.workspace)  # fmt: skip
        files = request.FILES.getlist("file")
        wants_json = request.headers.get("Accept", "").startswith("application/json")
        back = HttpResponseRedirect(f"{reverse('media:index')}?library={library.pk}")
        if not files:
            if wants_json:
                return JsonResponse({"error": {"code": "invalid", "message": "No file sent."}}, status=400)
            messages.error(request, "Choose at least one file.")
            return back
        results = []
        for upload in files:
            try:
                result = services.asset_upload(library=library, file=upload, by=request.user, filename=upload.name,
                                               tags=[t for t in request.POST.get("tags", "").split(",") if t.strip()])  # fmt: skip
            except UploadRejected as exc:
                results.append((upload.name, None, exc))
            else:
                results.append((upload.name, result, None))
        if wants_json:
            name, result, exc = results[0]
            if exc is not None:
                return JsonResponse({"name": name, "error": {"code": exc.code, "message": exc.message}},
                                    status=exc.http_status)  # fmt: skip
            return JsonResponse(
                {"name": name, "id": result.asset.pk, "title": result.asset.title, "duplicate": result.duplicate,
                 "url": reverse("media:asset", args=[result.asset.pk])},
                status=200 if result.duplicate else 201,
            )  # fmt: skip
        for name, result, exc in results:
            if exc is not None:
                messages.error(request, f"{name}: {exc.message}")
            elif result.duplicate:
                messages.info(request, f"{name} is already in the library as “{result.asset.title}”.")
            else:
                messages.success(request, f"{name} uploaded to {library.name}.")
        return back


class AssetDetailView(WorkspaceTemplateView):
    template_name = "media/asset.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        asset = get_scoped_or_404(
            MediaAsset.objects.select_related("library", "uploaded_by", "reviewed_by").prefetch_related("tags"),
            self.request, pk=kwargs["pk"],
        )  # fmt: skip
        perf = selectors.performance_rows(workspace=self.workspace, asset=asset.pk)
        ctx.update(
            asset=asset,
            renditions={r.spec: r for r in asset.renditions.all()},
            specs=list(rd.SPECS.values()),
            ffmpeg_available=video.available() if asset.kind == AssetKind.VIDEO else None,
            usages=asset.usages.order_by("-used_at")[:100],
            performance=perf,
            suggestions=asset.suggestions.filter(status=SuggestionStatus.OPEN),
            near=selectors.near_duplicates(asset=asset),
            libraries=[
                lib
                for lib in selectors.libraries_for(self.workspace)
                if lib.archived_at is None or lib.pk == asset.library_id
            ],  # fmt: skip
            can_write=self.tenant.allows(WRITE),
            can_approve=self.tenant.allows(APPROVE),
            reviewable=(AssetStatus.DRAFT, AssetStatus.REJECTED, AssetStatus.APPROVED),
            tag_names=", ".join(t.name for t in asset.tags.all()),
        )
        return ctx


class AssetActionView(WorkspaceView):
    """POST /media/assets/<pk>/<action>/: every button on the asset page, each calling one service."""

    ACTIONS = {"approve": APPROVE, "reject": APPROVE, "archive": WRITE, "renditions": WRITE, "update": WRITE,
               "suggestions": WRITE}  # fmt: skip

    def dispatch(self, request, *args, **kwargs):
        perm = self.ACTIONS.get(kwargs.get("action"))
        if perm is None:
            raise Http404
        self.post_permission = perm
        return super().dispatch(request, *args, **kwargs)

    def post(self, request, pk, action):
        asset = get_scoped_or_404(MediaAsset.objects.all(), request, pk=pk)
        back = HttpResponseRedirect(reverse("media:asset", args=[asset.pk]))
        try:
            if action == "approve":
                services.asset_approve(asset=asset, by=request.user, note=request.POST.get("note", ""),
                                       role=self.tenant.role)  # fmt: skip
            elif action == "reject":
                services.asset_reject(asset=asset, by=request.user, note=request.POST.get("note", ""),
                                      role=self.tenant.role)  # fmt: skip
            elif action == "archive":
                services.asset_archive(asset=asset, by=request.user)
            elif action == "renditions":
                job = services.asset_request_renditions(asset=asset, by=request.user, force=True)
                messages.success(request, "Rendition build queued.")
                return HttpResponseRedirect(reverse("job-detail", args=[job.pk]))
            elif action == "suggestions":
                services.asset_compute_suggestions(asset=asset)
            elif action == "update":
                self._update(request, asset)
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, "; ".join(getattr(exc, "messages", [str(exc)])))
            return back
        messages.success(request, "Saved.")
        return back

    def _update(self, request, asset):
        fields = {
            k: request.POST[k].strip()
            for k in ("title", "description", "alt_text", "category")
            if k in request.POST
        }
        for k in ("focal_x", "focal_y"):
            if request.POST.get(k):
                try:
                    fields[k] = float(request.POST[k])
                except ValueError:
                    raise ValidationError({k: "Enter a number between 0 and 1."}) from None
        library = None
        if request.POST.get("library"):
            library = get_scoped_or_404(
                MediaLibrary.objects.all(), request, pk=_int(request.POST["library"]) or 0
            )
        tags = (
            [t for t in request.POST.get("tags", "").split(",") if t.strip()]
            if "tags" in request.POST
            else None
        )
        services.asset_update(asset=asset, by=request.user, library=library, tags=tags, **fields)


class SuggestionActionView(WorkspaceView):
    def post(self, request, pk, action):
        suggestion = get_scoped_or_404(Suggestion.objects.select_related("asset"), request, pk=pk)
        back = HttpResponseRedirect(reverse("media:asset", args=[suggestion.asset_id]))
        if action == "dismiss":
            services.suggestion_dismiss(suggestion=suggestion, by=request.user)
            messages.success(request, "Suggestion dismissed.")
        elif action == "act" and suggestion.actionable:
            job = services.suggestion_act(suggestion=suggestion, by=request.user)
            messages.success(request, "Optimized rendition queued.")
            return HttpResponseRedirect(reverse("job-detail", args=[job.pk]))
        else:
            raise Http404
        return back


class AssetFileView(WorkspaceView):
    required_permission = READ

    def get(self, request, pk):
        return asset_response(get_scoped_or_404(MediaAsset.objects.all(), request, pk=pk))


class RenditionFileView(WorkspaceView):
    """A rendition file, built on demand under the shared lock when it is missing or stale."""

    def get(self, request, pk, spec):
        asset = get_scoped_or_404(MediaAsset.objects.all(), request, pk=pk)
        if spec not in services.rendition_specs(asset):
            raise Http404
        try:
            return rendition_response(services.rendition_get_or_build(asset=asset, spec=spec))
        except (services.RenditionBusy, RedisError):  # Redis holds the build lock: down is "try again"
            return busy_response()


def busy_response() -> HttpResponse:
    response = HttpResponse(
        "The rendition is being built; try again shortly.", status=503, content_type="text/plain"
    )
    response["Retry-After"] = "5"
    return response


class SuggestionsRefreshView(WorkspaceView):
    def post(self, request):
        job = services.suggestions_request_refresh(workspace=self.workspace, by=request.user)
        messages.success(request, "Recomputing suggestions for every library.")
        return HttpResponseRedirect(reverse("job-detail", args=[job.pk]))


class InsightsView(WorkspaceTemplateView):
    template_name = "media/insights.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["stats"] = selectors.library_stats(workspace=self.workspace)
        ctx["rankings"] = [selectors.performers(workspace=self.workspace, channel=c)
                           for c in selectors.channels_for(self.workspace)]  # fmt: skip
        ctx["pairs"] = selectors.duplicate_pairs(workspace=self.workspace)[:200]
        ctx["min_impressions"] = selectors.MIN_IMPRESSIONS
        ctx["can_write"] = self.tenant.allows(WRITE)
        return ctx


class LibraryListView(WorkspaceTemplateView):
    """GET: every library with its asset count; POST (WRITE): create one through ``library_create``."""

    template_name = "media/libraries.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(
            libraries=list(selectors.libraries_for(self.workspace)),
            default_name=MediaLibrary.DEFAULT_NAME,
            can_write=self.tenant.allows(WRITE),
        )
        ctx.setdefault("form", {"name": "", "description": "", "errors": {}})
        return ctx

    def post(self, request):
        name, description = request.POST.get("name", ""), request.POST.get("description", "")
        try:
            library = services.library_create(
                workspace=self.workspace,
                name=name,
                description=description.replace("\x00", ""),
                by=request.user,
            )
        except ValidationError as exc:
            form = {"name": name, "description": description, "errors": exc.message_dict}
            return self.render_to_response(self.get_context_data(form=form), status=400)
        messages.success(request, f"Library “{library.name}” created. Upload into it here.")
        return HttpResponseRedirect(f"{reverse('media:index')}?library={library.pk}")


class LibraryEditView(WorkspaceTemplateView):
    """GET: rename / describe form and the archive or restore button; POST (WRITE): ``library_update``."""

    template_name = "media/library_edit.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        library = kwargs.get("library") or get_scoped_or_404(
            MediaLibrary.objects.all(), self.request, pk=kwargs["pk"]
        )
        ctx.update(
            library=library,
            asset_count=library.assets.count(),
            can_write=self.tenant.allows(WRITE),
        )
        ctx.setdefault("form", {"name": library.name, "description": library.description, "errors": {}})
        return ctx

    def post(self, request, pk):
        library = get_scoped_or_404(MediaLibrary.objects.all(), request, pk=pk)
        name, description = request.POST.get("name", ""), request.POST.get("description", "")
        try:
            services.library_update(
                library=library, by=request.user, name=name, description=description.replace("\x00", "")
            )
        except ValidationError as exc:
            library.refresh_from_db()
            form = {"name": name, "description": description, "errors": exc.message_dict}
            return self.render_to_response(
                self.get_context_data(pk=pk, library=library, form=form), status=400
            )
        messages.success(request, "Library saved.")
        return HttpResponseRedirect(reverse("media:library", args=[library.pk]))


class LibraryArchiveView(WorkspaceTemplateView):
    """GET: what archiving does (its assets stay as they are); POST (WRITE): archive or, with
    ``restore``, un-archive."""

    template_name = "media/library_archive.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        library = get_scoped_or_404(MediaLibrary.objects.all(), self.request, pk=kwargs["pk"])
        ctx.update(
            library=library,
            asset_count=library.assets.count(),
            used_count=library.assets.filter(usages__isnull=False).distinct().count(),
            can_write=self.tenant.allows(WRITE),
        )
        return ctx

    def post(self, request, pk):
        library = get_scoped_or_404(MediaLibrary.objects.all(), request, pk=pk)
        try:
            if request.POST.get("restore"):
                services.library_unarchive(library=library, by=request.user)
                messages.success(request, f"“{library.name}” restored: uploads can go into it again.")
            else:
                services.library_archive(library=library, by=request.user)
                messages.success(request, f"“{library.name}” archived. Its assets are unchanged.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return HttpResponseRedirect(reverse("media:library", args=[library.pk]))


class AssetDeleteView(WorkspaceTemplateView):
    """GET: where the asset is used and what goes with it; POST (WRITE): ``asset_delete``."""

    template_name = "media/asset_delete.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        asset = get_scoped_or_404(MediaAsset.objects.select_related("library"), self.request, pk=kwargs["pk"])
        ctx.update(
            asset=asset, footprint=selectors.asset_footprint(asset), can_write=self.tenant.allows(WRITE)
        )
        return ctx

    def post(self, request, pk):
        asset = get_scoped_or_404(MediaAsset.objects.all(), request, pk=pk)
        title, library_id = asset.title, asset.library_id
        services.asset_delete(asset=asset, by=request.user)
        messages.success(request, f"“{title}” deleted.")
        return HttpResponseRedirect(f"{reverse('media:index')}?library={library_id}")
