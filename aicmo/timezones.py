"""Time zones: each workspace has one (its calendar days for schedules and analytics), each person may
choose their own for reading pages (default: the workspace's).

Pages render times in the reader's zone: :class:`TimeZoneMiddleware` activates it for every signed-in
page request (Django then converts aware datetimes in templates and interprets naive form input in it).
The person's choice is stored in ``UserPreferences`` and mirrored into their session when they log in and
when they change it (Django's documented per-session pattern), so a page costs no extra query; another
device already signed in picks a change up at its next login.
The API is left alone: its times are always ISO 8601 in UTC, whoever calls. Zone names are IANA names
(``Europe/Berlin``) as ``zoneinfo`` knows them.

When a workspace's zone changes, every dotted path in ``settings.AICMO_WORKSPACE_ZONE_CHANGED`` is called
with the workspace id after the change commits (analytics re-rolls its daily figures into the new days) —
the same late-bound hook pattern as ``AICMO_RETENTION``.
"""

from __future__ import annotations

import zoneinfo
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from .audit import audit_record
from .models import UserPreferences, Workspace


@cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name zoneinfo can load, sorted (≈ 600), for pickers and validation."""
    return tuple(sorted(zoneinfo.available_timezones()))


def zone_choices(blank_label: str | None = None) -> list[tuple[str, str]]:
    """(name, label) pairs for a form's zone picker; a first ``("", blank_label)`` choice when given."""
    choices = [(name, name.replace("_", " ")) for name in zone_names()]
    return [("", blank_label), *choices] if blank_label is not None else choices


def zone_clean(value, *, field: str = "time_zone", blank: bool = False) -> str:
    """A known IANA zone name (surrounding space stripped), or ``""`` when ``blank`` allows it;
    ``ValidationError({field: ...})`` otherwise. Case matters, as in the tz database."""
    name = value.strip() if isinstance(value, str) else ""
    if not name and blank:
        return ""
    if name not in zone_names():
        raise ValidationError(
            {field: "Not a known time zone name (e.g. Europe/Berlin, America/New_York, UTC)."}
        )
    return name


def workspace_zone_name(workspace: Workspace | int) -> str:
    """The workspace's IANA zone name (one query when given an id)."""
    if isinstance(workspace, Workspace):
        return workspace.time_zone
    return (
        Workspace.objects.filter(pk=workspace).values_list("time_zone", flat=True).first()
        or settings.TIME_ZONE
    )


def workspace_time_zone_set(*, workspace: Workspace, time_zone: str, by=None) -> Workspace:
    """Change the workspace's zone (audited); the ``AICMO_WORKSPACE_ZONE_CHANGED`` hooks run after commit.
    ``ValidationError({"time_zone": ...})`` for an unknown name."""
    name = zone_clean(time_zone)
    with transaction.atomic():
        workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
        before = workspace.time_zone
        if before == name:
            return workspace
        workspace.time_zone = name
        workspace.save(update_fields=["time_zone"])
        audit_record(
            workspace=workspace,
            actor=by,
            verb="workspace.time_zone_changed",
            target=workspace,
            changes={"time_zone": [before, name]},
        )
        for path in settings.AICMO_WORKSPACE_ZONE_CHANGED:
            hook = import_string(path)
            transaction.on_commit(lambda hook=hook, pk=workspace.pk: hook(pk))
    return workspace


SESSION_KEY = "aicmo_time_zone"


def user_time_zone_set(*, user, time_zone: str, session=None) -> UserPreferences:
    """The person's reading zone; ``""`` follows the current workspace's. Given the caller's ``session``,
    it takes effect there at once. ``ValidationError`` as above."""
    name = zone_clean(time_zone, blank=True)
    preferences, _ = UserPreferences.objects.update_or_create(user=user, defaults={"time_zone": name})
    if session is not None:
        session[SESSION_KEY] = name
    return preferences


def user_time_zone(user) -> str:
    """The person's chosen zone name, ``""`` when they follow the workspace's (one query)."""
    return UserPreferences.objects.filter(user=user).values_list("time_zone", flat=True).first() or ""


def session_zone_load(sender, request, user, **kwargs) -> None:
    """``user_logged_in`` receiver: copy the person's choice into the new session."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = user_time_zone(user)


def reading_zone(request) -> str:
    """The zone pages show to this request's user: their own choice (from the session), else the bound
    workspace's, else ``settings.TIME_ZONE``."""
    tenant = getattr(request, "tenant", None)
    chosen = request.session.get(SESSION_KEY, "") if hasattr(request, "session") else ""
    return chosen or (tenant.workspace.time_zone if tenant else "") or settings.TIME_ZONE


class TimeZoneMiddleware:
    """Activates the reader's zone for signed-in page requests (after ``WorkspaceMiddleware``); API
    requests keep UTC."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or request.path.startswith("/api/"):
            return self.get_response(request)
        try:
            timezone.activate(zoneinfo.ZoneInfo(reading_zone(request)))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # a zone removed from tzdata since it was saved
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
