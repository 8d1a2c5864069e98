"""Publishing pages: the campaign list/detail with progress and actions (signed-in), and the public
tracking endpoints reached from sent mail (open pixel, click redirect, unsubscribe with RFC 8058
one-click POST), which need no login or cookie: the signed token is the authority."""

from __future__ import annotations

import base64
import json
import re

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from django.views.generic import TemplateView

from aicmo.roles import APPROVE, MANAGE, WRITE
from aicmo.tenancy import get_scoped_or_404
from aicmo.views import WorkspaceTemplateView, WorkspaceView
from crm.selectors import contact_by_email
from media.downloads import rendition_response
from media.services import RenditionBusy

from . import selectors
from .forms import (
    AUDIENCE_FIELDS,
    AudienceForm,
    CampaignForm,
    ContentCreateForm,
    EmailVersionForm,
    ScheduleForm,
    WebhookEndpointForm,
)
from .models import Campaign, CampaignStatus, Channel, Content, InboundHook, WebhookDelivery, WebhookEndpoint
from .services import approval as approval_services
from .services import campaign_builder, conversions, inbound, tracking
from .services import campaigns as campaign_services
from .services import content as content_services
from .services import preview as preview_services
from .services import webhooks as webhook_services
from .services.audience import audience_estimate, audience_preview
from .services.sending import delivery_counts

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


@never_cache
def open_pixel(request, token: str):
    """Always a 1×1 GIF (a bad token records nothing and reveals nothing)."""
    tracking.track_open(token=token, user_agent=request.META.get("HTTP_USER_AGENT", ""))
    return HttpResponse(PIXEL, content_type="image/gif")


def image(request, token: str):
    """An email image: the ``email`` rendition (JPEG/PNG/GIF, ≤ 1200 px wide) of a still-approved media
    asset named by a signed token, else 404; 503 with ``Retry-After`` while another process builds it."""
    try:
        rendition = content_services.image_rendition_for_token(token)
    except RenditionBusy:
        response = HttpResponse("The image is being prepared.", status=503, content_type="text/plain")
        response["Retry-After"] = "5"
        return response
    if rendition is None:
        raise Http404("Unknown image.")
    return rendition_response(rendition)


@never_cache
def click_redirect(request, token: str):
    """Redirect only to the stored target of a validly signed link; anything else is a 404."""
    url = tracking.track_click(token=token, user_agent=request.META.get("HTTP_USER_AGENT", ""))
    if url is None:
        raise Http404("Unknown link.")
    response = HttpResponseRedirect(url)
    conversions.click_cookie_set(response, token)
    return response


@method_decorator([csrf_exempt, never_cache], name="dispatch")
class UnsubscribeView(View):
    """GET: a confirm page. POST ``List-Unsubscribe=One-Click`` (RFC 8058, from the mail client): done,
    200. POST ``action=unsubscribe|resubscribe`` from the page: done, page again."""

    def get(self, request, token: str):
        delivery = tracking.delivery_for_token(tracking.SALT_UNSUBSCRIBE, token)
        if delivery is None:
            raise Http404("Unknown link.")
        return self._page(request, delivery, token, done="")

    def post(self, request, token: str):
        if request.POST.get("List-Unsubscribe") == "One-Click":
            if tracking.unsubscribe(token=token, source="one-click", ip=_ip(request)) is None:
                raise Http404("Unknown link.")
            return HttpResponse("Unsubscribed.", content_type="text/plain")
        action = request.POST.get("action", "unsubscribe")
        if action == "resubscribe":
            try:
                delivery = tracking.resubscribe(token=token, ip=_ip(request))
            except ValidationError as exc:
                delivery = tracking.delivery_for_token(tracking.SALT_UNSUBSCRIBE, token)
                if delivery is None:
                    raise Http404("Unknown link.") from exc
                return self._page(
                    request, delivery, token, done="", error="; ".join(exc.messages), status=400
                )
            except ValueError as exc:
                delivery = tracking.delivery_for_token(tracking.SALT_UNSUBSCRIBE, token)
                if delivery is None:
                    raise Http404("Unknown link.") from exc
                return self._page(request, delivery, token, done="", error=str(exc), status=400)
            done = "resubscribed"
        else:
            delivery = tracking.unsubscribe(token=token, source="confirm-page", ip=_ip(request))
            done = "unsubscribed"
        if delivery is None:
            raise Http404("Unknown link.")
        return self._page(request, delivery, token, done=done)

    def _page(self, request, delivery, token, *, done, error="", status=200):
        suppressed = delivery.contact.suppressions.filter(channel="email").exists()
        return render(
            request,
            "publishing/unsubscribe.html",
            {"email": delivery.email, "token": token, "done": done, "suppressed": suppressed, "error": error},
            status=status,
        )


