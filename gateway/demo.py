"""Demo data: one clearly labelled demo provider account per capability, so the product works offline.

Demo accounts are ordinary accounts using the demo adapters; the chain uses them only while no real
provider is configured for that capability, and every result they return says ``demo=True``.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from .adapters import adapters_for
from .capabilities import Capability
from .models import ProviderAccount
from .services import account_create

DEMO_ACCOUNT_NAME = "Demo provider"


def seed(workspace, *, users: dict[str, AbstractBaseUser]) -> None:
    """Idempotent: creates the missing demo accounts, leaves existing ones (and their history) alone."""
    existing = set(
        ProviderAccount.objects.for_workspace(workspace)
        .filter(name=DEMO_ACCOUNT_NAME)
        .values_list("capability", flat=True)
    )
    for capability in Capability:
        if capability.value in existing:
            continue
        demo = [cls for cls in adapters_for(capability) if cls.is_demo]
        if not demo:
            continue
        account_create(
            workspace=workspace,
            by=users.get("admin"),
            capability=capability.value,
            adapter=demo[0].key,
            name=DEMO_ACCOUNT_NAME,
            priority=1000,
        )
