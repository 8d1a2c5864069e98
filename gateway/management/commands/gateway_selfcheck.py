"""Operator CLI: run provider self-checks and print live health and recommendations.

manage.py gateway_selfcheck                      # check every enabled account, print the table
manage.py gateway_selfcheck --status             # no new checks: current state only
manage.py gateway_selfcheck --watch 30 --json    # repeat every 30 s, one JSON document per round
manage.py gateway_selfcheck --workspace acme
"""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from aicmo.models import Workspace
from gateway import selectors
from gateway.health import refresh_states, selfcheck_workspace
from gateway.models import ProviderAccount


class Command(BaseCommand):
    help = "Self-check provider accounts and show gateway health (--status: no new checks)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--status", action="store_true", help="Only show the current state; run no checks."
        )
        parser.add_argument(
            "--watch", type=float, metavar="SECONDS", help="Repeat every SECONDS until interrupted."
        )
        parser.add_argument("--json", action="store_true", help="Machine-readable output.")
        parser.add_argument(
            "--workspace", help="Workspace slug or id (default: every workspace with accounts)."
        )
        parser.add_argument(
            "--rounds",
            type=int,
            default=0,
            help=("With --watch: stop after this many rounds (0 = run until interrupted)."),
        )

    def handle(self, *args, **opts):
        if opts["watch"] is not None and opts["watch"] <= 0:
            raise CommandError("--watch needs a positive number of seconds.")
        workspaces = self._workspaces(opts["workspace"])
        rounds = 0
        exit_bad = False
        try:
            while True:
                rounds += 1
                exit_bad = self._round(workspaces, status_only=opts["status"], as_json=opts["json"])
                if opts["watch"] is None or (opts["rounds"] and rounds >= opts["rounds"]):
                    break
                time.sleep(opts["watch"])
        except KeyboardInterrupt:
            pass
        if exit_bad and opts["watch"] is None:
            raise SystemExit(2)  # some account needs attention: useful for cron / monitoring

    def _workspaces(self, wanted: str | None) -> list[Workspace]:
        if wanted:
            lookup = {"pk": int(wanted)} if wanted.isdigit() else {"slug": wanted}
            workspace = Workspace.objects.filter(**lookup).first()
            if workspace is None:
                raise CommandError(f"No workspace {wanted!r}.")
            return [workspace]
        ids = ProviderAccount.objects.values_list("workspace_id", flat=True).distinct()
        return list(Workspace.objects.filter(pk__in=ids).order_by("slug"))

    def _round(self, workspaces: list[Workspace], *, status_only: bool, as_json: bool) -> bool:
        report = []
        bad = False
        for workspace in workspaces:
            checks = []
            if not status_only:
                checks = selfcheck_workspace(workspace=workspace)
                refresh_states(workspace)
            rows = selectors.account_health(workspace)
            recs = selectors.recommendations(workspace, rows)
            bad = (
                bad
                or any(c.ok is False for c in checks)
                or any(r.severity == selectors.CRITICAL for r in recs)
            )
            report.append((workspace, rows, recs, checks))
        if as_json:
            self.stdout.write(json.dumps([self._as_dict(*item) for item in report], default=str))
        else:
            for item in report:
                self._print(*item)
        return bad

    def _as_dict(self, workspace, rows, recs, checks) -> dict:
        return {
            "workspace": workspace.slug,
            "checked": len(checks),
            "accounts": [
                {
                    "id": r.account.pk,
                    "name": r.account.name,
                    "capability": r.account.capability,
                    "adapter": r.account.adapter,
                    "demo": r.account.is_demo,
                    "state": r.state,
                    "cause": r.cause,
                    "breaker": r.breaker.state,
                    "last_15m": r.last_15m.as_dict(),
                    "last_24h": r.last_24h.as_dict(),
                    "last_check": None
                    if r.last_check is None
                    else {
                        "at": r.last_check.at.isoformat(),
                        "ok": r.last_check.ok,
                        "error_kind": r.last_check.error_kind,
                        "latency_ms": r.last_check.latency_ms,
                        "message": r.last_check.message,
                    },
                }
                for r in rows
            ],
            "recommendations": [r.as_dict() for r in recs],
        }

    def _print(self, workspace, rows, recs, checks) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"Workspace {workspace.slug}"))
        if not rows:
            self.stdout.write("  no provider accounts")
        for r in rows:
            rate = "-" if r.last_15m.success_percent is None else f"{r.last_15m.success_percent}%"
            check = (
                "never" if r.last_check is None else ("ok" if r.last_check.ok else r.last_check.error_kind)
            )
            style = self.style.SUCCESS if r.state == "healthy" else self.style.WARNING
            self.stdout.write(
                f"  {r.account.name:<24} {r.account.capability:<18} "
                + style(f"{r.state:<13}")
                + f" breaker={r.breaker.state:<9} success15m={rate:<5} check={check}"
                + (f"  ({r.cause})" if r.cause else "")
            )
        for rec in recs:
            style = self.style.ERROR if rec.severity == selectors.CRITICAL else self.style.WARNING
            self.stdout.write("  " + style(f"[{rec.severity}]") + f" {rec.message}")
