"""CRM tables: contacts, companies, tags, lists, lifecycle history, suppression, consent, enrichment, segments."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from aicmo.models import Job, WorkspaceOwned
from gateway.capabilities import Verdict  # one vocabulary for verdicts across providers


class Lifecycle(models.TextChoices):
    NEW = "new", "New"
    ENRICHED = "enriched", "Enriched"
    VERIFIED = "verified", "Verified"
    ENGAGED = "engaged", "Engaged"
    CONVERTED = "converted", "Converted"


class Tier(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"
    INACTIVE = "inactive", "Inactive"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    SOCIAL = "social", "Social"


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"
    MANUAL = "manual", "Manual"


class FieldType(models.TextChoices):
    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    DATE = "date", "Date"
    BOOL = "bool", "Yes/no"
    CHOICE = "choice", "Choice"


class Company(WorkspaceOwned):
    name = models.CharField(max_length=200, blank=True)
    domain = models.CharField(max_length=253)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "domain"]
        verbose_name_plural = "companies"
        constraints = [
            models.UniqueConstraint(fields=["workspace", "domain"], name="crm_company_unique_domain")
        ]

    def __str__(self) -> str:
        return self.name or self.domain


class Tag(WorkspaceOwned):
    name = models.CharField(max_length=80)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="crm_tag_unique_name")]

    def __str__(self) -> str:
        return self.name


class CustomFieldDefinition(WorkspaceOwned):
    """A per-workspace custom contact field; `Contact.custom[key]` is validated against its type."""

    key = models.SlugField(max_length=60)
    label = models.CharField(max_length=120)
    type = models.CharField(max_length=10, choices=FieldType.choices, default=FieldType.TEXT)
    choices = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="crm_customfield_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.type})"


class Contact(WorkspaceOwned):
    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    title = models.CharField(max_length=150, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    source = models.CharField(max_length=60, blank=True)
    custom = models.JSONField(default=dict, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="contacts")
    lifecycle = models.CharField(
        max_length=12, choices=Lifecycle.choices, default=Lifecycle.NEW, db_index=True
    )
    verification = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    last_engaged_at = models.DateTimeField(null=True, blank=True)
    engagement_score = models.PositiveSmallIntegerField(default=0)
    engagement_tier = models.CharField(max_length=10, choices=Tier.choices, blank=True)
    typed_fields = models.JSONField(default=list, blank=True)
    provenance = models.JSONField(default=dict, blank=True)
    enriched_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "email"], name="crm_contact_unique_email"),
            models.CheckConstraint(condition=Q(email=Lower("email")), name="crm_contact_email_lower"),
            models.CheckConstraint(condition=Q(engagement_score__lte=100), name="crm_contact_score_range"),
        ]
        indexes = [
            models.Index(fields=["workspace", "-created_at"]),
            models.Index(fields=["workspace", "lifecycle"]),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class ContactList(WorkspaceOwned):
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    contacts = models.ManyToManyField(Contact, through="ListMembership", related_name="lists", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="crm_list_unique_name")]

    def __str__(self) -> str:
        return self.name


class ListMembership(WorkspaceOwned):
    contact_list = models.ForeignKey(ContactList, on_delete=models.CASCADE, related_name="memberships")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="list_memberships")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact_list", "contact"], name="crm_listmembership_unique")
        ]


class LifecycleTransition(WorkspaceOwned):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.CharField(max_length=12, choices=Lifecycle.choices)
    to_stage = models.CharField(max_length=12, choices=Lifecycle.choices)
    reason = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]


class Suppression(WorkspaceOwned):
    """An active block on one channel; deleting it (resubscribe) is logged as a ConsentEvent."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="suppressions")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    reason = models.CharField(max_length=15, choices=SuppressionReason.choices)
    source = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["contact", "channel"], name="crm_suppression_unique")]


class ConsentEvent(WorkspaceOwned):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consent_events")
    kind = models.CharField(max_length=30)
    granted = models.BooleanField()
    source = models.CharField(max_length=100, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]


class EnrichmentRecord(WorkspaceOwned):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="enrichment_records")
    provider = models.CharField(max_length=60)
    raw_id = models.CharField(max_length=200, blank=True)
    matched = models.BooleanField(default=True)
    fetched_at = models.DateTimeField(db_index=True)
    fields = models.JSONField(default=dict, blank=True)
    credits_used = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    demo = models.BooleanField(default=False)

    class Meta:
        ordering = ["-fetched_at", "-id"]


class EnrichmentConflict(WorkspaceOwned):
    """A provider value that was not applied because another (typed or newer) value won."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="enrichment_conflicts")
    record = models.ForeignKey(EnrichmentRecord, on_delete=models.CASCADE, related_name="conflicts")
    field = models.CharField(max_length=60)
    current_value = models.TextField(blank=True)
    offered_value = models.TextField(blank=True)
    resolution = models.CharField(max_length=30)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class Segment(WorkspaceOwned):
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    rules = models.JSONField(default=dict)
    # Set when something the rules use (a custom field, a tag) was deleted or retyped under them; every
    # surface then refuses the segment with this reason until it is edited (saving clears it).
    broken_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="crm_segment_unique_name")]

    def __str__(self) -> str:
        return self.name


class ErasedAddress(WorkspaceOwned):
    """A GDPR-erased address, remembered only as a keyed hash so it cannot come back by import or API.

    `digest` is HMAC-SHA256 (hex) of the normalized email under the erasure key (see
    `crm.services.gdpr.erasure_digests`); the address itself is never stored."""

    digest = models.CharField(max_length=64)
    erased_at = models.DateTimeField()

    class Meta:
        ordering = ["-erased_at"]
        verbose_name_plural = "erased addresses"
        constraints = [
            models.UniqueConstraint(fields=["workspace", "digest"], name="crm_erasedaddress_unique_digest")
        ]

    def __str__(self) -> str:
        return f"erased address {self.digest[:12]}…"


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportRun(WorkspaceOwned):
    """One file import. `checkpoint_line` is the last line committed, so a re-run resumes after it."""

    job = models.OneToOneField(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="crm_import"
    )
    file = models.FileField(upload_to="crm/imports/%Y/%m/")
    original_name = models.CharField(max_length=255, blank=True)
    file_format = models.CharField(max_length=5, default="csv")
    mapping = models.JSONField(default=dict, blank=True)
    policy = models.CharField(max_length=12, default="update")
    tags = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=60, default="import")
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.PENDING)
    checkpoint_line = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import #{self.pk} {self.original_name}"


class ImportRowError(WorkspaceOwned):
    run = models.ForeignKey(ImportRun, on_delete=models.CASCADE, related_name="row_errors")
    line = models.PositiveIntegerField()
    column = models.CharField(max_length=120, blank=True)
    reason = models.CharField(max_length=300)
    value = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["line", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "line", "column"], name="crm_importrowerror_unique")
        ]
