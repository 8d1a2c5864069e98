"""Publishing API under /api/v1/publishing/: senders, layouts, contents (email version, checks),
campaigns (estimate, schedule, send, pause, resume, cancel, resend uncertain, deliveries), events,
outbound webhooks (endpoints and their delivery log), DKIM keys and inbound provider hooks (admins)."""

from rest_framework.routers import DefaultRouter

from .abtests import ABTestViewSet
from .campaigns import CampaignViewSet, EngagementEventViewSet
from .content import ContentViewSet, LayoutViewSet, SenderViewSet
from .conversions import ConversionViewSet
from .deliverability import DkimKeyViewSet, InboundHookViewSet
from .webhooks import WebhookDeliveryViewSet, WebhookEndpointViewSet

router = DefaultRouter()
router.register("senders", SenderViewSet, basename="publishing-sender")
router.register("layouts", LayoutViewSet, basename="publishing-layout")
router.register("contents", ContentViewSet, basename="publishing-content")
router.register("campaigns", CampaignViewSet, basename="publishing-campaign")
router.register("events", EngagementEventViewSet, basename="publishing-event")
router.register("conversions", ConversionViewSet, basename="publishing-conversion")
router.register("abtests", ABTestViewSet, basename="publishing-abtest")
router.register("webhooks", WebhookEndpointViewSet, basename="publishing-webhook")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="publishing-webhook-delivery")
router.register("dkim-keys", DkimKeyViewSet, basename="publishing-dkim-key")
router.register("inbound-hooks", InboundHookViewSet, basename="publishing-inbound-hook")

urlpatterns = router.urls
