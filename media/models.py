"""Media tables: libraries, assets (with content hashes and extracted metadata), renditions, usage,
per-channel performance and optimization suggestions."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from django.db.models import Q

from aicmo.models import WorkspaceOwned


class AssetKind(models.TextChoices):
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"
    GIF = "gif", "GIF"
    AUDIO = "audio", "Audio"
    DOCUMENT = "document", "Document"
    SVG = "svg", "SVG"
    OTHER = "other", "Other"


class AssetStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    PUBLISHED = "published", "Published"
    ARCHIVED = "archived", "Archived"


def asset_upload_to(instance: MediaAsset, filename: str) -> str:
    """Generated storage name: the user's file name never reaches the storage path."""
    ext = PurePosixPath(filename).suffix.lower()[:8]
    token = uuid.uuid4().hex
    return f"assets/{instance.workspace_id}/{token[:2]}/{token}{ext}"


def rendition_upload_to(instance: Rendition, filename: str) -> str:
    ext = PurePosixPath(filename).suffix.lower()[:8]
    token = uuid.uuid4().hex
    return f"renditions/{instance.workspace_id}/{token[:2]}/{token}{ext}"


class MediaLibrary(WorkspaceOwned):
    # Uploads that name no library go to this one (API and dashboard: services.library_get_default).
    DEFAULT_NAME = "Main library"

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    archived_at = models.DateTimeField(
        null=True, blank=True, help_text="Set: hidden from upload and move choices; uploads into it refused."
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="media_library_unique_name")
        ]
        verbose_name_plural = "media libraries"

    def __str__(self) -> str:
        return self.name

    @property
    def is_default(self) -> bool:
        return self.name == self.DEFAULT_NAME


class Tag(WorkspaceOwned):
    name = models.CharField(max_length=60)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="media_tag_unique_name")]

    def __str__(self) -> str:
        return self.name


class MediaAsset(WorkspaceOwned):
    library = models.ForeignKey(MediaLibrary, on_delete=models.PROTECT, related_name="assets")
    kind = models.CharField(max_length=10, choices=AssetKind.choices, db_index=True)
    status = models.CharField(
        max_length=10, choices=AssetStatus.choices, default=AssetStatus.DRAFT, db_index=True
    )
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    alt_text = models.CharField(max_length=500, blank=True)
    category = models.CharField(max_length=60, blank=True, db_index=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="assets")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    file = models.FileField(upload_to=asset_upload_to, max_length=255)
    original_filename = models.CharField(
        max_length=255, blank=True, help_text="The client's name, escaped; metadata only, never served."
    )
    filename = models.CharField(
        max_length=140,
        blank=True,
        help_text="Served name: a safe stem plus the extension of the detected type.",
    )
    mime_type = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64, db_index=True)
    sanitized = models.BooleanField(default=False, help_text="Stored content was rewritten (SVG sanitizer).")

    # Perceptual hash (64 bits as hex) and its four 16-bit bands for indexed near-duplicate lookup.
    phash = models.CharField(max_length=16, blank=True)
    phash_b0 = models.PositiveIntegerField(null=True, blank=True)
    phash_b1 = models.PositiveIntegerField(null=True, blank=True)
    phash_b2 = models.PositiveIntegerField(null=True, blank=True)
    phash_b3 = models.PositiveIntegerField(null=True, blank=True)
    colour_moments = models.CharField(
        max_length=12,
        blank=True,
        help_text="Mean and stddev of R, G, B (hex bytes): the second near-duplicate check.",
    )
    detail = models.FloatField(
        null=True,
        blank=True,
        help_text="Greyscale stddev of a 32×32 thumbnail; low-detail images get no pHash.",
    )

    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    aspect_ratio = models.FloatField(null=True, blank=True)
    format = models.CharField(max_length=20, blank=True)
    color_mode = models.CharField(max_length=10, blank=True)
    has_alpha = models.BooleanField(default=False)
    size_bytes = models.PositiveBigIntegerField(default=0)
    duration_seconds = models.FloatField(null=True, blank=True)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    frame_count = models.PositiveIntegerField(null=True, blank=True)
    video_codec = models.CharField(max_length=40, blank=True, help_text="ffprobe codec name, e.g. h264, vp9.")
    exif_orientation_applied = models.BooleanField(default=False)
    focal_x = models.FloatField(default=0.5, help_text="Smart-crop focal point, 0..1 from the left.")
    focal_y = models.FloatField(default=0.5, help_text="Smart-crop focal point, 0..1 from the top.")

    review_note = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "sha256"], name="media_asset_unique_sha256"),
            models.CheckConstraint(
                condition=Q(focal_x__gte=0) & Q(focal_x__lte=1) & Q(focal_y__gte=0) & Q(focal_y__lte=1),
                name="media_asset_focal_in_unit_square",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "phash_b0"], name="media_asset_phash_b0"),
            models.Index(fields=["workspace", "phash_b1"], name="media_asset_phash_b1"),
            models.Index(fields=["workspace", "phash_b2"], name="media_asset_phash_b2"),
            models.Index(fields=["workspace", "phash_b3"], name="media_asset_phash_b3"),
            models.Index(fields=["workspace", "library", "-created_at"], name="media_asset_library_recent"),
        ]

    def __str__(self) -> str:
        return self.title or self.original_filename or f"asset {self.pk}"

    @property
    def is_raster(self) -> bool:
        return self.kind in (AssetKind.IMAGE, AssetKind.GIF)

    @property
    def can_be_attached(self) -> bool:
        return self.status not in (AssetStatus.ARCHIVED, AssetStatus.REJECTED)


