"""``manage.py audit_dependencies``: pip-audit over the pinned requirements, with known findings explained.

Runs ``pip-audit -r requirements.txt --no-deps --disable-pip -f json`` (every runtime dependency is pinned,
so no resolver is needed) and sorts the answer into three outcomes:

- a vulnerability whose id (or one of its aliases) is not listed under "Accepted advisories" in
  docs/RELIABILITY.md: printed and the command fails (exit 1);
- the advisory service could not be reached (a connection error), or answered for none of the packages:
  a loud "NOT AUDITED" banner and exit 0, so an offline run is a skip and never a silent pass or a failure;
- otherwise: the findings that are explained, the packages that could not be audited (by name), exit 0.

The advisory service is pip-audit's default (the PyPI JSON API, which serves the OSV advisories); ``--service
osv`` asks osv.dev directly.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

ACCEPTED_HEADING = "## Accepted advisories"
ADVISORY_ID = re.compile(r"`((?:GHSA|PYSEC|CVE|OSV)-[A-Za-z0-9-]+)`")
NETWORK_ERRORS = ("ConnectionError", "ProxyError", "ConnectTimeout", "ReadTimeout", "NameResolutionError")


@dataclass
class AuditResult:
    unexplained: list[tuple[str, str, str]] = field(default_factory=list)  # (package, version, advisory id)
    explained: list[tuple[str, str, str]] = field(default_factory=list)
    not_audited: list[str] = field(default_factory=list)
    audited: int = 0
    unreachable: str = ""  # why the service could not be asked at all


def accepted_advisories(doc: Path) -> set[str]:
    """Advisory ids (GHSA-…, PYSEC-…, CVE-…) written in backticks under the "Accepted advisories" heading."""
    if not doc.exists():
        return set()
    text = doc.read_text()
    start = text.find(ACCEPTED_HEADING)
    if start < 0:
        return set()
    section = text[start + len(ACCEPTED_HEADING) :]
    end = section.find("\n## ")
    return set(ADVISORY_ID.findall(section if end < 0 else section[:end]))


def classify(*, returncode: int, stdout: str, stderr: str, accepted: set[str]) -> AuditResult:
    """pip-audit's exit code and output → an :class:`AuditResult` (see the module docstring)."""
    result = AuditResult()
    try:
        report = json.loads(stdout) if stdout.strip() else None
    except json.JSONDecodeError:
        report = None
    if report is None:
        network = next((name for name in NETWORK_ERRORS if name in stderr), "")
        lines = stderr.strip().splitlines()
        detail = lines[-1] if lines else f"pip-audit exited {returncode} without a report"
        if network:
            result.unreachable = f"the advisory service could not be reached ({detail[:300]})"
            return result
        raise CommandError(f"pip-audit failed (exit {returncode}): {detail[:500]}")
    for dep in report.get("dependencies", []):
        name, version = dep.get("name", "?"), dep.get("version", "?")
        if "skip_reason" in dep:
            result.not_audited.append(f"{name} {version}: {dep['skip_reason']}")
            continue
        result.audited += 1
        for vuln in dep.get("vulns", []):
            ids = {vuln.get("id", ""), *vuln.get("aliases", [])}
            row = (name, version, vuln.get("id", "?"))
            (result.explained if ids & accepted else result.unexplained).append(row)
    if result.audited == 0:
        result.unreachable = "the advisory service answered for none of the packages"
    return result


class Command(BaseCommand):
    help = "Audit the pinned requirements with pip-audit; known findings must be explained in the docs."

    def add_arguments(self, parser):
        parser.add_argument("--requirements", default=str(settings.BASE_DIR / "requirements.txt"))
        parser.add_argument("--service", choices=["pypi", "osv"], default="pypi")
        parser.add_argument("--timeout", type=int, default=30, help="seconds per advisory request")

    def handle(self, *args, **options):
        cmd = [
            sys.executable,
            "-m",
            "pip_audit",
            "-r",
            options["requirements"],
            "--no-deps",
            "--disable-pip",
            "-f",
            "json",
            "--progress-spinner",
            "off",
            "-s",
            options["service"],
            "--timeout",
            str(options["timeout"]),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
        accepted = accepted_advisories(settings.BASE_DIR / "docs" / "RELIABILITY.md")
        result = classify(
            returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr, accepted=accepted
        )
        if result.unreachable:
            banner = "#" * 100
            self.stderr.write(
                f"{banner}\n##  DEPENDENCIES NOT AUDITED: {result.unreachable}.\n"
                f"##  Run `make audit` again where the advisory service is reachable.\n{banner}"
            )
            return
        for name in result.not_audited:
            self.stderr.write(f"not audited: {name}")
        for name, version, vuln in result.explained:
            self.stdout.write(f"accepted (see docs/RELIABILITY.md): {name} {version} {vuln}")
        if result.unexplained:
            for name, version, vuln in result.unexplained:
                self.stderr.write(f"VULNERABLE: {name} {version} {vuln}")
            raise CommandError(
                f"{len(result.unexplained)} known vulnerabilities are not explained in docs/RELIABILITY.md "
                f'("{ACCEPTED_HEADING[3:]}"): upgrade the pin or explain why it does not apply.'
            )
        self.stdout.write(f"{result.audited} packages audited, no unexplained known vulnerability.")
