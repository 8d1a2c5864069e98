"""Segment builder in a real Chromium: typing rules refreshes the count through HTMX."""

from __future__ import annotations

import json

import pytest

from tests.crm.factories import ContactFactory


@pytest.mark.browser
def test_segment_builder_live_count(browser_page, browser_login, live_server, member_factory, workspace):
    user = member_factory(workspace, "marketer")
    ContactFactory.create_batch(3, workspace=workspace, engagement_score=80)
    ContactFactory.create_batch(2, workspace=workspace, engagement_score=10)
    browser_login(browser_page, live_server, user, workspace)
    page = browser_page
    page.goto(live_server.url + "/crm/segments/new/")
    rules = {"op": "and", "rules": [{"field": "score", "operator": "gte", "value": 50}]}
    page.fill("#rules", json.dumps(rules))
    page.press("#rules", "End")
    page.wait_for_selector("strong.segment-count:text('3')", timeout=10_000)
    rules["rules"][0]["value"] = "lots"
    page.fill("#rules", json.dumps(rules))
    page.press("#rules", "End")
    page.wait_for_selector("text=rules[0].value", timeout=10_000)
    rules["rules"][0]["value"] = 5
    page.fill("#rules", json.dumps(rules))
    page.press("#rules", "End")
    page.wait_for_selector("strong.segment-count:text('5')", timeout=10_000)
