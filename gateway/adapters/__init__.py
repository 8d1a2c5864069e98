"""The static adapter registry: adapter key -> class. Adding a vendor = one import + one entry."""

from __future__ import annotations

from gateway.adapters.base import Adapter
from gateway.capabilities import Capability

ADAPTERS: dict[str, type[Adapter]] = {}


def adapter_for(key: str) -> type[Adapter]:
    try:
        return ADAPTERS[key]
    except KeyError:
        raise KeyError(f"Unknown provider adapter {key!r}; known: {', '.join(sorted(ADAPTERS))}") from None


def adapters_for(capability: Capability | str, *, include_demo: bool = True) -> list[type[Adapter]]:
    """Adapter classes offering ``capability``, real ones first, sorted by label."""
    cap = Capability(capability)
    found = [
        cls for cls in ADAPTERS.values() if cap in cls.capabilities and (include_demo or not cls.is_demo)
    ]
    return sorted(found, key=lambda cls: (cls.is_demo, cls.label))


__all__ = ["ADAPTERS", "Adapter", "adapter_for", "adapters_for"]