class CampaignListView(WorkspaceView, TemplateView):
    template_name = "publishing/campaign_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["campaigns"] = selectors.campaigns_for(self.workspace)[:200]
        return ctx


class CampaignDetailView(WorkspaceView, TemplateView):
    template_name = "publishing/campaign_detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        campaign = get_scoped_or_404(selectors.campaigns_for(self.workspace), self.request, pk=kwargs["pk"])
        ctx["campaign"] = campaign
        ctx["counts"] = delivery_counts(campaign.pk)
        before_send = campaign.status in ("draft", "scheduled", "missed")
        ctx["check"] = campaign_services.campaign_check(campaign) if before_send else None
        ctx["estimate"] = audience_estimate(campaign).as_dict() if before_send else None
        ctx["actions"] = [(name, ACTION_LABELS[name]) for name in sorted(ACTIONS)]
        ctx["approval_required"] = approval_services.approval_required(self.workspace)
        ctx["can_approve"] = self.tenant.allows(APPROVE) and campaign.status in approval_services.REVIEWABLE
        ctx["can_write"] = self.tenant.allows(WRITE)
        ctx["schedule_form"] = ScheduleForm() if campaign.status == CampaignStatus.DRAFT else None
        return ctx


class CampaignCountsView(WorkspaceView):
    """Delivery counts by status (the campaign page polls it with HTMX while the campaign is sending)."""

    def get(self, request, pk: int):
        campaign = get_scoped_or_404(Campaign.objects.for_workspace(self.workspace), request, pk=pk)
        return render(
            request,
            "publishing/partials/campaign_counts.html",
            {"campaign": campaign, "counts": delivery_counts(campaign.pk)},
        )


class CampaignReportView(WorkspaceView, TemplateView):
    """The campaign report: totals, rates, per-variant rows and per-link clicks (``selectors.campaign_report``)."""

    template_name = "publishing/campaign_report.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        campaign = get_scoped_or_404(
            Campaign.objects.for_workspace(self.workspace), self.request, pk=kwargs["pk"]
        )
        ctx["campaign"] = campaign
        ctx["report"] = selectors.campaign_report(campaign)
        return ctx


class CampaignApproveView(WorkspaceView):
    """A reviewer or admin approves the campaign (the workspace's review rule; `services.approval`)."""

    post_permission = APPROVE

    def post(self, request, pk: int):
        campaign = get_scoped_or_404(Campaign.objects.for_workspace(self.workspace), request, pk=pk)
        try:
            approval_services.campaign_approve(campaign=campaign, by=request.user, role=self.tenant.role)
            messages.success(request, "Approved.")
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        return HttpResponseRedirect(reverse("publishing:campaign", args=[campaign.pk]))


