"""A change and its audit event are one commit. A service that writes a row and then records the audit event
in a second commit leaves a window where a reader (the activity feed, a task, a test polling the row) sees
the change without its event, and a crash in that window loses the event for good. CI once caught exactly
that: the invitation task marked the link sent, the test read the row, and the ``invitation.sent`` event
was not there yet.

The rule is checked over the source of every app, so a new service is held to it too: a function that
calls ``audit_record`` (or a module helper that does) and writes through the ORM must run both inside
``transaction.atomic`` (decorator or ``with`` block)."""

from __future__ import annotations

import ast

import pytest

from tests.sources import app_modules

WRITES = {
    "save",
    "create",
    "update",
    "delete",
    "bulk_create",
    "bulk_update",
    "get_or_create",
    "update_or_create",
}


def _name(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _is_atomic(node: ast.AST) -> bool:
    """``transaction.atomic``, ``atomic`` or either called with arguments."""
    return ast.unparse(node).split("(")[0].endswith("atomic")


def _functions(tree: ast.AST):
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _calls_outside_transactions(fn) -> list[ast.Call]:
    """The calls in ``fn`` that run outside any ``with transaction.atomic()`` block of its own."""
    inside: set[int] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.With) and any(_is_atomic(item.context_expr) for item in node.items):
            inside.update(id(n) for n in ast.walk(node))
    return [n for n in ast.walk(fn) if isinstance(n, ast.Call) and id(n) not in inside]


def _module_violations(tree: ast.Module, label: str) -> list[str]:
    functions = _functions(tree)
    auditing = {"audit_record"}
    grew = True
    while grew:  # module helpers that audit (``_audit`` wrapping ``audit_record``) count as auditing
        grew = False
        for fn in functions:
            if fn.name not in auditing and any(
                isinstance(n, ast.Call) and _name(n) in auditing for n in ast.walk(fn)
            ):
                auditing.add(fn.name)
                grew = True
    found = []
    for fn in functions:
        if any(_is_atomic(d) for d in fn.decorator_list):
            continue
        calls = _calls_outside_transactions(fn)
        audits = [c for c in calls if _name(c) in auditing]
        writes = [c for c in calls if _name(c) in WRITES]
        if audits and writes:
            found.append(f"{label}:{fn.lineno} {fn.name}")
    return found


def test_every_audited_write_commits_with_its_event():
    violations = [v for relative, module in app_modules() for v in _module_violations(module, relative)]
    assert violations == [], (
        "These functions write a row and record its audit event in separate commits; decorate them with "
        "@transaction.atomic or put both in one `with transaction.atomic():` block:\n" + "\n".join(violations)
    )


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("def f(x):\n    x.save()\n    audit_record(verb='v')\n", True),
        (
            "def _audit(x):\n    audit_record(verb='v')\n\ndef f(x):\n    X.objects.update(a=1)\n    _audit(x)\n",
            True,
        ),
        ("@transaction.atomic\ndef f(x):\n    x.save()\n    audit_record(verb='v')\n", False),
        (
            "def f(x):\n    with transaction.atomic():\n        x.save()\n        audit_record(verb='v')\n",
            False,
        ),
        ("def f(x):\n    x.save()\n", False),
        ("def f(x):\n    send(x)\n    audit_record(verb='v')\n", False),
    ],
)
def test_the_check_tells_a_split_commit_from_a_whole_one(source, flagged):
    """The rule's own matrix, so a change to the scanner cannot make the source check pass vacuously."""
    assert bool(_module_violations(ast.parse(source), "probe.py")) is flagged
