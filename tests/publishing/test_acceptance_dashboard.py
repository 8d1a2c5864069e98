"""Acceptance, end to end with real parts: contacts imported into crm, a segment of them; a campaign built
in the dashboard (Chromium), approved by a reviewer, scheduled; sent by a `celery -A aicmo worker`
subprocess through the gateway's SMTP adapter to the SMTP sink; one recipient opens and clicks through the
real tracking URLs, one unsubscribes by the RFC 8058 one-click POST, one hard-bounces by a signed Mailgun
webhook. The report page, the contacts' lifecycle and suppressions, and the analytics API show the same
numbers."""

from __future__ import annotations

import io
import re
import urllib.request
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from analytics.rollups import rollup_workspace
from crm import importing
from crm.models import Contact, Suppression
from publishing.models import Campaign, CampaignStatus, Delivery
from publishing.services import inbound
from publishing.services.approval import publishing_settings_save
from publishing.tasks import campaigns_tick_task
from tests.crm.factories import SegmentFactory
from tests.fixtures.services import wait_until

from .conftest import MAILGUN_KEY, drain_tracking, mailgun_body, make_sender, smtp_account

HTML = (
    "<p>Hello {{ contact.first_name }}</p>\n"
    '<p><a href="https://shop.example/sale">Sale</a></p>\n'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)
HUMAN = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _fetch(url: str, *, data: bytes | None = None) -> tuple[int, str]:
    """(status, Location) of one request as a person's mail client, redirects not followed."""
    request = urllib.request.Request(url, data=data, headers={"User-Agent": HUMAN})  # noqa: S310 - live_server
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.headers.get("Location", "")
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Location", "")