class ContentDetailView(WorkspaceView, TemplateView):
    """Preview as a chosen contact (sandboxed iframe, desktop/phone width) and send test copies."""

    template_name = "publishing/content_detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        content = get_scoped_or_404(
            Content.objects.for_workspace(self.workspace), self.request, pk=kwargs["pk"]
        )
        wanted = self.request.GET.get("contact", "").strip()
        contact = contact_by_email(self.workspace, wanted)
        ctx.update(content=content, wanted=wanted, contact=contact, unknown=bool(wanted) and contact is None)
        ctx["max_test"] = preview_services.MAX_TEST_RECIPIENTS
        ctx["check"] = content_services.email_version_check(
            content.versions.filter(channel="email").select_related("sender").first()
        ).as_dict()
        return ctx


@method_decorator(never_cache, name="dispatch")
class ContentPreviewView(WorkspaceView):
    """The rendered email alone, for the preview iframe. ``Content-Security-Policy: sandbox`` keeps it
    sandboxed (no scripts, unique origin) even when opened directly."""

    def get(self, request, pk: int):
        content = get_scoped_or_404(Content.objects.for_workspace(self.workspace), request, pk=pk)
        try:
            rendered = preview_services.content_preview(
                content=content, contact=contact_by_email(self.workspace, request.GET.get("contact", ""))
            )
        except ValidationError as exc:
            return HttpResponse("; ".join(exc.messages), content_type="text/plain", status=400)
        response = HttpResponse(rendered.html, content_type="text/html; charset=utf-8")
        response["Content-Security-Policy"] = (
            "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline'"
        )
        response["X-Frame-Options"] = "SAMEORIGIN"
        return response


class ContentSendTestView(WorkspaceView):
    def post(self, request, pk: int):
        content = get_scoped_or_404(Content.objects.for_workspace(self.workspace), request, pk=pk)
        wanted = request.POST.get("contact", "")
        try:
            results = preview_services.content_send_test(
                content=content,
                addresses=request.POST.get("addresses", ""),
                contact=contact_by_email(self.workspace, wanted),
                by=request.user,
            )
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        else:
            for address, outcome in results.items():
                if outcome == "sent":
                    messages.success(request, f"Test sent to {address}.")
                else:
                    messages.error(request, f"Test to {address} failed: {outcome}")
        url = reverse("publishing:content", args=[content.pk])
        return HttpResponseRedirect(f"{url}?contact={wanted}" if wanted else url)


class ContentCreateView(WorkspaceView, TemplateView):
    """GET: the "new content" form (viewers see that their role cannot create). POST:
    `content.content_create`, then on to the email editor."""

    template_name = "publishing/content_new.html"

    def get(self, request):
        return self._render(ContentCreateForm())

    def _render(self, form, status=200):
        ctx = self.get_context_data(form=form, can_write=self.tenant.allows(WRITE))
        return self.render_to_response(ctx, status=status)

    def post(self, request):
        form = ContentCreateForm(request.POST)
        if form.is_valid():
            try:
                content = content_services.content_create(
                    workspace=self.workspace, name=form.cleaned_data["name"], by=request.user
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, f"Content {content.name} created: now write its email.")
                return HttpResponseRedirect(reverse("publishing:content-edit", args=[content.pk]))
        return self._render(form, status=400)


class EmailVersionEditView(WorkspaceView, TemplateView):
    """The email editor of one content. POST: `content.email_version_save`; its errors (template lines,
    unknown fields, sender, images) land on the fields and the form is shown again (400), nothing written.
    After a save the page loads again, so the preview frame and the pre-send checks show what was saved."""

    template_name = "publishing/content_edit.html"

    def _content(self, pk: int) -> Content:
        return get_scoped_or_404(Content.objects.for_workspace(self.workspace), self.request, pk=pk)

    def _render(self, content, form, status=200):
        version = content.versions.filter(channel=Channel.EMAIL).select_related("sender", "layout").first()
        images = selectors.email_image_assets(self.workspace)[:200]
        ctx = self.get_context_data(
            content=content,
            version=version,
            form=form if self.tenant.allows(WRITE) else None,
            check=content_services.email_version_check(version).as_dict(),
            images=[(asset, content_services.image_markup(asset)) for asset in images],
        )
        return self.render_to_response(ctx, status=status)

    def get(self, request, pk: int):
        content = self._content(pk)
        version = content.versions.filter(channel=Channel.EMAIL).first()
        return self._render(content, EmailVersionForm(workspace=self.workspace, version=version))

    def post(self, request, pk: int):
        content = self._content(pk)
        form = EmailVersionForm(request.POST, workspace=self.workspace)
        if form.is_valid():
            try:
                content_services.email_version_save(content=content, by=request.user, **form.service_data())
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, "Email saved.")
                return HttpResponseRedirect(reverse("publishing:content-edit", args=[content.pk]))
        return self._render(content, form, status=400)