class Rendition(WorkspaceOwned):
    """A derived file for one channel spec. `source_key` says which source/focal point it was built from."""

    asset = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="renditions")
    spec = models.CharField(max_length=40)
    file = models.FileField(upload_to=rendition_upload_to, max_length=255)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=10)
    size_bytes = models.PositiveBigIntegerField()
    source_key = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["asset_id", "spec"]
        constraints = [models.UniqueConstraint(fields=["asset", "spec"], name="media_rendition_unique_spec")]

    def __str__(self) -> str:
        return f"{self.spec} of {self.asset_id} ({self.width}×{self.height} {self.format})"


class AssetUsage(WorkspaceOwned):
    """Which content/campaign uses the asset on which channel. `ref` is the caller's stable id of the content."""

    asset = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="usages")
    ref = models.CharField(max_length=120, help_text='e.g. "publishing.content:42"')
    campaign = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=40, blank=True)
    used_at = models.DateTimeField()

    class Meta:
        ordering = ["-used_at"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "ref", "channel"], name="media_usage_unique_ref_channel")
        ]
        indexes = [models.Index(fields=["workspace", "-used_at"], name="media_usage_recent")]

    def __str__(self) -> str:
        return f"{self.asset_id} in {self.ref} ({self.channel})"


class AssetPerformance(WorkspaceOwned):
    asset = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="performance")
    channel = models.CharField(max_length=40)
    date = models.DateField()
    impressions = models.PositiveBigIntegerField(default=0)
    clicks = models.PositiveBigIntegerField(default=0)
    engagements = models.PositiveBigIntegerField(default=0)
    conversions = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-date", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "channel", "date"], name="media_perf_unique_day"),
        ]
        indexes = [models.Index(fields=["workspace", "channel", "date"], name="media_perf_channel_day")]

    def __str__(self) -> str:
        return f"{self.asset_id} {self.channel} {self.date}"


class SuggestionCode(models.TextChoices):
    OVERSIZED = "oversized", "Oversized file"
    CONVERT_FORMAT = "convert_format", "Convert format"
    DIMENSIONS = "dimensions", "Dimensions miss a channel spec"
    LOW_CTR = "low_ctr", "Low CTR against peers"
    UNUSED = "unused", "Unused for 90 days"
    MISSING_ALT = "missing_alt", "Missing alt text"


class SuggestionStatus(models.TextChoices):
    OPEN = "open", "Open"
    DISMISSED = "dismissed", "Dismissed"
    DONE = "done", "Done"


class Suggestion(WorkspaceOwned):
    """An optimization suggestion computed from measured numbers; recomputation keeps dismissals."""

    asset = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="suggestions")
    code = models.CharField(max_length=20, choices=SuggestionCode.choices)
    message = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    saving_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=SuggestionStatus.choices, default=SuggestionStatus.OPEN, db_index=True
    )
    computed_at = models.DateTimeField()
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["asset_id", "code"]
        constraints = [models.UniqueConstraint(fields=["asset", "code"], name="media_suggestion_unique_code")]

    def __str__(self) -> str:
        return f"{self.get_code_display()}: {self.message}"

    @property
    def actionable(self) -> bool:
        return self.code in (
            SuggestionCode.OVERSIZED,
            SuggestionCode.CONVERT_FORMAT,
            SuggestionCode.DIMENSIONS,
        )
