"""Cross-cutting core tables: workspaces (tenancy), memberships, API keys, jobs and the audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MARKETER = "marketer", "Marketer"
    REVIEWER = "reviewer", "Reviewer"
    VIEWER = "viewer", "Viewer"


def default_time_zone() -> str:
    """A new workspace's zone: the server's ``TIME_ZONE`` (changed later on the settings page)."""
    return settings.TIME_ZONE


class Workspace(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # IANA name; the calendar days of schedules and analytics, and what members read unless they chose
    # their own zone (aicmo/timezones.py).
    time_zone = models.CharField(max_length=64, default=default_time_zone)
    # Admins of this workspace must use two-factor authentication on the dashboard and admin (aicmo/twofactor.py).
    admins_require_two_factor = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class UserPreferences(models.Model):
    """Per-person settings that are not about one workspace."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences"
    )
    # IANA name the person reads times in; blank follows the current workspace's zone.
    time_zone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"preferences of {self.user}"


class WorkspaceQuerySet(models.QuerySet):
    def for_workspace(self, workspace: Workspace | int | None):
        if workspace is None:
            return self.none()
        return self.filter(workspace=workspace)


class WorkspaceOwned(models.Model):
    """Every tenant-owned row carries its workspace; `for_workspace` is the one scoping filter."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        abstract = True


class Membership(WorkspaceOwned):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique_user")]
        ordering = ["workspace_id", "user_id"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.workspace_id} ({self.role})"


class ApiKey(WorkspaceOwned):
    """An API key: only a SHA-256 of the secret is stored; the full key is shown once at creation."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=64, unique=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Optional: after this instant the key answers 401 like a revoked one (checked on every request).
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        from django.utils import timezone

        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_JOB_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(WorkspaceOwned):
    """A long operation (import, enrichment run, send, rendition build) with progress an operator can read."""

    kind = models.CharField(max_length=50, db_index=True)
    label = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(done__gte=0) & Q(failed__gte=0), name="job_counts_non_negative"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def processed(self) -> int:
        return self.done + self.failed

    @property
    def percent(self) -> int:
        if self.total <= 0:
            return 100 if self.is_finished else 0
        return min(100, int(self.processed * 100 / self.total))

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_JOB_STATUSES


class JobError(WorkspaceOwned):
    """One item that failed inside a job: what it was and why, readable by an operator."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="errors")
    item = models.CharField(max_length=255, blank=True)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.item}: {self.message[:60]}"


class AuditEvent(WorkspaceOwned):
    """Who did what to which object, when. Written by services, never edited."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)
    verb = models.CharField(max_length=60, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "-at"]),
            models.Index(fields=["target_type", "target_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label or 'system'} {self.verb} {self.target_repr}"


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    EXPIRED = "expired", "Expired"
    ACCEPTED = "accepted", "Accepted"
    REVOKED = "revoked", "Revoked"


class Invitation(WorkspaceOwned):
    """An admin's invitation of an email address to the workspace with a role.

    The link's token is never stored: ``nonce`` is random and the token is an HMAC of it under SECRET_KEY
    (so the dashboard and the mail task can rebuild the link from the row), and only ``token_hash``
    (SHA-256 of the token) is used to find the row. A resend replaces the nonce, which kills the old link.
    """

    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    nonce = models.CharField(max_length=64)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    sent_token_hash = models.CharField(max_length=64, blank=True)  # the token the last delivered mail carried
    sent_at = models.DateTimeField(null=True, blank=True)
    send_provider = models.CharField(max_length=100, blank=True)
    send_demo = models.BooleanField(default=False)
    send_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.workspace_id} ({self.role})"

    def status_at(self, now) -> str:
        if self.accepted_at is not None:
            return InvitationStatus.ACCEPTED
        if self.revoked_at is not None:
            return InvitationStatus.REVOKED
        if self.expires_at <= now:
            return InvitationStatus.EXPIRED
        return InvitationStatus.PENDING

    @property
    def status(self) -> str:
        return self.status_at(timezone.now())