class CampaignBuilderView(WorkspaceView, TemplateView):
    """New campaign, or edit a draft: `campaign_builder.campaign_save` (content, audience, time zone,
    limits, UTM, A/B test). Viewers and campaigns past draft get the settings read-only."""

    template_name = "publishing/campaign_form.html"

    def _campaign(self, pk) -> Campaign | None:
        if pk is None:
            return None
        return get_scoped_or_404(
            Campaign.objects.for_workspace(self.workspace).select_related("content"), self.request, pk=pk
        )

    def _estimate(self, campaign, form, editable: bool) -> dict | None:
        """For a form sent back with errors, the audience it picked; else the saved campaign's."""
        if form.is_bound and not any(key in form.errors for key in AUDIENCE_FIELDS):
            try:
                return audience_preview(workspace=self.workspace, audience=form.audience()).as_dict()
            except ValidationError:
                return None
        return audience_estimate(campaign).as_dict() if campaign is not None and editable else None

    def _render(self, campaign, form, status=200):
        editable = campaign is None or campaign.status == CampaignStatus.DRAFT
        ctx = self.get_context_data(
            campaign=campaign,
            form=form if editable and self.tenant.allows(WRITE) else None,
            editable=editable,
            can_write=self.tenant.allows(WRITE),
            estimate=self._estimate(campaign, form, editable),
        )
        return self.render_to_response(ctx, status=status)

    def get(self, request, pk: int | None = None):
        campaign = self._campaign(pk)
        return self._render(campaign, CampaignForm(workspace=self.workspace, campaign=campaign))

    def post(self, request, pk: int | None = None):
        campaign = self._campaign(pk)
        form = CampaignForm(request.POST, workspace=self.workspace, campaign=campaign)
        if form.is_valid():
            try:
                campaign = campaign_builder.campaign_save(
                    workspace=self.workspace, campaign=campaign, by=request.user, **form.service_data()
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, f"Campaign {campaign.name} saved.")
                return HttpResponseRedirect(reverse("publishing:campaign", args=[campaign.pk]))
        return self._render(campaign, form, status=400)


class AudienceEstimateView(WorkspaceView):
    """HTMX fragment for the builder: expected recipients and why the others are left out, for the
    audience picked so far (`audience.audience_preview`; nothing is saved)."""

    def get(self, request):
        form = AudienceForm(request.GET, workspace=self.workspace)
        estimate, errors = None, []
        if form.is_valid():
            try:
                estimate = audience_preview(workspace=self.workspace, audience=form.audience()).as_dict()
            except ValidationError as exc:
                errors = exc.messages
        else:
            errors = [f"{form[name].label}: {' '.join(errs)}" for name, errs in form.errors.items()]
        return render(
            request, "publishing/partials/audience_estimate.html", {"estimate": estimate, "errors": errors}
        )


class CampaignScheduleView(WorkspaceView):
    """POST ``when`` (wall-clock in the campaign's time zone): `campaigns.campaign_schedule`."""

    def post(self, request, pk: int):
        campaign = get_scoped_or_404(Campaign.objects.for_workspace(self.workspace), request, pk=pk)
        form = ScheduleForm(request.POST)
        try:
            if not form.is_valid():
                raise ValidationError(form.errors["when"])
            campaign = campaign_services.campaign_schedule(
                campaign=campaign, when=form.cleaned_data["when"], by=request.user
            )
        except ValidationError as exc:
            messages.error(request, "Not scheduled: " + "; ".join(exc.messages))
        else:
            messages.success(request, "Scheduled.")
        return HttpResponseRedirect(reverse("publishing:campaign", args=[campaign.pk]))


