"""Deployment files: the compose file is valid (`docker compose config` when the compose plugin exists,
otherwise a schema check of the subset we use) and has the promised topology; the Dockerfile and the
gunicorn config hold what docs/OPERATIONS.md says."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"

# The part of the Compose Specification (compose-spec.io) this file uses; unknown keys are errors so a typo
# such as `depend_on` cannot pass.
SERVICE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "patternProperties": {"^x-": {}},
    "properties": {
        "build": {"type": ["string", "object"]},
        "image": {"type": "string"},
        "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
        "command": {"type": ["string", "array"], "items": {"type": "string"}},
        "environment": {"type": "object", "additionalProperties": {"type": ["string", "number", "null"]}},
        "env_file": {"type": "array"},
        "volumes": {"type": "array", "items": {"type": "string"}},
        "ports": {"type": "array", "items": {"type": "string"}},
        "depends_on": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "condition": {
                        "enum": ["service_started", "service_healthy", "service_completed_successfully"]
                    }
                },
                "required": ["condition"],
            },
        },
        "healthcheck": {"type": "object"},
        "profiles": {"type": "array", "items": {"type": "string"}},
        "deploy": {"type": "object"},
    },
    "anyOf": [{"required": ["image"]}, {"required": ["build"]}],
}
COMPOSE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "patternProperties": {"^x-": {}},
    "properties": {
        "name": {"type": "string"},
        "services": {"type": "object", "additionalProperties": SERVICE_SCHEMA},
        "volumes": {"type": "object"},
    },
    "required": ["services"],
}


def compose_plugin() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    return subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_is_valid(compose):
    if compose_plugin():
        env = dict(os.environ, SECRET_KEY="x", FIELD_ENCRYPTION_KEYS="y")
        result = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, env=env
        )
        assert result.returncode == 0, result.stderr
    jsonschema.validate(compose, COMPOSE_SCHEMA)  # both ways: the schema also catches our own typos


def test_compose_topology(compose):
    services = compose["services"]
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, (name, dep)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in compose["volumes"], (name, source)

    redis = " ".join(services["redis"]["command"])
    assert "--maxmemory-policy noeviction" in redis and "--appendonly yes" in redis

    web = services["web"]["command"]
    assert web[:3] == ["gunicorn", "-c", "gunicorn.conf.py"]

    consumed: dict[str, list[str]] = {}
    for name, service in services.items():
        command = service.get("command") or []
        if command[:4] == ["celery", "-A", "aicmo", "worker"]:
            for queue in command[command.index("-Q") + 1].split(","):
                consumed.setdefault(queue, []).append(name)
    assert {q: len(s) for q, s in consumed.items()} == dict.fromkeys(settings.AICMO_QUEUES, 1)

    beats = [
        n for n, s in services.items() if (s.get("command") or [])[:4] == ["celery", "-A", "aicmo", "beat"]
    ]
    assert beats == ["beat"] and services["beat"]["deploy"]["replicas"] == 1
    assert services["mailpit"]["profiles"] == ["staging"]
    assert services["postgres"]["image"].startswith("postgres:")


def test_dockerfile_pins_runs_unprivileged_and_collects_static():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert "RUN pip install -r requirements.txt" in lines
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert any("manage.py collectstatic --noinput" in line for line in lines)
    requirements = [
        line
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all("==" in line for line in requirements), [r for r in requirements if "==" not in r]


def test_gunicorn_config_loads_the_app():
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"AICMO_ENV": "test", "WEB_CONCURRENCY": "3"})
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--check-config",
            "--print-config",
            "-c",
            "gunicorn.conf.py",
            "aicmo.wsgi",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    printed = dict(line.split(" = ", 1) for line in result.stdout.splitlines() if " = " in line)
    assert {k.strip(): v for k, v in printed.items() if k.strip() in {"workers", "bind"}} == {
        "workers": "3",
        "bind": "['0.0.0.0:8000']",
    }
