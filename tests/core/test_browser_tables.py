"""Tables on a phone: at 390 px wide every data table is a stack of cards (one per row) whose values sit under
their column's name, nothing is wider than its box, and no column is hidden (the gateway's self-check button
and latency used to be cut off). The crawl (test_browser_crawl) runs the same check on every page."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from aicmo.audit import audit_record
from aicmo.models import Membership, Role, Workspace
from tests.core.test_browser_crawl import table_problems

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = ["/gateway/", "/audit/", "/jobs/", "/crm/", "/publishing/", "/analytics/"]


def test_tables_become_labelled_cards_at_390px(chromium_browser, browser_login, live_server, redis_client):
    call_command("seed_demo", verbosity=0)
    workspace = Workspace.objects.get(slug="demo")
    user = Membership.objects.get(workspace=workspace, role=Role.ADMIN).user
    audit_record(workspace=workspace, actor=user, verb="workspace.time_zone_changed", target=workspace)
    context = chromium_browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    browser_login(page, live_server, user, workspace)
    try:
        for url in PAGES:
            page.goto(live_server.url + url)
            assert table_problems(page) == [], url
            assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, url
        page.goto(live_server.url + "/gateway/")
        row = page.locator("table[data-cards] tbody tr").first
        for label in ("Account", "State", "Latency avg / max", "Last self-check"):
            cell = row.locator(f'td[data-label="{label}"]')
            assert cell.is_visible(), label
            before = cell.evaluate("td => getComputedStyle(td, '::before').content")
            assert before == f'"{label}"', before
        button = row.get_by_role("button", name="Run self-check")
        box = button.bounding_box()
        assert button.is_visible() and box["x"] >= 0 and box["x"] + box["width"] <= 390
        # a wide screen keeps the ordinary table: one header row, cells side by side
        page.set_viewport_size({"width": 1366, "height": 900})
        assert page.locator("table[data-cards] thead").first.is_visible()
        assert row.evaluate("tr => getComputedStyle(tr).display") == "table-row"
    finally:
        context.close()
