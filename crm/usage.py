"""Who uses a saved segment or a static list outside crm (a campaign's audience, an automation ...).

crm sits below publishing and analytics, so it cannot import them; instead an app that keeps references to
segments or lists registers a provider in its ``AppConfig.ready()``::

    from crm.usage import usage_provider_register
    usage_provider_register("segment", lambda segment: [f"campaign “{c.name}”" for c in ...])

A provider takes the segment (kind ``"segment"``) or the list (kind ``"list"``) and returns the human names
of what uses it. `segment_dependents` / `list_dependents` gather them, and `services.segment_delete` /
`list_delete` refuse to delete anything in use, saying by which."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .models import ContactList, Segment

KINDS = ("segment", "list")
_providers: dict[str, list[Callable[[object], Iterable[str]]]] = {kind: [] for kind in KINDS}


def usage_provider_register(kind: str, provider: Callable[[object], Iterable[str]]) -> None:
    """Add `provider` for `kind` (``"segment"`` or ``"list"``); registering the same callable twice is a no-op."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if provider not in _providers[kind]:
        _providers[kind].append(provider)


def usage_provider_unregister(kind: str, provider: Callable[[object], Iterable[str]]) -> None:
    if provider in _providers.get(kind, []):
        _providers[kind].remove(provider)


def _dependents(kind: str, obj) -> list[str]:
    found: list[str] = []
    for provider in _providers[kind]:
        found.extend(str(name) for name in provider(obj))
    return sorted(set(found))


def segment_dependents(segment: Segment) -> list[str]:
    """Human names of what uses `segment` outside crm (e.g. ``campaign “Spring sale”``), sorted."""
    return _dependents("segment", segment)


def list_dependents(contact_list: ContactList) -> list[str]:
    """Human names of what uses `contact_list` outside crm, sorted."""
    return _dependents("list", contact_list)
