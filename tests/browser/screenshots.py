"""Screenshots of every dashboard page at 1366 and 390 px wide, from a running server.

    .venv/bin/python -m tests.browser.screenshots OUT_DIR [--base-url http://127.0.0.1:8000]
        [--workspace demo] [--role admin] [--populate]

Run it with the same settings as the server (same ``AICMO_ENV``, ``DATABASE_URL`` / ``AICMO_VAR_DIR``),
e.g. next to ``make run`` after ``seed_demo``. It logs in as the workspace's first member with ``--role``
by writing a session into the server's session store (no password), takes the page list from the URL
configuration exactly as the Chromium crawl does (tests/core/test_browser_crawl.py: every GET page outside
admin/ and api/, files and HTMX fragments left out), and saves ``<page-name>-<width>.png`` (full page) into
OUT_DIR. A page whose row the workspace lacks (a job, an import) is listed as skipped; ``--populate`` first
imports a three-row CSV through the real import service so the job and import pages have one.
Images are not kept in git.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from importlib import import_module
from pathlib import Path

WIDTHS = (1366, 390)


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aicmo.settings")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    import django

    django.setup()


def _populate(workspace) -> None:
    from crm import importing

    csv = b"Email,First Name,Last Name\nlena@example.com,Lena,Park\nomar@example.com,Omar,Haddad\nnot-an-address,Bad,Row\n"
    run = importing.import_create(
        workspace=workspace, fh=io.BytesIO(csv), name="fair-leads.csv", enqueue=False
    )
    importing.import_execute(run_id=run.pk)


def _session_cookie(user, workspace, base_url: str) -> dict:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    from aicmo.tenancy import SESSION_KEY as WORKSPACE_SESSION_KEY

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = user._meta.pk.value_to_string(user)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store[WORKSPACE_SESSION_KEY] = workspace.pk
    store.save()
    return {"name": settings.SESSION_COOKIE_NAME, "value": store.session_key, "url": base_url}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--workspace", default="demo", help="workspace slug")
    parser.add_argument("--role", default="admin", choices=["admin", "marketer", "reviewer", "viewer"])
    parser.add_argument(
        "--populate", action="store_true", help="import a small CSV first (job and import pages)"
    )
    args = parser.parse_args(argv)

    _setup_django()
    from playwright.sync_api import sync_playwright

    from aicmo.models import Membership, Workspace
    from tests.core.test_browser_crawl import FILES, FRAGMENTS, _dashboard_patterns, _urls
    from tests.fixtures.browser import CHROMIUM_ARGS, find_chromium

    workspace = Workspace.objects.get(slug=args.workspace)
    user = Membership.objects.filter(workspace=workspace, role=args.role).order_by("pk").first().user
    if args.populate:
        _populate(workspace)
    pages = [(name, url) for name, url in _urls(workspace, strict=False) if name not in FILES | FRAGMENTS]
    taken = {name for name, _ in pages}
    for name in sorted({name for _, name in _dashboard_patterns()} - taken - FILES - FRAGMENTS):
        print(f"skipped {name}: the workspace has no row for it")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    base = args.base_url.rstrip("/")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS
        )
        for width in WIDTHS:
            context = browser.new_context(viewport={"width": width, "height": 900 if width > 500 else 844})
            context.add_cookies([_session_cookie(user, workspace, base)])
            page = context.new_page()
            for name, url in pages:
                response = page.goto(base + url)
                page.wait_for_load_state("networkidle")
                target = args.out_dir / f"{name.replace(':', '_')}-{width}.png"
                page.screenshot(path=str(target), full_page=True)
                print(f"{response.status if response else '---'} {width:>4} {url} -> {target.name}")
            context.close()
        browser.close()
    print(f"{len(pages)} pages x {len(WIDTHS)} widths in {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
