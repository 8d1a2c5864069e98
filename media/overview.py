"""media's part of the home overview (aicmo/overview.py): asset count with its 7-day change and the "upload
brand assets" getting-started step."""

from __future__ import annotations

from django.urls import reverse

from aicmo.overview import Figure, Step, figure_for

from .models import MediaAsset


def figures(workspace, since) -> list[Figure]:
    assets = MediaAsset.objects.for_workspace(workspace)
    return [figure_for(assets, since, label="Assets", url=reverse("media:index"), order=30)]


def steps(workspace) -> list[Step]:
    return [
        Step(
            label="Upload brand assets",
            done=MediaAsset.objects.for_workspace(workspace).exists(),
            url=reverse("media:index"),
            hint="Logos, images and documents your campaigns will use.",
            order=30,
        )
    ]
