"""Production settings: secrets have no default, and the deploy checklist is clean."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def _run(*args, env_extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


PROD = {
    "AICMO_ENV": "production",
    "SECRET_KEY": "x" * 30 + "-prod-secret-key-with-enough-entropy-1234567890",
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "aicmo.example.com",
    "DATABASE_URL": "postgres://aicmo:pw@127.0.0.1:1/aicmo",
    "REDIS_URL": "redis://127.0.0.1:1/0",
}


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS"])
def test_production_refuses_to_start_without_secrets(missing):
    env = {k: v for k, v in PROD.items() if k != missing}
    result = _run("check", env_extra=env)
    assert result.returncode != 0
    assert f"{missing} must be set in production" in result.stderr


def test_check_deploy_is_clean_with_production_env():
    result = _run("check", "--deploy", "--fail-level", "WARNING", env_extra=PROD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
