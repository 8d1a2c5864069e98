"""Keyboard-only use of the contact pages in a real Chromium: reach "New contact" with Tab, fill the form by
typing, submit with Enter, and see a visible focus ring on every stop on the way."""

from __future__ import annotations

import pytest

from crm.models import Contact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAX_TABS = 60


def _tab_to(page, predicate_js: str) -> None:
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        outline = page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]; }"
        )
        assert outline[0] != "none" and outline[1] != "0px", "focus is not visible"
        if page.evaluate(predicate_js):
            return
    raise AssertionError(f"not reachable with Tab: {predicate_js}")


def test_create_a_contact_with_the_keyboard_only(
    browser_page, browser_login, live_server, member_factory, workspace
):
    user = member_factory(workspace, "marketer")
    page = browser_login(browser_page, live_server, user, workspace)
    page.goto(f"{live_server.url}/crm/")
    _tab_to(page, "() => document.activeElement.textContent.trim() === 'New contact'")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/crm/new/")
    _tab_to(page, "() => document.activeElement.id === 'id_email'")
    page.keyboard.type("Keys@Example.com")
    page.keyboard.press("Tab")
    page.keyboard.type("Kay")
    page.keyboard.press("Enter")
    page.wait_for_selector("h1:has-text('keys@example.com')")
    contact = Contact.objects.get(workspace=workspace)
    assert contact.email == "keys@example.com" and contact.first_name == "Kay"
    # A form error is announced next to its field and the typed values stay.
    page.goto(f"{live_server.url}/crm/new/")
    _tab_to(page, "() => document.activeElement.id === 'id_email'")
    page.keyboard.type("keys@example.com")
    page.keyboard.press("Enter")
    page.wait_for_selector("#id_email_error")
    assert "already exists" in page.inner_text("#id_email_error")
    assert page.input_value("#id_email") == "keys@example.com"
