"""The visual segment builder in a real Chromium: a nested rule built by clicking is serialized into the
``rules`` field, counted live through HTMX (same count as crm.segments), saved, and rendered back."""

from __future__ import annotations

import json

import pytest

from crm.models import Segment
from crm.segments import segment_queryset
from tests.crm.factories import ContactFactory

RULES = {
    "op": "and",
    "rules": [
        {"field": "lifecycle", "operator": "lifecycle_in", "value": ["new"]},
        {
            "op": "or",
            "rules": [
                {"field": "title", "operator": "contains", "value": "Head"},
                {"field": "score", "operator": "gte", "value": 50},
            ],
        },
    ],
}


def _people(workspace):
    for lifecycle, title, score in [
        ("new", "Head of Sales", 10),  # matches through the title
        ("new", "Engineer", 70),  # matches through the score
        ("new", "head of ops", 90),  # both (contains is case-insensitive)
        ("new", "Engineer", 10),  # neither
        ("engaged", "Head of Growth", 80),  # wrong stage
        ("verified", "", 0),
    ]:
        ContactFactory(workspace=workspace, lifecycle=lifecycle, title=title, engagement_score=score)


def _row(path: str) -> str:
    return f'[data-path="{path}"]'


def _foot_button(page, path: str, text: str):
    page.locator(f"{_row(path)} > .rb-group-foot button", has_text=text).click()


@pytest.mark.browser
def test_build_nested_rule_by_clicking_count_save_and_render_back(
    browser_page, browser_login, live_server, member_factory, workspace
):
    user = member_factory(workspace, "marketer")
    _people(workspace)
    expected = segment_queryset(RULES, workspace).count()
    assert expected == 3
    browser_login(browser_page, live_server, user, workspace)
    page = browser_page
    page.goto(live_server.url + "/crm/segments/new/")

    # JS on: the builder is shown, the JSON textarea is tucked away behind "Edit as JSON".
    assert page.is_visible("#rule-builder") and not page.is_visible("#rules")
    while page.locator(_row("rules[0]")).count():  # clear the example rules
        page.locator(f"{_row('rules[0]')} .rb-remove").first.click()

    _foot_button(page, "", "+ Condition")
    page.select_option(f"{_row('rules[0]')} select[aria-label=Field]", "lifecycle")
    page.select_option(f"{_row('rules[0]')} select[aria-label=Operator]", "lifecycle_in")
    page.check(f"{_row('rules[0]')} input[type=checkbox][value=new]")

    _foot_button(page, "", "+ Group")
    page.locator(f"{_row('rules[1]')} > .rb-group-head label", has_text="OR").click()
    cond = _row("rules[1].rules[0]")
    page.select_option(f"{cond} select[aria-label=Field]", "title")
    page.select_option(f"{cond} select[aria-label=Operator]", "contains")
    page.fill(f"{cond} input[aria-label=Value]", "Head")

    # a bad value is reported next to its own row, then the row is turned into the intended condition
    _foot_button(page, "rules[1]", "+ Condition")
    cond = _row("rules[1].rules[1]")
    page.select_option(f"{cond} select[aria-label=Field]", "score")
    page.select_option(f"{cond} select[aria-label=Operator]", "gte")
    page.wait_for_selector(f"{cond} > .rb-error:text('Expected a number')")
    page.fill(f"{cond} input[aria-label=Value]", "50")

    assert json.loads(page.input_value("#rules")) == RULES
    page.wait_for_selector(f"strong.segment-count:text-is('{expected}')")
    assert not page.is_visible(f"{cond} > .rb-error")

    page.fill("input[name=name]", "Heads or hot")
    page.click("button:text('Save segment')")
    page.wait_for_selector("text=Segment Heads or hot saved.")
    segment = Segment.objects.get(workspace=workspace, name="Heads or hot")
    assert segment.rules == RULES

    page.reload()
    page.wait_for_selector(f"strong.segment-count:text-is('{expected}')")
    assert page.is_checked(f"{_row('rules[0]')} input[value=new]")
    assert not page.is_checked(f"{_row('rules[0]')} input[value=engaged]")
    assert page.inner_text(f"{_row('rules[1]')} > .rb-group-head label.active") == "OR"
    assert page.input_value(f"{_row('rules[1].rules[0]')} select[aria-label=Field]") == "title"
    assert page.input_value(f"{_row('rules[1].rules[0]')} input[aria-label=Value]") == "Head"
    assert page.input_value(f"{_row('rules[1].rules[1]')} select[aria-label=Operator]") == "gte"
    assert page.input_value(f"{_row('rules[1].rules[1]')} input[aria-label=Value]") == "50"

    # "Edit as JSON" shows the same tree; an edit there comes back into the builder
    page.click("button:text('Edit as JSON')")
    assert json.loads(page.input_value("#rules")) == RULES
    edited = json.loads(json.dumps(RULES))
    edited["rules"][1]["op"] = "and"
    page.fill("#rules", json.dumps(edited))
    page.click("button:text('Visual builder')")
    assert page.inner_text(f"{_row('rules[1]')} > .rb-group-head label.active") == "AND"
    page.wait_for_selector(f"strong.segment-count:text-is('{segment_queryset(edited, workspace).count()}')")


