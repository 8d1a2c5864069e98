"""Recompute near-duplicate fingerprints of stored images through the same service as uploads."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from aicmo.models import Workspace
from media import services
from media.models import AssetKind, MediaAsset


class Command(BaseCommand):
    help = (
        "Recompute pHash, colour moments and detail of images stored before they existed (or all with --all)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="workspace slug or id")
        parser.add_argument(
            "--all", action="store_true", help="every image, not only those missing colour moments"
        )

    def handle(self, *args, workspace, all, **options):  # noqa: A002 - the option's name
        ws = Workspace.objects.filter(
            **({"pk": int(workspace)} if workspace.isdigit() else {"slug": workspace})
        ).first()
        if ws is None:
            raise CommandError(f"No workspace {workspace!r}.")
        assets = MediaAsset.objects.for_workspace(ws).filter(kind__in=[AssetKind.IMAGE, AssetKind.GIF])
        if not all:
            assets = assets.filter(colour_moments="")
        done = failed = 0
        for asset in assets.iterator():
            if services.asset_refresh_fingerprint(asset=asset):
                done += 1
            else:
                failed += 1
                self.stderr.write(f"asset {asset.pk}: file could not be read as an image")
        self.stdout.write(f"{done} fingerprinted, {failed} failed.")
