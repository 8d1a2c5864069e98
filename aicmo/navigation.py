"""The dashboard's navigation: the five areas, listed only when the app ships dashboard pages."""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec

AREAS = (
    ("crm", "Contacts"),
    ("publishing", "Publishing"),
    ("analytics", "Analytics"),
    ("media", "Media"),
    ("gateway", "Gateway"),
)


@cache
def installed_areas() -> tuple[tuple[str, str], ...]:
    return tuple((app, label) for app, label in AREAS if find_spec(f"{app}.urls") is not None)


@cache
def installed_api_apps() -> tuple[str, ...]:
    return tuple(app for app, _ in AREAS if find_spec(f"{app}.api") is not None)


def nav_items(request) -> list[dict]:
    path = getattr(request, "path", "")
    return [
        {"app": app, "label": label, "url": f"/{app}/", "active": path.startswith(f"/{app}/")}
        for app, label in installed_areas()
    ]
