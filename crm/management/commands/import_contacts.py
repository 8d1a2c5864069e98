"""manage.py import_contacts FILE --workspace SLUG [--mapping 'Header=field,…'] [--policy update|skip|fill_blanks]"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from aicmo.models import Workspace
from crm.importing import POLICIES, import_create, import_execute


def parse_mapping(value: str | None) -> dict | None:
    if not value:
        return None
    if value.strip().startswith("{"):
        return json.loads(value)
    pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
    if any(len(p) != 2 for p in pairs):
        raise CommandError("--mapping takes 'Header=field,Header2=field2' or a JSON object.")
    return {k.strip(): v.strip() for k, v in pairs}


class Command(BaseCommand):
    help = "Import contacts from a CSV or XLSX file (same service as the API and dashboard)."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--workspace", required=True, help="workspace slug or id")
        parser.add_argument("--mapping", help="'Header=field,…' or JSON; default: automatic")
        parser.add_argument("--policy", default="update", choices=POLICIES)
        parser.add_argument("--tags", default="", help="comma-separated tags for every imported contact")
        parser.add_argument("--resume", type=int, help="resume an interrupted import run by id")

    def handle(self, *args, **opts):
        ws_filter = (
            {"pk": int(opts["workspace"])} if opts["workspace"].isdigit() else {"slug": opts["workspace"]}
        )
        workspace = Workspace.objects.filter(**ws_filter).first()
        if workspace is None:
            raise CommandError(f"No workspace {opts['workspace']!r}.")
        if opts["resume"]:
            run_id = opts["resume"]
        else:
            path = Path(opts["file"])
            if not path.is_file():
                raise CommandError(f"No such file: {path}")
            tags = [t.strip() for t in opts["tags"].split(",") if t.strip()]
            try:
                with path.open("rb") as fh:
                    run = import_create(
                        workspace=workspace,
                        fh=fh,
                        name=path.name,
                        mapping=parse_mapping(opts["mapping"]),
                        policy=opts["policy"],
                        tags=tags,
                        source="cli",
                        enqueue=False,
                    )
            except ValidationError as exc:
                raise CommandError(
                    "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
                ) from exc
            run_id = run.pk
        import_execute(run_id=run_id)
        from crm.models import ImportRun

        run = ImportRun.objects.get(pk=run_id)
        self.stdout.write(
            f"import #{run.pk}: created {run.created}, updated {run.updated}, "
            f"skipped {run.skipped}, failed {run.failed}"
        )
        for err in run.row_errors.all()[:20]:
            self.stdout.write(f"  line {err.line} [{err.column}]: {err.reason}")
