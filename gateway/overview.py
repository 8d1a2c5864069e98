"""gateway's part of the home overview (aicmo/overview.py): the "connect a provider" getting-started step,
done once the workspace has an enabled account that is not a demo provider."""

from __future__ import annotations

from django.urls import reverse

from aicmo.overview import Step

from .models import ProviderAccount


def steps(workspace) -> list[Step]:
    accounts = ProviderAccount.objects.for_workspace(workspace).filter(enabled=True).only("adapter")
    connected = any(not account.is_demo for account in accounts[:200])
    return [
        Step(
            label="Connect a provider",
            done=connected,
            url=reverse("gateway:index"),
            hint="Add an account for enrichment, email verification or sending (the demo providers do not count).",
            order=20,
        )
    ]
