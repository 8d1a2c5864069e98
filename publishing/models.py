"""Publishing tables: senders, layouts, content with per-channel versions, campaigns, per-recipient
deliveries, tracked links and the one engagement event table analytics reads."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from aicmo.models import Job, WorkspaceOwned
from crm.models import Contact
from gateway.crypto import EncryptedTokenField


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SOCIAL = "social", "Social"
    ADS = "ads", "Ads"


class PublishingSettings(WorkspaceOwned):
    """Per-workspace publishing rules (one row per workspace; absent means the defaults)."""

    approval_required = models.BooleanField(
        default=False, help_text="Campaigns need a reviewer's approval before they can be scheduled or sent."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace"], name="pub_settings_one_per_workspace")]


class Sender(WorkspaceOwned):
    """A From address the workspace may send as. Only verified senders can be chosen on a version.
    ``max_per_second`` / ``max_per_hour`` cap every campaign sending as it together (None: no cap)."""

    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=120, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    max_per_second = models.PositiveIntegerField(null=True, blank=True)
    max_per_hour = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]
        constraints = [models.UniqueConstraint(fields=["workspace", "email"], name="pub_sender_unique_email")]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None


class Layout(WorkspaceOwned):
    """A workspace base layout: HTML with ``{{ body }}`` where a version's HTML goes, plus CSS to inline."""

    name = models.CharField(max_length=120)
    html = models.TextField()
    css = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="pub_layout_unique_name")]

    def __str__(self) -> str:
        return self.name


class Content(WorkspaceOwned):
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return self.name


class ContentVersion(WorkspaceOwned):
    """One channel's form of a piece of content. Email uses subject…text; social and ads use body,
    headline and link_url (their publishing arrives with the channels that follow)."""

    content = models.ForeignKey(Content, on_delete=models.CASCADE, related_name="versions")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # email
    subject = models.CharField(max_length=255, blank=True)
    preheader = models.CharField(max_length=255, blank=True)
    sender = models.ForeignKey(Sender, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    from_name = models.CharField(max_length=120, blank=True)
    reply_to = models.EmailField(max_length=254, blank=True)
    layout = models.ForeignKey(Layout, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    html = models.TextField(blank=True)
    # Optional MJML source; when present, ``html`` is compiled from it on every save.
    mjml = models.TextField(blank=True)
    text = models.TextField(blank=True)
    text_generated = models.BooleanField(default=False)
    # social / ads
    body = models.TextField(blank=True)
    headline = models.CharField(max_length=255, blank=True)
    link_url = models.URLField(max_length=2000, blank=True)
    asset_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["content_id", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["content", "channel"], name="pub_version_unique_channel")
        ]

    def __str__(self) -> str:
        return f"{self.content_id}/{self.channel}"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    MISSED = "missed", "Missed schedule"
    SENDING = "sending", "Sending"
    PAUSED = "paused", "Paused"
    SENT = "sent", "Sent"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class Campaign(WorkspaceOwned):
    """An email send of one content to an audience. ``audience`` is
    ``{"segments": [ids], "lists": [ids], "exclude_segments": [ids], "exclude_lists": [ids]}``."""

    name = models.CharField(max_length=200)
    content = models.ForeignKey(Content, on_delete=models.PROTECT, related_name="campaigns")
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    status = models.CharField(
        max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT, db_index=True
    )
    audience = models.JSONField(default=dict, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    scheduled_at = models.DateTimeField(null=True, blank=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    waiting_reason = models.TextField(blank=True)
    snapshot = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # UTM parameters added to every tracked link (utm_source, utm_medium, utm_campaign, utm_content,
    # utm_term); a link that already carries a utm_* parameter keeps its own value.
    utm = models.JSONField(default=dict, blank=True)
    max_per_second = models.PositiveIntegerField(null=True, blank=True)
    max_per_hour = models.PositiveIntegerField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "scheduled_at"], name="pub_campaign_due")]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    UNCERTAIN = "uncertain", "Uncertain"
    SKIPPED = "skipped", "Skipped"
    HELD = "held", "Held for the A/B winner"


TERMINAL_DELIVERY_STATUSES = (
    DeliveryStatus.SENT,
    DeliveryStatus.FAILED,
    DeliveryStatus.UNCERTAIN,
    DeliveryStatus.SKIPPED,
)


