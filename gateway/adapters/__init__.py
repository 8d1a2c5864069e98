"""The static adapter registry: adapter key -> class. Adding a vendor = one import + one entry."""

from __future__ import annotations

from gateway.adapters.airtable import AirtableAdapter
from gateway.adapters.base import Adapter
from gateway.adapters.demo import DEMO_ADAPTERS
from gateway.adapters.enrichment import ApolloAdapter, DropcontactAdapter, HunterAdapter
from gateway.adapters.mail import IMAPAdapter, SMTPAdapter
from gateway.adapters.meta_ads import MetaAdsAdapter
from gateway.adapters.social import InstagramAdapter, LinkedInAdapter, XAdapter
from gateway.adapters.webhook import WebhookAdapter
from gateway.capabilities import Capability

ADAPTERS: dict[str, type[Adapter]] = {
    cls.key: cls
    for cls in (
        ApolloAdapter,
        HunterAdapter,
        DropcontactAdapter,
        SMTPAdapter,
        IMAPAdapter,
        AirtableAdapter,
        LinkedInAdapter,
        XAdapter,
        InstagramAdapter,
        MetaAdsAdapter,
        WebhookAdapter,
        *DEMO_ADAPTERS,
    )
}


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