def demo_outbox_dir():
    from pathlib import Path

    from django.conf import settings

    return Path(getattr(settings, "PUBLISHING_DEMO_OUTBOX_DIR", settings.VAR_DIR / "demo-mail"))


_EML = re.compile(r"^[0-9T]{15,30}-[0-9a-f]{8}\.eml$")


def _read_eml(path):
    import email
    import email.policy

    with path.open("rb") as fh:
        return email.message_from_binary_file(fh, policy=email.policy.default)


class DemoOutboxView(LoginRequiredMixin, View):
    """Staff only, dev only: the messages the demo mail catcher (`publishing.democatcher`) stored, newest
    first (at most 200), or one of them with its HTML in a sandboxed frame. 404 outside AICMO_ENV=dev."""

    def dispatch(self, request, *args, **kwargs):
        from django.conf import settings

        if not (settings.DEV or settings.TESTING):
            raise Http404("The demo outbox exists only in the dev profile.")
        if request.user.is_authenticated and not request.user.is_staff:
            raise PermissionDenied("Staff only.")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, name: str = ""):
        folder = demo_outbox_dir()
        if name:
            if not _EML.match(name) or not (folder / name).is_file():
                raise Http404("No such message.")
            msg = _read_eml(folder / name)
            html_part = msg.get_body(("html",))
            text_part = msg.get_body(("plain",))
            html = html_part.get_content() if html_part else ""
            return render(
                request,
                "publishing/demo_outbox_message.html",
                {
                    "name": name,
                    "headers": [(k, str(v)) for k, v in msg.items()],
                    "srcdoc": '<base target="_blank">' + html if html else "",
                    "text": text_part.get_content() if text_part else "",
                },
            )
        files = (
            sorted((p for p in folder.glob("*.eml") if _EML.match(p.name)), reverse=True)[:200]
            if folder.is_dir()
            else []
        )
        rows = []
        for path in files:
            msg = _read_eml(path)
            rows.append(
                {
                    "name": path.name,
                    "to": msg.get("To", ""),
                    "subject": msg.get("Subject", ""),
                    "date": msg.get("Date", ""),
                }
            )
        return render(request, "publishing/demo_outbox.html", {"messages_": rows, "folder": folder})


ACTIONS = {
    "send": campaign_services.campaign_send_now,
    "unschedule": campaign_services.campaign_unschedule,
    "pause": campaign_services.campaign_pause,
    "resume": campaign_services.campaign_resume,
    "cancel": campaign_services.campaign_cancel,
    "resend-uncertain": campaign_services.campaign_resend_uncertain,
}
# The buttons' words (the URL keeps the action's name).
ACTION_LABELS = {
    "send": "Send now",
    "unschedule": "Unschedule",
    "pause": "Pause sending",
    "resume": "Resume sending",
    "cancel": "Cancel sending",
    "resend-uncertain": "Resend uncertain messages",
}


class CampaignActionView(WorkspaceView):
    def post(self, request, pk: int, action: str):
        campaign = get_scoped_or_404(selectors.campaigns_for(self.workspace), request, pk=pk)
        service = ACTIONS.get(action)
        if service is None:
            raise Http404("Unknown action.")
        try:
            service(campaign=campaign, by=request.user)
            messages.success(request, f"{action.replace('-', ' ').capitalize()}: done.")
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        return HttpResponseRedirect(reverse("publishing:campaign", args=[campaign.pk]))


