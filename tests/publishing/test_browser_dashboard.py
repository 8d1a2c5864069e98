"""The marketer's publishing flow in a real Chromium: preview as a contact at desktop and phone width,
send a test, send the campaign, watch the counts and open the report."""

from __future__ import annotations

import pytest

from publishing.models import Campaign
from publishing.services import sending
from tests.crm.factories import ContactFactory

from .conftest import make_campaign, smtp_account


@pytest.mark.browser
def test_preview_send_test_send_and_report(
    browser_page, browser_login, live_server, member_factory, workspace, smtp_sink, fast_gateway
):
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    user = member_factory(workspace, "marketer")
    campaign = make_campaign(workspace, 2, name="Spring launch")
    ContactFactory(workspace=workspace, first_name="Ada", email="ada@x.example")  # not in the audience
    browser_login(browser_page, live_server, user, workspace)
    page = browser_page
    page.goto(live_server.url + "/publishing/")
    page.click("a:text('Newsletter')")
    page.fill("input[name=contact]", "ada@x.example")
    page.click("button:text('Preview')")
    page.wait_for_selector("text=Previewing as ada@x.example.")
    page.frame_locator("iframe").locator("text=Hello Ada").wait_for()
    assert page.locator("iframe").bounding_box()["width"] > 375
    page.click("button:text('Phone')")
    page.wait_for_function("document.querySelector('iframe').getBoundingClientRect().width === 375")
    page.fill("textarea[name=addresses]", "me@x.example")
    page.click("button:text('Send test')")
    page.wait_for_selector("text=Test sent to me@x.example.")
    assert smtp_sink.wait_for(1)[0]["Subject"] == "[TEST] Hi Ada"

    page.goto(live_server.url + f"/publishing/campaigns/{campaign.pk}/")
    page.click("button:text-is('Send now')")
    page.wait_for_selector("text=Send: done.")
    while sending.campaign_send_batch(campaign_id=campaign.pk).more:  # the worker's part
        pass
    assert Campaign.objects.get(pk=campaign.pk).status == "sent"
    page.reload()
    page.wait_for_selector("dd[data-status=sent]:text('2')")
    page.click("a:text('Report')")
    page.wait_for_selector("dd[data-figure=sent]:text('2')")
    assert page.locator("dd[data-figure=ctr]").inner_text() == "0.0%"