class Delivery(WorkspaceOwned):
    """One recipient of one campaign. ``send_started_at`` is written (committed) just before the provider
    call: a crashed claim with it set was possibly sent (uncertain); without it, it was never attempted."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="deliveries")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    email = models.EmailField(max_length=254)
    token = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    skip_reason = models.CharField(max_length=30, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    send_started_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    provider = models.CharField(max_length=60, blank=True)
    error = models.TextField(blank=True)
    variant = models.ForeignKey(
        "ABVariant", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )

    class Meta:
        ordering = ["campaign_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "contact"], name="pub_delivery_unique_contact"),
        ]
        indexes = [models.Index(fields=["campaign", "status"], name="pub_delivery_campaign_status")]

    def __str__(self) -> str:
        return f"{self.email} ({self.status})"


class TrackedLink(WorkspaceOwned):
    """A link of a campaign's HTML; clicks redirect only to ``url`` through a signed token on ``key``."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="links")
    key = models.CharField(max_length=32, unique=True)
    url = models.URLField(max_length=2000)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "url"], name="pub_link_unique_url")]


class EngagementKind(models.TextChoices):
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    OPEN = "open", "Open"
    CLICK = "click", "Click"
    REPLY = "reply", "Reply"
    BOUNCE_HARD = "bounce_hard", "Hard bounce"
    BOUNCE_SOFT = "bounce_soft", "Soft bounce"
    COMPLAINT = "complaint", "Complaint"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe"
    CONVERSION = "conversion", "Conversion"


class EngagementEvent(WorkspaceOwned):
    kind = models.CharField(max_length=12, choices=EngagementKind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    delivery = models.ForeignKey(Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    occurred_at = models.DateTimeField()
    value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    machine = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    # Set for events that must be recorded once: a provider's event id, a conversion's order id.
    dedupe_key = models.CharField(max_length=200, blank=True, default="")
    # Set by buffered ingestion (services/event_buffer.py): a re-drained record is not inserted twice.
    key = models.CharField(max_length=32, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "kind", "occurred_at"], name="pub_event_ws_kind_time"),
            models.Index(fields=["campaign", "kind", "occurred_at"], name="pub_event_campaign_kind"),
            models.Index(fields=["contact", "occurred_at"], name="pub_event_contact_time"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=EngagementKind.values), name="pub_event_kind_valid"),
            models.UniqueConstraint(
                fields=["workspace", "dedupe_key"],
                condition=~Q(dedupe_key=""),
                name="pub_event_unique_dedupe",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.occurred_at:%Y-%m-%d %H:%M}"


class InboundProvider(models.TextChoices):
    MAILGUN = "mailgun", "Mailgun"
    POSTMARK = "postmark", "Postmark"
    SENDGRID = "sendgrid", "SendGrid"
    AMAZON_SES = "amazon_ses", "Amazon SES (SNS)"
    BREVO = "brevo", "Brevo"


class InboundHook(WorkspaceOwned):
    """A provider's tracking webhook for one workspace: the URL carries the random ``key``; requests are
    verified with its secret, stored encrypted (Mailgun: webhook signing key; Postmark, Amazon SES and Brevo:
    basic auth ``user:password``; SendGrid: the signed event webhook's public key, base64 DER).

    Amazon SNS subscriptions are confirmed by a person: a verified ``SubscriptionConfirmation`` stores the
    confirmation link (built by us for ``sns.<region>.amazonaws.com`` from the topic ARN and token, never
    the URL in the request) in ``confirm_url`` until the first notification arrives."""

    provider = models.CharField(max_length=20, choices=InboundProvider.choices)
    key = models.CharField(max_length=32, unique=True)
    secret_encrypted = EncryptedTokenField()
    created_at = models.DateTimeField(auto_now_add=True)
    confirm_url = models.URLField(max_length=2048, blank=True)
    confirm_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["provider", "id"]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} webhook"


class ABMetric(models.TextChoices):
    OPENS = "opens", "Unique human opens"
    CLICKS = "clicks", "Unique human clicks"
    CONVERSIONS = "conversions", "Conversions"


class ABPhase(models.TextChoices):
    TESTING = "testing", "Testing"
    AWAITING_CHOICE = "awaiting_choice", "Waiting for a person to choose"
    DECIDED = "decided", "Winner sent to the rest"