@pytest.mark.browser
def test_value_inputs_follow_the_operator(
    browser_page, browser_login, live_server, member_factory, workspace
):
    user = member_factory(workspace, "marketer")
    browser_login(browser_page, live_server, user, workspace)
    page = browser_page
    page.goto(live_server.url + "/crm/segments/new/")
    while page.locator(_row("rules[0]")).count():
        page.locator(f"{_row('rules[0]')} .rb-remove").first.click()
    _foot_button(page, "", "+ Condition")
    row = _row("rules[0]")
    page.select_option(f"{row} select[aria-label=Field]", "created_at")
    ops = page.eval_on_selector_all(
        f"{row} select[aria-label=Operator] option", "els => els.map(e => e.value)"
    )
    assert "within_last_days" in ops and "contains" not in ops and "has_tag" not in ops
    page.select_option(f"{row} select[aria-label=Operator]", "between")
    page.fill(f"{row} input[aria-label=From]", "2026-01-01")
    page.fill(f"{row} input[aria-label=To]", "2026-02-01")
    assert json.loads(page.input_value("#rules"))["rules"][0] == {
        "field": "created_at",
        "operator": "between",
        "value": ["2026-01-01", "2026-02-01"],
    }
    page.select_option(f"{row} select[aria-label=Operator]", "within_last_days")
    page.fill(f"{row} input[aria-label=Days]", "14")
    assert json.loads(page.input_value("#rules"))["rules"][0]["value"] == 14
    page.select_option(f"{row} select[aria-label=Operator]", "empty")
    assert page.locator(f"{row} .rb-value input").count() == 0
    assert "value" not in json.loads(page.input_value("#rules"))["rules"][0]
    page.select_option(f"{row} select[aria-label=Field]", "tags")
    page.fill(f"{row} input[aria-label=Tag]", "vip, partner")
    assert json.loads(page.input_value("#rules"))["rules"][0] == {
        "field": "tags",
        "operator": "has_tag",
        "value": ["vip", "partner"],
    }
    page.wait_for_selector("strong.segment-count:text-is('0')")


@pytest.mark.browser
def test_without_javascript_the_json_textarea_still_works(
    chromium_browser, browser_login, live_server, member_factory, workspace
):
    user = member_factory(workspace, "marketer")
    ContactFactory(workspace=workspace, engagement_score=60)
    context = chromium_browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        browser_login(page, live_server, user, workspace)
        page.goto(live_server.url + "/crm/segments/new/")
        assert page.is_visible("#rules") and not page.is_visible("#rule-builder")
        rules = {"op": "and", "rules": [{"field": "score", "operator": "gt", "value": 50}]}
        page.fill("input[name=name]", "Plain")
        page.fill("#rules", json.dumps(rules))
        page.click("button:text('Save segment')")
        page.wait_for_selector("text=Segment Plain saved.")
        assert Segment.objects.get(workspace=workspace, name="Plain").rules == rules
    finally:
        context.close()
