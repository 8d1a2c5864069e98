"""Publishing's answers to what the apps below it announce (they cannot call publishing: docs/ARCHITECTURE.md
section 1). Connected in ``PublishingConfig.ready``."""

from __future__ import annotations


def contacts_opted_out(sender, *, opt_outs, **kwargs) -> None:
    """crm decided opt-outs (``crm.signals.contacts_opted_out``): ``contact.unsubscribed`` webhooks."""
    from .services.webhooks import opt_outs_emit

    opt_outs_emit(opt_outs)
