"""`make audit` (manage.py audit_dependencies): an unexplained known vulnerability fails, an explained one
passes, and an advisory service that cannot be reached is a loud skip — never a failure, never a silent
"no vulnerabilities". No test here reaches the network: the real pip-audit is pointed at a closed port."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from aicmo.management.commands.audit_dependencies import accepted_advisories, classify


def _report(*deps) -> str:
    return json.dumps({"dependencies": list(deps), "fixes": []})


DJANGO_VULN = {
    "name": "django",
    "version": "5.2.19",
    "vulns": [
        {"id": "PYSEC-2099-1", "aliases": ["GHSA-aaaa-bbbb-cccc", "CVE-2099-0001"], "fix_versions": []}
    ],
}
CLEAN = {"name": "redis", "version": "8.1.0", "vulns": []}
SKIPPED = {"name": "honcho", "version": "2.0.0", "skip_reason": "Dependency not found on PyPI"}


@pytest.mark.parametrize(
    ("deps", "accepted", "unexplained", "explained", "unreachable"),
    [
        ([CLEAN], set(), 0, 0, False),
        ([CLEAN, DJANGO_VULN], set(), 1, 0, False),
        ([CLEAN, DJANGO_VULN], {"PYSEC-2099-1"}, 0, 1, False),
        ([CLEAN, DJANGO_VULN], {"CVE-2099-0001"}, 0, 1, False),  # explained under an alias
        ([CLEAN, DJANGO_VULN], {"GHSA-zzzz-zzzz-zzzz"}, 1, 0, False),
        ([CLEAN, SKIPPED], set(), 0, 0, False),
        ([SKIPPED], set(), 0, 0, True),  # nothing answered: not a pass
        ([], set(), 0, 0, True),
    ],
)
def test_classify(deps, accepted, unexplained, explained, unreachable):
    result = classify(returncode=1 if unexplained else 0, stdout=_report(*deps), stderr="", accepted=accepted)
    assert (len(result.unexplained), len(result.explained), bool(result.unreachable)) == (
        unexplained,
        explained,
        unreachable,
    )
    if SKIPPED in deps:
        assert result.not_audited == ["honcho 2.0.0: Dependency not found on PyPI"]


def test_a_connection_error_is_unreachable_and_any_other_crash_is_an_error():
    err = "Traceback ...\nrequests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org', port=443)"
    assert "could not be reached" in classify(returncode=1, stdout="", stderr=err, accepted=set()).unreachable
    with pytest.raises(CommandError, match="pip-audit failed"):
        classify(returncode=2, stdout="", stderr="error: no such file requirements.txt", accepted=set())


def test_accepted_ids_are_read_from_their_section_only(tmp_path):
    doc = tmp_path / "RELIABILITY.md"
    doc.write_text(
        "# R\n\nSee `GHSA-0000-0000-0000` elsewhere.\n\n## Accepted advisories\n\n"
        "- `PYSEC-2099-1` (django): the affected view is not used.\n\n## Next\n\n`CVE-2000-1`\n"
    )
    assert accepted_advisories(doc) == {"PYSEC-2099-1"}
    assert accepted_advisories(tmp_path / "missing.md") == set()


@pytest.mark.parametrize("service", ["pypi", "osv"])
def test_unreachable_advisory_service_is_a_loud_skip(monkeypatch, capsys, service):
    """The real pip-audit, its HTTPS requests sent to a proxy on a closed loopback port."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    call_command("audit_dependencies", "--service", service, "--timeout", "5")
    err = capsys.readouterr().err
    assert "DEPENDENCIES NOT AUDITED" in err
