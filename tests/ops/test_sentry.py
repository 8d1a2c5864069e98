"""Sentry is off unless SENTRY_DSN is set; with it, the SDK is initialised with the profile's name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = "import sentry_sdk; c = sentry_sdk.get_client(); print(c.is_active(), c.options.get('environment'))"


@pytest.mark.parametrize(("dsn", "expected"), [("", "False"), ("http://public@127.0.0.1:9/1", "True test")])
def test_sentry_follows_the_environment_variable(dsn, expected):
    env = {k: v for k, v in os.environ.items() if k != "SENTRY_DSN"}
    env.update({"SENTRY_DSN": dsn, "AICMO_ENV": "test"})
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith(expected)
