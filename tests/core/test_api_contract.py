"""The API keeps its own contract: schemathesis' CLI with every check, against a live server, per role.

`schemathesis run /api/schema/ --checks all` (fuzzing and stateful phases) for a viewer, marketer,
reviewer and admin API key, one test each. Any failure of any check fails this test: a 5xx, a response or
status or content type the schema does not document, a schema-valid request refused or a schema-violating
one accepted. Every `{id}` path parameter is a real row of the workspace (`write_config`). Bounded: few
examples per operation, deterministic generation, one worker (the live server shares the test database
connection). Each request that carries an Idempotency-Key gets a fresh one, as a client sends it
(tests/core/contract_hooks.py).

`AICMO_CONTRACT_EXAMPLES=50 AICMO_CONTRACT_PHASES=coverage,fuzzing,stateful` searches deeper locally;
`AICMO_CONTRACT_INCLUDE='^/api/v1/crm/companies/'` (a regular expression on the path) runs only some operations.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from aicmo.api.idempotency import KEY_PATTERN
from aicmo.apikeys import api_key_create
from aicmo.models import Role
from tests.core.api_rows import one_row_per_resource

EXAMPLES = os.environ.get("AICMO_CONTRACT_EXAMPLES", "2")
TIMEOUT = int(os.environ.get("AICMO_CONTRACT_TIMEOUT", "600"))
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
HOOKS = Path(__file__).with_name("contract_hooks.py")
# Revoking the key that drives the run would turn every later call into a 401; revocation is covered by
# tests/core/test_tenancy_api.py and its schema by the other operations' shared responses.
EXCLUDED = r"^/api/v1/api-keys/\{id\}/revoke/$"
INCLUDED = os.environ.get("AICMO_CONTRACT_INCLUDE", "")


@pytest.fixture
def seeded(transactional_db, workspace, member_factory, settings, tmp_path, redis_client):
    """(API key secret per role, one row id per resource) in a fresh workspace."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    rows = one_row_per_resource(workspace, member_factory)
    admin = member_factory(workspace, Role.ADMIN)
    keys = {
        role: api_key_create(workspace=workspace, name=f"contract-{role}", role=role, by=admin).secret
        for role in (Role.VIEWER, Role.MARKETER, Role.REVIEWER, Role.ADMIN)
    }
    return keys, rows


def click_tokens() -> list[str]:
    """Signed click tokens of the seeded deliveries (format ``click-token``), as a click link carries them
    (``publishing.services.tracking.click_url``): one per delivery and link key."""
    from publishing.models import Delivery
    from publishing.services.tracking import SALT_CLICK, _sign

    return [
        _sign(SALT_CLICK, f"{d.token}.{key}") for d in Delivery.objects.all() for key in ("l1", "l2", "l3")
    ]


def id_paths(resource: str) -> str:
    """The paths whose ``{id}`` is a row of `resource` (api_rows' key: the path's first one or two
    segments), e.g. ``analytics/scores`` → ``/api/v1/analytics/scores/contacts/{id}/history/``."""
    return rf"^/api/v1/{re.escape(resource)}/(?:[\w-]+/)*\{{id\}}/"


def write_config(rows: dict[str, int], path: Path) -> Path:
    """A schemathesis.toml giving every `{id}` path parameter a real row of the workspace (the generator
    would invent ids, and an operation that only ever answers 404 is never tested past its lookup)."""
    # Every check (what `--checks all` selects; on the command line it would also override the per-operation
    # switch below). A wall-clock limit on a shared, loaded machine measures the machine: 60 s, not 10 s.
    # A fresh Idempotency-Key per request, as a client sends it (tests/core/contract_hooks.py).
    blocks = [f"hooks = {json.dumps(str(HOOKS))}\n", "[checks]\nenabled = true\nmax_response_time = 60\n"]
    blocks += [
        # a TOML literal string: the regular expression's backslashes stay as written
        f"[[operations]]\ninclude-path-regex = '{id_paths(resource)}'\n"
        f'parameters = {{ "path.id" = {pk} }}\n'
        for resource, pk in sorted(rows.items())
    ]
    path.write_text("\n".join(blocks))
    return path


def fetch_schema(url: str, path: Path) -> Path:
    """The served schema, fetched once with a generous timeout (schemathesis' own schema load gives up after
    10 s, which a loaded machine can need just to generate it)."""
    with urllib.request.urlopen(f"{url}/api/schema/?format=json", timeout=120) as response:  # noqa: S310
        path.write_bytes(response.read())
    return path


def run_schemathesis(
    url: str, schema: Path, config: Path, key: str, report: Path
) -> subprocess.CompletedProcess:
    """One CLI run; its working directory is the report's (schemathesis writes a `.schemathesis/` cache)."""
    command = [
        str(SCHEMATHESIS), "--config-file", str(config), "run", str(schema), "--url", url,
        "--phases", os.environ.get("AICMO_CONTRACT_PHASES", "fuzzing,stateful"),
        "--max-examples", EXAMPLES,
        "--workers", "1",
        "--seed", "1",
        "--generation-deterministic",
        "--no-shrink",
        "--exclude-path-regex", EXCLUDED,
        *(["--include-path-regex", INCLUDED] if INCLUDED else []),
        "--header", f"Authorization: Bearer {key}",
        "--request-timeout", "30",
        "--no-color",
        "--report", "junit", "--report-junit-path", str(report),
    ]  # fmt: skip
    env = {**os.environ, "AICMO_IDEMPOTENCY_KEY_PATTERN": KEY_PATTERN}
    return subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, timeout=TIMEOUT, check=False, cwd=report.parent, env=env
    )


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER, Role.REVIEWER, Role.ADMIN])
def test_every_role_keeps_the_contract(live_server, seeded, role, tmp_path, monkeypatch):
    keys, rows = seeded
    monkeypatch.setenv("AICMO_CONTRACT_CLICK_TOKENS", json.dumps(click_tokens()))
    schema = fetch_schema(live_server.url, tmp_path / "schema.json")
    config = write_config(rows, tmp_path / "schemathesis.toml")
    result = run_schemathesis(live_server.url, schema, config, keys[role], tmp_path / f"{role}.xml")
    (tmp_path / f"{role}.txt").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-30000:]


def test_every_id_operation_gets_a_real_row(served_schema, workspace, member_factory, settings, tmp_path):
    """`write_config` hands schemathesis a real row for every `{id}` path: one it missed would only ever
    answer 404, its logic never reached, with nothing failing (the score history's path was such a one)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    rules = [re.compile(id_paths(resource)) for resource in one_row_per_resource(workspace, member_factory)]
    id_paths_served = [p for p in served_schema["paths"] if "{id}" in p and not re.match(EXCLUDED, p)]
    assert [p for p in id_paths_served if not any(rule.match(p) for rule in rules)] == []
