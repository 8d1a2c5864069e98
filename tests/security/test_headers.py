"""Security headers on every page: a Content-Security-Policy that allows no inline script (django-csp),
no framing, a referrer policy, and HSTS under production settings. Templates carry no inline script or
inline event handler, so the policy breaks nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from aicmo.models import Role
from aicmo.navigation import installed_areas

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    "/login/",
    "/password/reset/",
    "/",
    "/jobs/",
    "/audit/",
    "/settings/",
    "/password/change/",
    "/two-factor/",
    "/admin/",
    "/api/docs/",
    "/api/v1/jobs/",
    "/no-such-page/",
    *[f"/{app}/" for app, _ in installed_areas()],
]


def _directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_every_page_carries_the_security_headers(client, member_factory, workspace, path):
    admin = member_factory(workspace, Role.ADMIN, is_staff=True, is_superuser=True)
    if path != "/login/":
        client.force_login(admin)
    resp = client.get(path)
    assert resp.status_code in (200, 404), resp.status_code
    csp = _directives(resp["Content-Security-Policy"])
    assert csp["script-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["default-src"] == ["'self'"]
    assert resp["Referrer-Policy"] == "same-origin"
    assert resp["X-Frame-Options"] == "DENY"
    assert resp["X-Content-Type-Options"] == "nosniff"


def _template_files() -> list[Path]:
    roots = [ROOT / "templates", *(ROOT / app / "templates" for app in ("aicmo", "gateway", "crm", "media"))]
    return sorted(p for root in roots if root.exists() for p in root.rglob("*.html"))


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
JS_URL = re.compile(r"(?:href|src|action)\s*=\s*[\"']\s*javascript:", re.I)


def test_no_template_has_inline_script_or_event_handlers():
    files = _template_files()
    assert len(files) > 20
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)[:80]}"
        for path in files
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER, JS_URL)
        for match in pattern.finditer(path.read_text())
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("snippet", "caught"),
    [
        ("<script>alert(1)</script>", True),
        ('<script type="module">x()</script>', True),
        ('<script src="/static/a.js" defer></script>', False),
        ('<script type="application/json" id="d">{}</script>', False),
        ('<select onchange="this.form.submit()">', True),
        ('<button type="button" data-copy="x">', False),
        ('<a href="javascript:void(0)">', True),
    ],
)
def test_the_template_scan_catches_what_the_policy_would_block(snippet, caught):
    found = any(p.search(snippet) for p in (INLINE_SCRIPT, INLINE_HANDLER, JS_URL))
    assert found is caught


def test_production_settings_send_hsts_and_redirect_to_https():
    """Under production settings (as check --deploy sees them) a secure response carries HSTS."""
    from tests.core.test_settings import PROD

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS"}
    }
    code = (
        "from django.http import HttpResponse; from django.test import RequestFactory; "
        "from django.middleware.security import SecurityMiddleware as M; "
        "m = M(lambda r: HttpResponse()); rf = RequestFactory(HTTP_HOST='aicmo.example.com'); "
        "print('HSTS=' + m(rf.get('/', secure=True))['Strict-Transport-Security']); "
        "print('INSECURE=' + str(m(rf.get('/', secure=False)).status_code))"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env | PROD,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if line.startswith(("HSTS=", "INSECURE="))
    )
    assert lines == {"HSTS": "max-age=31536000; includeSubDomains; preload", "INSECURE": "301"}
    assert django_settings.SECURE_HSTS_SECONDS == 0  # and never in dev/test over plain HTTP