def _urls(message, live_url: str) -> dict[str, str]:
    html = message.get_body(("html",)).get_content()
    base = re.escape(live_url)
    return {
        "open": re.search(rf'{base}/publishing/t/o/[^"]+/', html)[0],
        "click": re.search(rf'{base}/publishing/t/c/[^"]+/', html)[0],
        "unsubscribe": re.search(rf"<({base}/publishing/u/[^>]+/)>", message["List-Unsubscribe"])[1],
    }


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_dashboard_campaign_end_to_end(
    browser_page, browser_login, live_server, member_factory, workspace, smtp_sink, processes, settings
):
    settings.PUBLIC_BASE_URL = live_server.url
    marketer = member_factory(workspace, "marketer")
    reviewer = member_factory(workspace, "reviewer")
    publishing_settings_save(workspace=workspace, approval_required=True)
    make_sender(workspace)
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    processes.allow.append(f"{smtp_sink.host}:{smtp_sink.port}")
    csv = b"email,first_name\nopen@x.example,Olga\nunsub@x.example,Uma\nbounce@x.example,Bo\n"
    run = importing.import_create(workspace=workspace, fh=io.BytesIO(csv), name="people.csv", enqueue=False)
    importing.import_execute(run_id=run.pk)
    assert Contact.objects.filter(workspace=workspace).count() == 3
    SegmentFactory(workspace=workspace, name="Imported")  # lifecycle = new: everyone just imported
    page = browser_page

    # The marketer writes the email and builds the campaign from the segment
    browser_login(page, live_server, marketer, workspace)
    page.goto(live_server.url + "/publishing/contents/new/")
    page.fill("input[name=name]", "Sale mail")
    page.click("button:text('Create content')")
    page.select_option("select[name=sender]", label="Acme News <news@acme.example>")
    page.fill("input[name=subject]", "Sale for {{ contact.first_name }}")
    page.fill("textarea[name=html]", HTML)
    page.click("button:text('Save email')")
    page.wait_for_selector("text=All checks pass.")
    page.goto(live_server.url + "/publishing/campaigns/new/")
    page.fill("input[name=name]", "Sale")
    page.select_option("select[name=content]", label="Sale mail")
    page.select_option("select[name=segments]", label="Imported")
    page.wait_for_selector("strong[data-expected]:text('3')")
    page.fill("input[name=utm_source]", "mail")
    page.click("button:text('Save campaign')")
    page.wait_for_selector("text=Campaign Sale saved.")
    page.wait_for_selector("[data-approval=pending]")
    campaign = Campaign.objects.get(workspace=workspace, name="Sale")

    # The reviewer approves
    browser_login(page, live_server, reviewer, workspace)
    page.goto(live_server.url + f"/publishing/campaigns/{campaign.pk}/")
    page.click("button:text('approve')")
    page.wait_for_selector("[data-approval=approved]")

    # The marketer schedules it for the next minutes (the campaign's zone is UTC here)
    browser_login(page, live_server, marketer, workspace)
    page.goto(live_server.url + f"/publishing/campaigns/{campaign.pk}/")
    when = (timezone.now() + timedelta(minutes=2)).replace(second=0, microsecond=0)
    page.fill("input[name=when]", when.strftime("%Y-%m-%dT%H:%M"))
    page.click("button:text('Schedule')")
    page.wait_for_selector("text=Scheduled.")
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SCHEDULED

    # Beat's tick starts it when due; the worker process sends through the gateway to the sink
    processes.worker("sender", extra_env={"PUBLIC_BASE_URL": live_server.url})

    def sent():
        campaigns_tick_task.delay()
        return Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENT

    wait_until(sent, 240, "the scheduled campaign to be sent", interval=2)
    messages = {m.envelope_to[0]: m for m in smtp_sink.wait_for(3, timeout=30)}
    assert sorted(messages) == ["bounce@x.example", "open@x.example", "unsub@x.example"]
    assert messages["open@x.example"]["Subject"] == "Sale for Olga"

    # Engagement through the real public endpoints, past the machine-open window after sending
    last_sent = max(Delivery.objects.filter(campaign=campaign).values_list("sent_at", flat=True))
    wait_until(lambda: timezone.now() - last_sent > timedelta(seconds=11), 15, "the machine-open window")
    opener = _urls(messages["open@x.example"], live_server.url)
    assert _fetch(opener["open"])[0] == 200
    status, location = _fetch(opener["click"])
    assert status == 302 and location == "https://shop.example/sale?utm_source=mail"
    unsub = _urls(messages["unsub@x.example"], live_server.url)
    assert _fetch(unsub["unsubscribe"], data=b"List-Unsubscribe=One-Click")[0] == 200
    hook = inbound.hook_create(workspace=workspace, provider="mailgun", secret=MAILGUN_KEY)
    bounced = Delivery.objects.get(campaign=campaign, email="bounce@x.example")
    response = Client().post(
        inbound.hook_url(hook).replace(settings.PUBLIC_BASE_URL, ""),
        data=mailgun_body(bounced.message_id),
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["recorded"] == 1
    drain_tracking()

    # The report page
    page.goto(live_server.url + f"/publishing/campaigns/{campaign.pk}/report/")
    figures = {
        name: page.locator(f"dd[data-figure={name}]").inner_text()
        for name in ("sent", "opens_human", "clicks_unique", "unsubscribes", "bounces_hard")
    }
    assert figures == {
        "sent": "3",
        "opens_human": "1",
        "clicks_unique": "1",
        "unsubscribes": "1",
        "bounces_hard": "1",
    }

    # The contacts
    contacts = {c.email: c for c in Contact.objects.filter(workspace=workspace)}
    assert contacts["open@x.example"].lifecycle == "engaged"
    suppressed = dict(
        Suppression.objects.filter(workspace=workspace, channel="email").values_list(
            "contact__email", "reason"
        )
    )
    assert suppressed == {"unsub@x.example": "unsubscribed", "bounce@x.example": "bounced"}

    # The analytics API, from its rollups
    rollup_workspace(workspace_id=workspace.pk)
    api = Client()
    api.force_login(marketer)
    report = api.get(f"/api/v1/analytics/campaigns/{campaign.pk}/", HTTP_X_WORKSPACE=str(workspace.pk)).json()
    totals = report["totals"]
    assert (totals["sent"], totals["unique_opens_human"], totals["unique_clicks"]) == (3, 1, 1)
    assert (totals["unsubscribes"], totals["bounces"]) == (1, 1)
