"""The campaign pages in a real Chromium: audience estimate, an action refused with its reason, cancel."""

from __future__ import annotations

import pytest

from publishing.models import Campaign

from .conftest import make_campaign


@pytest.mark.browser
def test_campaign_detail_actions_and_refusal(
    browser_page, browser_login, live_server, member_factory, workspace
):
    user = member_factory(workspace, "marketer")
    campaign = make_campaign(workspace, 2, name="Spring launch")
    browser_login(browser_page, live_server, user, workspace)
    page = browser_page
    page.goto(live_server.url + "/publishing/")
    page.click("a:text('Spring launch')")
    page.wait_for_selector("strong[data-expected]:text('2')")
    page.click("button:text('pause')")
    page.wait_for_selector("text=Cannot pause a campaign that is draft.")
    page.click("button:text('cancel')")
    page.wait_for_selector("text=Cancel: done.")
    assert Campaign.objects.get(pk=campaign.pk).status == "cancelled"
