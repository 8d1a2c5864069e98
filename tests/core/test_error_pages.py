"""The product's own 400/403/404/500 pages, in every profile `make run` and production use (DEBUG is off
unless DEBUG=1 is set)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.crm.factories import ContactFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("env", "debug"), [({"AICMO_ENV": "dev"}, "False"), ({"AICMO_ENV": "dev", "DEBUG": "1"}, "True")]
)
def test_make_run_profile_has_debug_off_unless_asked(env, debug):
    clean = {
        k: v for k, v in os.environ.items() if k not in {"DEBUG", "AICMO_ENV", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; print(settings.DEBUG)",
        ],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == debug


def test_unknown_page_and_foreign_id_get_the_product_404(client_for, other_workspace):
    client = client_for("marketer")
    theirs = ContactFactory(workspace=other_workspace, email="secret@example.com")
    for url in ("/no-such-page/", f"/crm/contacts/{theirs.pk}/"):
        resp = client.get(url)
        body = resp.content.decode()
        assert resp.status_code == 404 and "<h1>Not found</h1>" in body and 'class="topbar"' in body
        assert "secret@example.com" not in body and "URLconf" not in body


def test_viewer_posting_gets_the_product_403(client_for):
    client = client_for("viewer")
    resp = client.post("/crm/tags/", {"name": "x"})
    assert resp.status_code == 403 and "<h1>Not allowed</h1>" in resp.content.decode()


@pytest.mark.urls("tests.core.error_urls")
def test_a_crash_gets_the_product_500_without_details(db):
    client = Client(raise_request_exception=False)
    resp = client.get("/crash-for-test/")
    body = resp.content.decode()
    assert resp.status_code == 500 and "Something went wrong" in body
    assert "boom" not in body and "Traceback" not in body and "RuntimeError" not in body
