"""The marketer builds a campaign in a real Chromium: new content, a template refused naming its line,
fixed, previewed; a campaign from a crm segment with the live expected count, saved and scheduled."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from crm.models import Suppression
from publishing.models import Campaign, Content
from tests.crm.factories import ContactFactory, SegmentFactory

from .conftest import make_sender

FIXED_HTML = '<p>Hello {{ contact.first_name }}</p>\n<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'


@pytest.mark.browser
def test_build_content_and_campaign_then_schedule(
    browser_page, browser_login, live_server, member_factory, workspace
):
    user = member_factory(workspace, "marketer")
    make_sender(workspace)
    segment = SegmentFactory(workspace=workspace, name="New leads")
    contacts = ContactFactory.create_batch(3, workspace=workspace, lifecycle="new")
    Suppression.objects.create(
        workspace=workspace, contact=contacts[0], channel="email", reason="unsubscribed"
    )
    browser_login(browser_page, live_server, user, workspace)
    page = browser_page

    page.goto(live_server.url + "/publishing/")
    page.click("a:text('New content')")
    page.fill("input[name=name]", "Summer news")
    page.click("button:text('Create content')")
    page.wait_for_selector("text=Content Summer news created")
    page.select_option("select[name=sender]", label="Acme News <news@acme.example>")
    page.fill("input[name=subject]", "Hi {{ contact.first_name }}")
    page.fill("textarea[name=html]", "<p>Hello</p>\n<p>{{ contact.shoe_size }}</p>")
    page.click("button:text('Save email')")
    page.wait_for_selector("[data-form-errors]")
    error = page.locator("#id_html_error").inner_text()
    assert "line 2:" in error and "shoe_size" in error
    assert not Content.objects.get(name="Summer news").versions.exists()

    page.fill("textarea[name=html]", FIXED_HTML)
    page.click("button:text('Save email')")
    page.wait_for_selector("text=Email saved.")
    page.wait_for_selector("text=All checks pass.")
    page.frame_locator("iframe").locator("text=Hello First").wait_for()  # the sample contact

    page.goto(live_server.url + "/publishing/")
    page.click("a:text('New campaign')")
    page.fill("input[name=name]", "Summer send")
    page.select_option("select[name=content]", label="Summer news")
    page.select_option("select[name=segments]", label="New leads")
    page.wait_for_selector("strong[data-expected]:text('2')")  # HTMX estimate, nothing saved yet
    assert page.locator("[data-left-out=suppressed_unsubscribed]").inner_text().endswith(": 1")
    assert not Campaign.objects.exists()
    page.select_option("select[name=time_zone]", "Europe/Paris")
    page.fill("input[name=utm_source]", "newsletter")
    page.click("button:text('Save campaign')")
    page.wait_for_selector("text=Campaign Summer send saved.")
    campaign = Campaign.objects.get(name="Summer send")
    assert campaign.audience["segments"] == [segment.pk] and campaign.utm == {"utm_source": "newsletter"}

    year = timezone.now().year + 1
    page.fill("input[name=when]", f"{year}-07-01T09:30")
    page.click("button:text('Schedule')")
    page.wait_for_selector("text=Scheduled.")
    page.wait_for_selector(f"text=Scheduled for {year}-07-01 09:30 Europe/Paris ({year}-07-01 07:30 UTC).")
    campaign.refresh_from_db()
    assert campaign.status == "scheduled" and campaign.scheduled_at == datetime(year, 7, 1, 7, 30, tzinfo=UTC)
