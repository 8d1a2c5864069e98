"""Import a folder of files into a media library through the same service as every other door."""

from __future__ import annotations

from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from aicmo.models import Workspace
from media import services
from media.models import MediaLibrary
from media.validation import UploadRejected


class Command(BaseCommand):
    help = "Upload every file under PATH into a library (content-checked, SHA-256 deduplicated)."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--workspace", required=True, help="workspace slug or id")
        parser.add_argument("--library", default="Main library", help="library name (created if missing)")
        parser.add_argument("--tags", default="", help="comma-separated tags for every imported file")

    def handle(self, *args, path, workspace, library, tags, **options):
        ws = Workspace.objects.filter(
            **({"pk": int(workspace)} if workspace.isdigit() else {"slug": workspace})
        ).first()
        if ws is None:
            raise CommandError(f"No workspace {workspace!r}.")
        root = Path(path)
        if not root.exists():
            raise CommandError(f"{root} does not exist.")
        lib = MediaLibrary.objects.for_workspace(ws).filter(name=library).first()
        if lib is None:
            lib = services.library_create(workspace=ws, name=library)
        tag_list = [t for t in tags.split(",") if t.strip()]
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        counts = {"new": 0, "duplicate": 0, "rejected": 0}
        for file_path in files:
            with file_path.open("rb") as fh:
                try:
                    result = services.asset_upload(library=lib, file=File(fh, name=file_path.name),
                                                   filename=file_path.name, tags=tag_list)  # fmt: skip
                except UploadRejected as exc:
                    counts["rejected"] += 1
                    self.stderr.write(f"rejected {file_path}: {exc.message}")
                    continue
            kind = "duplicate" if result.duplicate else "new"
            counts[kind] += 1
            self.stdout.write(f"{kind:9} #{result.asset.pk} {file_path} sha256={result.asset.sha256}")
        self.stdout.write(self.style.SUCCESS(
            f"{counts['new']} new, {counts['duplicate']} duplicates, {counts['rejected']} rejected."
        ))  # fmt: skip
