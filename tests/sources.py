"""The apps' own Python source, for tests that hold every module to a rule by reading it (audit verbs have
phrases; audited writes are atomic)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ("aicmo", "crm", "gateway", "media", "publishing", "analytics")


def app_modules() -> Iterator[tuple[str, ast.Module]]:
    """(path relative to the repository, parsed module) for every app module outside migrations."""
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), filename=str(path))
