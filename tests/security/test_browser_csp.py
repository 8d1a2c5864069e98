"""The Content-Security-Policy in a real Chromium: the main pages load without a single violation, an
inline script injected into a page does not run, and the behaviour moved out of inline handlers still
works (the workspace switcher)."""

from __future__ import annotations

import pytest

from aicmo.models import Role
from aicmo.navigation import installed_areas
from tests.factories import MembershipFactory, WorkspaceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [
    "/",
    "/jobs/",
    "/audit/",
    "/settings/",
    "/password/change/",
    "/two-factor/",
    "/api/docs/",
    "/admin/",
] + [f"/{app}/" for app, _ in installed_areas()]


def _violations(page) -> list[str]:
    found: list[str] = []
    page.on(
        "console",
        lambda msg: found.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return found


def test_main_pages_load_without_csp_violations(
    browser_page, browser_login, live_server, member_factory, workspace
):
    page = browser_page
    violations = _violations(page)
    page.goto(f"{live_server.url}/login/")
    page.wait_for_load_state("networkidle")
    admin = member_factory(workspace, Role.ADMIN, is_staff=True, is_superuser=True)
    browser_login(page, live_server, admin, workspace)
    for path in PAGES:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
    assert violations == []


def test_an_injected_inline_script_does_not_run(
    browser_page, browser_login, live_server, member_factory, workspace
):
    page = browser_page
    violations = _violations(page)
    browser_login(page, live_server, member_factory(workspace, Role.MARKETER), workspace)
    page.goto(f"{live_server.url}/jobs/")
    page.evaluate(
        """() => {
            const s = document.createElement('script');
            s.textContent = 'window.__injected = true';
            document.body.appendChild(s);
            const img = document.createElement('img');
            img.setAttribute('onerror', 'window.__handler = true');
            img.src = 'data:,not-an-image';
            document.body.appendChild(img);
        }"""
    )
    page.wait_for_timeout(300)  # let the image fail to load (its handler must not run either)
    assert page.evaluate("() => [window.__injected === undefined, window.__handler === undefined]") == [
        True,
        True,
    ]
    assert any("script-src" in v for v in violations)


def test_the_workspace_switcher_still_submits_on_change(
    browser_page, browser_login, live_server, member_factory, workspace
):
    user = member_factory(workspace, Role.MARKETER)
    other = WorkspaceFactory(name="Globex", slug="globex")
    MembershipFactory(workspace=other, user=user, role=Role.VIEWER)
    page = browser_page
    violations = _violations(page)
    browser_login(page, live_server, user, workspace)
    page.goto(f"{live_server.url}/jobs/")
    with page.expect_navigation():
        page.select_option("#ws-select", str(other.pk))
    assert page.locator("#ws-select option:checked").inner_text() == "Globex"
    assert violations == []