@csrf_exempt
@require_POST
def inbound_webhook(request, provider: str, key: str):
    """A provider's tracking webhook for one workspace (``InboundHook``): 200 once verified and recorded,
    401 with a basic-auth challenge when a basic-auth provider sent no credentials (Amazon SNS sends them
    only after one), 400 for a bad signature or payload, 404 for an unknown hook."""
    hook = InboundHook.objects.filter(provider=provider, key=key).first()
    if hook is None:
        raise Http404("Unknown webhook.")
    try:
        result = inbound.webhook_receive(hook=hook, request=request)
    except inbound.WebhookAuthRequired as err:
        response = JsonResponse({"detail": str(err)}, status=401)
        response["WWW-Authenticate"] = 'Basic realm="AICMO webhook"'
        return response
    except inbound.WebhookRejected as err:
        return JsonResponse({"detail": str(err)}, status=400)
    return JsonResponse(
        {
            "recorded": result.recorded,
            "duplicates": result.duplicates,
            "unmatched": result.unmatched,
            "ignored": result.ignored,
        }
    )


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def conversion(request, token: str):
    """A workspace's public conversion URL (signed token): GET for a pixel (always the GIF), POST for a
    server-to-server call (JSON: 201 recorded, 200 repeat, 400 per-field errors, 404 bad token). Fields:
    order_id, value, currency, click (our signed click token) or email; without either, the click cookie
    our click redirect set (``conversions.CLICK_COOKIE``) names the contact."""
    workspace = conversions.workspace_for_conversion_token(token)
    data = request.GET if request.method == "GET" else request.POST
    if request.method == "POST" and request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return JsonResponse({"detail": "Invalid JSON."}, status=400)
        if not isinstance(data, dict):
            return JsonResponse({"detail": "A JSON object is required."}, status=400)
    result, errors = None, None
    if workspace is not None:
        try:
            result = conversions.conversion_record(
                workspace=workspace,
                order_id=data.get("order_id"),
                value=data.get("value"),
                currency=data.get("currency"),
                click_token=data.get("click") or conversions.click_cookie_get(request),
                email=data.get("email") or None,
            )
        except ValidationError as err:
            errors = err.message_dict
    if request.method == "GET":
        return HttpResponse(PIXEL, content_type="image/gif")
    if workspace is None:
        raise Http404("Unknown conversion URL.")
    if errors:
        return JsonResponse({"errors": errors}, status=400)
    return JsonResponse(
        {"id": result.event.pk, "created": result.created}, status=201 if result.created else 200
    )


# -- outbound webhooks -------------------------------------------------------------------------------------

WEBHOOK_SECRET_SESSION_KEY = "publishing_webhook_secret"  # noqa: S105 - a session key name; shown once
WEBHOOK_LOG_SIZE = 50


def _secret_once(request, endpoint_id: int, secret: str) -> None:
    request.session[WEBHOOK_SECRET_SESSION_KEY] = {"id": endpoint_id, "secret": secret}


class WebhookListView(WorkspaceTemplateView):
    """Endpoints and the latest deliveries of all of them (admins manage; marketers and reviewers read)."""

    template_name = "publishing/webhook_list.html"
    required_permission = WRITE

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["endpoints"] = list(selectors.webhook_endpoints_for(self.workspace))
        ctx["deliveries"] = list(selectors.webhook_deliveries_for(self.workspace)[:WEBHOOK_LOG_SIZE])
        ctx["can_manage"] = self.tenant.allows(MANAGE)
        return ctx


