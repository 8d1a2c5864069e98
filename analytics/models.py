"""Analytics tables: orders (the revenue input of lifetime value and attribution), daily rollups per
campaign × channel × variant, exact per-campaign unique counts, and the rollup watermark.

Only analytics writes these tables; every dashboard and API figure reads the rollups, never raw events.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from aicmo.models import WorkspaceOwned
from crm.models import Contact
from publishing.models import Campaign, Channel


class OrderSource(models.TextChoices):
    CONVERSION = "conversion", "Conversion event"
    IMPORT = "import", "Import"
    API = "api", "API"


class Order(WorkspaceOwned):
    """One transaction. ``external_id`` is the shop's order id, unique per workspace (the idempotency key
    of the API and the import). ``contact`` becomes null when the contact is erased; the order stays so
    revenue totals do not change retroactively."""

    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    external_id = models.CharField(max_length=100)
    ordered_at = models.DateTimeField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    source = models.CharField(max_length=12, choices=OrderSource.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-ordered_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "external_id"], name="analytics_order_unique_extid"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="analytics_order_amount_non_negative"),
        ]
        indexes = [
            models.Index(fields=["workspace", "ordered_at"], name="analytics_order_ws_time"),
            models.Index(fields=["contact", "ordered_at"], name="analytics_order_contact_time"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} {self.amount} {self.currency}"


class Counters(models.Model):
    """The counters both rollup tables carry. Unique counts are COUNT(DISTINCT delivery)."""

    sent = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    opens = models.PositiveIntegerField(default=0)
    unique_opens_human = models.PositiveIntegerField(default=0)
    unique_opens_machine = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    unique_clicks = models.PositiveIntegerField(default=0)
    replies = models.PositiveIntegerField(default=0)
    bounces = models.PositiveIntegerField(default=0)
    unsubscribes = models.PositiveIntegerField(default=0)
    complaints = models.PositiveIntegerField(default=0)
    conversions = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    spend = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    impressions = models.PositiveBigIntegerField(default=0)
    engagements = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


COUNTER_FIELDS = (
    "sent",
    "delivered",
    "opens",
    "unique_opens_human",
    "unique_opens_machine",
    "clicks",
    "unique_clicks",
    "replies",
    "bounces",
    "unsubscribes",
    "complaints",
    "conversions",
    "revenue",
    "spend",
    "impressions",
    "engagements",
)
UNIQUE_FIELDS = ("unique_opens_human", "unique_opens_machine", "unique_clicks")


class DailyRollup(WorkspaceOwned, Counters):
    """One workspace-local day of one campaign × channel × variant. Unique counts are unique *that day*."""

    day = models.DateField()
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    variant = models.CharField(max_length=40, blank=True, default="")

    class Meta:
        ordering = ["day", "campaign_id", "channel", "variant"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "channel", "variant", "day"], name="analytics_daily_unique_key"
            )
        ]
        indexes = [models.Index(fields=["workspace", "day"], name="analytics_daily_ws_day")]

    def __str__(self) -> str:
        return f"{self.day} campaign {self.campaign_id} {self.channel} {self.variant or '-'}"


class CampaignRollup(WorkspaceOwned, Counters):
    """All-time totals of one campaign × channel × variant: sums of its daily rows, except the unique
    counts, which are recomputed as COUNT(DISTINCT delivery) over the campaign's events (exact)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    variant = models.CharField(max_length=40, blank=True, default="")
    first_day = models.DateField(null=True, blank=True)
    last_day = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign_id", "channel", "variant"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "channel", "variant"], name="analytics_campaign_unique_key"
            )
        ]
        indexes = [models.Index(fields=["workspace", "campaign"], name="analytics_campaign_ws")]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} {self.channel} {self.variant or '-'}"


class RollupWatermark(WorkspaceOwned):
    """The highest engagement event id already folded into the workspace's rollups."""

    last_event_id = models.BigIntegerField(default=0)
    rolled_at = models.DateTimeField(null=True, blank=True)
    # Raw events before this instant may have been pruned (publishing's retention): older days are never
    # rebuilt from raw events again; their daily rows are the record. Null: nothing pruned yet.
    pruned_before = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace"], name="analytics_watermark_unique_ws")]

    def __str__(self) -> str:
        return f"workspace {self.workspace_id} at event {self.last_event_id}"


class ScoreSettings(WorkspaceOwned):
    """A workspace's engagement-score rule (see `analytics.scoring` for the formula and the defaults).

    ``weights`` maps an engagement kind to its points (0–100; kinds left out weigh 0). ``scale`` is the raw
    sum that normalizes to 63 (100 × (1 − e⁻¹)). Tier thresholds are score lower bounds."""

    weights = models.JSONField(default=dict, blank=True)
    half_life_days = models.FloatField(default=30.0)
    scale = models.FloatField(default=10.0)
    high_threshold = models.PositiveSmallIntegerField(default=70)
    medium_threshold = models.PositiveSmallIntegerField(default=40)
    low_threshold = models.PositiveSmallIntegerField(default=10)
    inactive_days = models.PositiveIntegerField(default=90)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "score settings"
        constraints = [
            models.UniqueConstraint(fields=["workspace"], name="analytics_scoresettings_unique_ws"),
            models.CheckConstraint(
                condition=Q(half_life_days__gt=0), name="analytics_scoresettings_half_life"
            ),
            models.CheckConstraint(condition=Q(scale__gt=0), name="analytics_scoresettings_scale"),
            models.CheckConstraint(
                condition=Q(high_threshold__lte=100)
                & Q(medium_threshold__lt=models.F("high_threshold"))
                & Q(low_threshold__lt=models.F("medium_threshold")),
                name="analytics_scoresettings_thresholds",
            ),
        ]

    def __str__(self) -> str:
        return f"score settings of workspace {self.workspace_id}"


