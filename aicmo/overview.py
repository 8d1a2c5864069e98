"""The home page overview: figures (a count and how many were added in the last 7 days) and "getting
started" steps, contributed by each installed area.

aicmo imports no app, so an area contributes through an optional ``<app>.overview`` module (found the way
``<app>.urls`` is, aicmo/navigation.py) defining any of:

- ``figures(workspace, since) -> list[Figure]``: counts of the workspace's rows and those created at or after
  `since` (an aware datetime);
- ``steps(workspace) -> list[Step]``: checklist steps, each ``done`` from real rows.
- ``panels(workspace) -> list[Panel]``: a block of the area's own (a template and its context), e.g.
  analytics' KPIs of the last 7 days.

Areas without such a module contribute nothing; nothing is shown that no area computed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec

from django.db.models import Count, Q
from django.utils import timezone

from .models import Workspace
from .navigation import AREAS

CHANGE_WINDOW = dt.timedelta(days=7)


@dataclass(frozen=True)
class Figure:
    """One count on the overview: ``total`` rows, ``added`` of them created inside the window."""

    label: str
    total: int
    added: int
    url: str
    order: int = 100


@dataclass(frozen=True)
class Step:
    """One getting-started step: ``done`` when the workspace's data shows it happened."""

    label: str
    done: bool
    url: str
    hint: str = ""
    order: int = 100


@dataclass(frozen=True)
class Panel:
    """An area's block on the overview: ``template`` rendered with ``panel`` = ``context``."""

    template: str
    context: dict
    order: int = 100


def figure_for(queryset, since: dt.datetime, *, label: str, url: str, order: int = 100) -> Figure:
    """A `Figure` from a workspace-scoped queryset of rows with ``created_at``: one aggregate query."""
    row = queryset.aggregate(total=Count("pk"), added=Count("pk", filter=Q(created_at__gte=since)))
    return Figure(label=label, total=row["total"], added=row["added"], url=url, order=order)


def _area_modules():
    for app, _label in AREAS:
        if find_spec(app) is not None and find_spec(f"{app}.overview") is not None:
            yield import_module(f"{app}.overview")


def overview_figures(workspace: Workspace, *, now: dt.datetime | None = None) -> list[Figure]:
    """Every area's figures for `workspace`, changes counted over the last `CHANGE_WINDOW`, by `order`."""
    since = (now or timezone.now()) - CHANGE_WINDOW
    found = [
        f
        for module in _area_modules()
        if hasattr(module, "figures")
        for f in module.figures(workspace, since)
    ]
    return sorted(found, key=lambda f: f.order)


def getting_started(workspace: Workspace) -> list[Step]:
    """Every area's getting-started steps for `workspace`, by `order`."""
    found = [s for module in _area_modules() if hasattr(module, "steps") for s in module.steps(workspace)]
    return sorted(found, key=lambda s: s.order)


def overview_panels(workspace: Workspace) -> list[Panel]:
    """Every area's panels for `workspace`, by `order`."""
    found = [p for module in _area_modules() if hasattr(module, "panels") for p in module.panels(workspace)]
    return sorted(found, key=lambda p: p.order)


def verb_words(verb: str) -> str:
    """An audit verb in words: ``crm.contact.deleted`` -> ``deleted contact``, ``media.asset_usage.added`` ->
    ``added asset usage``; a verb without dots comes back with underscores as spaces."""
    parts = [p.replace("_", " ") for p in (verb or "").split(".") if p]
    if len(parts) >= 3:
        return f"{parts[-1]} {parts[-2]}"
    return " ".join(reversed(parts)) if len(parts) == 2 else " ".join(parts)