class WebhookCreateView(WorkspaceView):
    required_permission = MANAGE
    post_permission = MANAGE

    def get(self, request):
        form = WebhookEndpointForm(initial={"active": True})
        return render(request, "publishing/webhook_form.html", {"form": form})

    def post(self, request):
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            try:
                endpoint, secret = webhook_services.endpoint_create(
                    workspace=self.workspace, by=request.user, **form.cleaned_data
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                _secret_once(request, endpoint.pk, secret)
                return HttpResponseRedirect(reverse("publishing:webhook", args=[endpoint.pk]))
        return render(request, "publishing/webhook_form.html", {"form": form}, status=400)


class WebhookDetailView(WorkspaceView):
    """An endpoint, its form (admins), its actions and its delivery log. The secret is shown on the first
    view after creation or rotation only."""

    required_permission = WRITE
    post_permission = MANAGE

    def _endpoint(self, request, pk) -> WebhookEndpoint:
        return get_scoped_or_404(WebhookEndpoint.objects.all(), request, pk=pk)

    def get(self, request, pk):
        endpoint = self._endpoint(request, pk)
        form = WebhookEndpointForm(
            initial={
                "url": endpoint.url,
                "description": endpoint.description,
                "event_types": endpoint.event_types,
                "active": endpoint.active,
            }
        )
        return self._render(request, endpoint, form)

    def post(self, request, pk):
        endpoint = self._endpoint(request, pk)
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            try:
                webhook_services.endpoint_update(endpoint=endpoint, by=request.user, **form.cleaned_data)
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, "Webhook endpoint saved.")
                return HttpResponseRedirect(reverse("publishing:webhook", args=[endpoint.pk]))
        return self._render(request, endpoint, form, status=400)

    def _render(self, request, endpoint, form, status=200):
        shown = request.session.get(WEBHOOK_SECRET_SESSION_KEY)
        secret = None
        if shown and shown.get("id") == endpoint.pk:
            secret = request.session.pop(WEBHOOK_SECRET_SESSION_KEY)["secret"]
        deliveries = selectors.webhook_deliveries_for(self.workspace).filter(endpoint=endpoint)
        context = {
            "endpoint": endpoint,
            "form": form,
            "secret": secret,
            "deliveries": list(deliveries[:WEBHOOK_LOG_SIZE]),
            "can_manage": self.tenant.allows(MANAGE),
        }
        return render(request, "publishing/webhook_detail.html", context, status=status)


class WebhookActionView(WorkspaceView):
    """POST ``rotate`` (a new secret, shown once) or ``test`` (queue a ``webhook.test`` event)."""

    post_permission = MANAGE

    def post(self, request, pk, action):
        endpoint = get_scoped_or_404(WebhookEndpoint.objects.all(), request, pk=pk)
        if action == "rotate":
            _secret_once(
                request,
                endpoint.pk,
                webhook_services.endpoint_rotate_secret(endpoint=endpoint, by=request.user),
            )
            messages.success(request, "New secret created; the old one no longer signs anything.")
        elif action == "test":
            try:
                webhook_services.endpoint_send_test(endpoint=endpoint, by=request.user)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, "Test event queued; its delivery appears below.")
        else:
            raise Http404("Unknown action.")
        return HttpResponseRedirect(reverse("publishing:webhook", args=[endpoint.pk]))


class WebhookDeleteView(WorkspaceView):
    required_permission = MANAGE
    post_permission = MANAGE

    def get(self, request, pk):
        endpoint = get_scoped_or_404(WebhookEndpoint.objects.all(), request, pk=pk)
        return render(request, "publishing/webhook_delete.html", {"endpoint": endpoint})

    def post(self, request, pk):
        endpoint = get_scoped_or_404(WebhookEndpoint.objects.all(), request, pk=pk)
        webhook_services.endpoint_delete(endpoint=endpoint, by=request.user)
        messages.success(request, "Webhook endpoint deleted.")
        return HttpResponseRedirect(reverse("publishing:webhooks"))


class WebhookDeliveryRetryView(WorkspaceView):
    post_permission = MANAGE

    def post(self, request, pk):
        delivery = get_scoped_or_404(WebhookDelivery.objects.all(), request, pk=pk)
        try:
            webhook_services.delivery_retry(delivery=delivery, by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Delivery {delivery.event_id} queued again.")
        back = request.POST.get("next", "")
        if back == "endpoint":
            return HttpResponseRedirect(reverse("publishing:webhook", args=[delivery.endpoint_id]))
        return HttpResponseRedirect(reverse("publishing:webhooks"))