class ContactScore(WorkspaceOwned):
    """The decayed raw sum of one contact at ``raw_at`` (decay is multiplicative, so the daily pass ages it
    without reading events), its last human event and the score/tier last written to the contact."""

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="+")
    raw = models.FloatField(default=0.0)
    raw_at = models.DateTimeField()
    last_human_at = models.DateTimeField(null=True, blank=True)
    score = models.PositiveSmallIntegerField(default=0)
    tier = models.CharField(max_length=10, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "contact"], name="analytics_cscore_ws_contact")]

    def __str__(self) -> str:
        return f"contact {self.contact_id}: {self.score} ({self.tier})"


class ScoreHistory(WorkspaceOwned):
    """A contact's score and tier at the end of a workspace-local day on which either changed."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    score = models.PositiveSmallIntegerField()
    tier = models.CharField(max_length=10)

    class Meta:
        ordering = ["contact_id", "day"]
        constraints = [
            models.UniqueConstraint(fields=["contact", "day"], name="analytics_scorehistory_unique_day")
        ]

    def __str__(self) -> str:
        return f"contact {self.contact_id} {self.day}: {self.score}"


class ScoreWatermark(WorkspaceOwned):
    """The highest engagement event id already scored, and the local day of the last decay pass."""

    last_event_id = models.BigIntegerField(default=0)
    scored_at = models.DateTimeField(null=True, blank=True)
    decayed_on = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace"], name="analytics_scorewm_unique_ws")]

    def __str__(self) -> str:
        return f"workspace {self.workspace_id} scored to event {self.last_event_id}"


class LifetimeFit(WorkspaceOwned):
    """One fit of the lifetime-value models (`analytics.lifetime`): the observation date the summary was
    built as of, the horizon and discount of the CLV, the parameters and diagnostics (JSON shapes of
    `analytics.clv.Fit.as_dict` and `Calibration.as_dict`). Per-contact results are `CustomerValue` rows."""

    job = models.ForeignKey("aicmo.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    observation_date = models.DateField()
    holdout_end = models.DateField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    months = models.PositiveSmallIntegerField()
    monthly_discount = models.FloatField()
    customers = models.PositiveIntegerField(default=0)
    bgnbd = models.JSONField(default=dict, blank=True)
    gamma_gamma = models.JSONField(default=dict, blank=True)
    calibration = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="analytics_ltfit_ws_created")]

    def __str__(self) -> str:
        return f"fit {self.pk} as of {self.observation_date}"


class CustomerValue(WorkspaceOwned):
    """A contact's lifetime value as of the latest finished fit: history (orders, revenue, AOV, first/last
    order day), the model inputs (repeat purchase days, recency and age in days), the predictions over the
    fit's horizon and the RFM quintile scores and segment. One row per contact, replaced by each fit."""

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="+")
    fit = models.ForeignKey(LifetimeFit, on_delete=models.CASCADE, related_name="values")
    orders = models.PositiveIntegerField()
    revenue = models.DecimalField(max_digits=16, decimal_places=2)
    aov = models.DecimalField(max_digits=16, decimal_places=2)
    first_order = models.DateField()
    last_order = models.DateField()
    frequency = models.PositiveIntegerField()
    recency_days = models.PositiveIntegerField()
    age_days = models.PositiveIntegerField()
    expected_purchases = models.FloatField(null=True)
    p_alive = models.FloatField(null=True)
    expected_spend = models.FloatField(null=True)
    clv = models.FloatField(null=True)
    r_score = models.PositiveSmallIntegerField()
    f_score = models.PositiveSmallIntegerField()
    m_score = models.PositiveSmallIntegerField()
    segment = models.CharField(max_length=24)

    class Meta:
        ordering = [models.F("clv").desc(nulls_last=True), "contact_id"]  # unpredicted last, on any backend
        indexes = [
            models.Index(fields=["workspace", "clv"], name="analytics_cv_ws_clv"),
            models.Index(fields=["workspace", "segment"], name="analytics_cv_ws_segment"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(r_score__range=(1, 5)) & Q(f_score__range=(1, 5)) & Q(m_score__range=(1, 5)),
                name="analytics_cv_scores_1_5",
            )
        ]

    def __str__(self) -> str:
        return f"contact {self.contact_id} clv {self.clv}"


# A contact's figures of the latest fit, as the API and the contact 360 page show them.
CUSTOMER_VALUE_FIGURES = (
    "orders", "revenue", "aov", "first_order", "last_order", "frequency", "recency_days", "age_days",
    "expected_purchases", "p_alive", "expected_spend", "clv", "r_score", "f_score", "m_score", "segment",
)  # fmt: skip