class ABTest(WorkspaceOwned):
    """A/B test of a campaign: the variants go to a seeded ``test_share`` % sample; after ``wait_minutes``
    the winner by ``metric`` goes to the rest (held deliveries), automatically or on a person's choice."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="abtest")
    test_share = models.PositiveSmallIntegerField(default=20)
    metric = models.CharField(max_length=12, choices=ABMetric.choices, default=ABMetric.OPENS)
    wait_minutes = models.PositiveIntegerField(default=240)
    auto_winner = models.BooleanField(default=True)
    seed = models.BigIntegerField()
    phase = models.CharField(max_length=16, choices=ABPhase.choices, default=ABPhase.TESTING)
    winner = models.ForeignKey(
        "ABVariant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    result = models.JSONField(default=dict, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(test_share__gte=1, test_share__lte=90), name="pub_abtest_share_range"
            )
        ]

    @property
    def verdict(self) -> str:
        """ "significant" / "not yet" for the last evaluation (p < 0.05), "not evaluated" before one."""
        if not self.result:
            return "not evaluated"
        return "significant" if self.result.get("significant") else "not yet"


class ABVariant(WorkspaceOwned):
    """One variant: a subject override and/or another content's email version (blank: the campaign's)."""

    abtest = models.ForeignKey(ABTest, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(max_length=20)
    subject = models.CharField(max_length=300, blank=True)
    content = models.ForeignKey(Content, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["label"]
        constraints = [models.UniqueConstraint(fields=["abtest", "label"], name="pub_variant_unique_label")]

    def __str__(self) -> str:
        return self.label


class DkimKey(WorkspaceOwned):
    """A DKIM key of one sending domain (RFC 6376): mail whose From address is on ``domain`` is signed
    with the domain's active key. The private key (PKCS#1 PEM) is stored encrypted like provider
    credentials (``gateway.crypto``) and never shown again; ``public_key`` is the base64 DER
    SubjectPublicKeyInfo published at ``<selector>._domainkey.<domain>``. Rotation: add a key with a new
    selector, publish its record, activate it; the old record stays published until mail signed with it
    has been delivered."""

    domain = models.CharField(max_length=253)  # lowercase A-label
    selector = models.CharField(max_length=63)
    private_key_encrypted = EncryptedTokenField()
    public_key = models.TextField()
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["domain", "-active", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "domain", "selector"], name="pub_dkim_unique_selector"
            ),
            models.UniqueConstraint(
                fields=["workspace", "domain"], condition=Q(active=True), name="pub_dkim_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


class WebhookEventType(models.TextChoices):
    """The outbound webhook events (docs/PUBLISHING.md, "Webhooks"): stable names integrators subscribe to."""

    CAMPAIGN_SCHEDULED = "campaign.scheduled", "Campaign scheduled"
    CAMPAIGN_SENT = "campaign.sent", "Campaign sent"
    CAMPAIGN_FAILED = "campaign.failed", "Campaign failed"
    EMAIL_DELIVERED = "email.delivered", "Email delivered"
    EMAIL_OPENED = "email.opened", "Email opened"
    EMAIL_CLICKED = "email.clicked", "Email link clicked"
    EMAIL_REPLIED = "email.replied", "Email replied to"
    EMAIL_BOUNCED = "email.bounced", "Email bounced"
    EMAIL_COMPLAINED = "email.complained", "Spam complaint"
    CONTACT_UNSUBSCRIBED = "contact.unsubscribed", "Contact unsubscribed"
    CONVERSION_RECORDED = "conversion.recorded", "Conversion recorded"


WEBHOOK_TEST_EVENT = "webhook.test"  # sent by "Send test event" whatever the subscription


class WebhookEndpoint(WorkspaceOwned):
    """A receiver URL of the workspace and the events it subscribed to. The ``whsec_…`` signing secret is
    stored encrypted like provider credentials (``gateway.crypto``) and shown once, at creation and on
    rotation. ``active`` False: nothing is delivered; ``disabled_reason`` says why (410 Gone, too many
    failed deliveries in a row, or an admin)."""

    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list)
    secret_encrypted = EncryptedTokenField(editable=False)
    secret_hint = models.CharField(max_length=20, blank=True, editable=False)
    active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "active"], name="pub_webhook_ws_active")]

    def __str__(self) -> str:
        return self.description or self.url


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    DISCARDED = "discarded", "Discarded"


class WebhookDelivery(WorkspaceOwned):
    """One event for one endpoint. ``event_id`` is the ``webhook-id`` header, the same on every attempt, so
    a receiver dedupes retries. Due when ``status`` is pending/retrying and ``next_attempt_at`` has passed;
    ``claimed_until`` is the lease of an attempt in flight, ``enqueued_at`` when a task was queued for it."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=80)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()
    status = models.CharField(
        max_length=10, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="pub_whdelivery_due"),
            models.Index(fields=["endpoint", "created_at"], name="pub_whdelivery_endpoint"),
            models.Index(fields=["status", "finished_at"], name="pub_whdelivery_finished"),  # retention
        ]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="pub_whdelivery_unique_event"),
            models.CheckConstraint(
                condition=Q(status__in=WebhookDeliveryStatus.values), name="pub_whdelivery_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({self.status})"
