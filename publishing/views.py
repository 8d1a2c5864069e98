"""Publishing pages: the campaign list/detail with progress and actions (signed-in), and the public
tracking endpoints reached from sent mail (open pixel, click redirect, unsubscribe with RFC 8058
one-click POST), which need no login or cookie: the signed token is the authority."""

from __future__ import annotations

import base64

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import TemplateView

from aicmo.tenancy import get_scoped_or_404
from aicmo.views import WorkspaceView
from media.downloads import rendition_response
from media.services import RenditionBusy

from . import selectors
from .services import campaigns as campaign_services
from .services import content as content_services
from .services import tracking
from .services.audience import audience_estimate
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
    return HttpResponseRedirect(url)


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
        ctx["actions"] = sorted(ACTIONS)
        return ctx


ACTIONS = {
    "send": campaign_services.campaign_send_now,
    "pause": campaign_services.campaign_pause,
    "resume": campaign_services.campaign_resume,
    "cancel": campaign_services.campaign_cancel,
    "resend-uncertain": campaign_services.campaign_resend_uncertain,
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
