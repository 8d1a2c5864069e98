"""Who uses a saved segment or a static list outside crm (a campaign's audience, an automation ...).

crm sits below publishing and analytics, so it cannot import them; instead an app that keeps references to
segments or lists names a provider in settings (``CRM_USAGE_PROVIDERS``: kind → dotted paths, resolved when
asked, the same pattern as ``AICMO_RETENTION``)::

    CRM_USAGE_PROVIDERS = {"segment": ["publishing.selectors.campaigns_using_segment"], "list": [...]}

A provider takes the segment (kind ``"segment"``) or the list (kind ``"list"``) and returns the human names
of what uses it. `segment_dependents` / `list_dependents` gather them, and `services.segment_delete` /
`list_delete` refuse to delete anything in use, saying by which."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from .models import ContactList, Segment

KINDS = ("segment", "list")


def _dependents(kind: str, obj) -> list[str]:
    found: list[str] = []
    for path in getattr(settings, "CRM_USAGE_PROVIDERS", {}).get(kind, []):
        found.extend(str(name) for name in import_string(path)(obj))
    return sorted(set(found))


def segment_dependents(segment: Segment) -> list[str]:
    """Human names of what uses `segment` outside crm (e.g. ``campaign “Spring sale”``), sorted."""
    return _dependents("segment", segment)


def list_dependents(contact_list: ContactList) -> list[str]:
    """Human names of what uses `contact_list` outside crm, sorted."""
    return _dependents("list", contact_list)
