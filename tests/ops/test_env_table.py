"""Every environment variable the code reads is in docs/OPERATIONS.md's table, and the table is current."""

from __future__ import annotations

import ast

from aicmo import envdoc


def test_every_variable_read_is_described_and_nothing_stale():
    read = set(envdoc.env_reads())
    assert read - set(envdoc.DESCRIPTIONS) == set(), "read but not described in aicmo/envdoc.py"
    assert set(envdoc.DESCRIPTIONS) - read == set(), "described but no longer read"


def test_the_operator_guide_holds_the_generated_table():
    doc = envdoc.DOC.read_text()
    assert doc == envdoc.doc_with_table(doc), "run: manage.py env_table --write"


def test_the_scanner_sees_each_way_of_reading(tmp_path, monkeypatch):
    source = tmp_path / "s.py"
    source.write_text(
        "import os\n"
        "A = env.str('ONE', default='x')\n"
        "B = env('TWO')\n"
        "C = env.db('THREE', default=f'sqlite:///{D}')\n"
        "E = os.environ.get('FOUR', '4')\n"
        "F = os.getenv('FIVE')\n"
        "G = something.get('NOT_ENV')\n"
    )
    monkeypatch.setattr(envdoc, "ROOT", tmp_path)
    monkeypatch.setattr(envdoc, "SOURCES", ["s.py"])
    reads = envdoc.env_reads()
    assert {n: (r.kind, r.default) for n, r in reads.items()} == {
        "ONE": ("str", "'x'"),
        "TWO": ("str", None),
        "THREE": ("db", "f'sqlite:///{D}'"),
        "FOUR": ("str", "'4'"),
        "FIVE": ("str", None),
    }


def test_settings_reads_are_all_found():
    """Cross-check with a plain walk: every string constant passed first to an `env` call is in the table."""
    text = (envdoc.ROOT / "aicmo/settings.py").read_text()
    names = {
        node.args[0].value
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Call)
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and "env" in ast.unparse(node.func).split(".")[0]
        and isinstance(node.args[0].value, str)
        and node.args[0].value.isupper()
    }
    assert names <= set(envdoc.env_reads())
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "AWS_STORAGE_BUCKET_NAME"} <= names
