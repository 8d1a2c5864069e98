"""The campaign report: figures from deliveries and engagement events in a fixed number of queries."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from aicmo.models import Role
from publishing.models import Delivery, DeliveryStatus, EngagementEvent
from publishing.selectors import ReportRow, campaign_report
from publishing.services import campaigns

from .conftest import make_campaign

pytestmark = pytest.mark.django_db


def _event(delivery, kind, *, machine=False, url=None, value=None):
    return EngagementEvent.objects.create(
        workspace_id=delivery.workspace_id,
        kind=kind,
        campaign_id=delivery.campaign_id,
        delivery=delivery,
        contact_id=delivery.contact_id,
        occurred_at=timezone.now(),
        machine=machine,
        value=value,
        metadata={"url": url} if url else {},
    )


@pytest.fixture
def sent_campaign(workspace):
    campaign = make_campaign(workspace, 4, name="Report C")
    campaigns.campaign_send_now(campaign=campaign)
    rows = list(Delivery.objects.filter(campaign=campaign).order_by("pk"))
    Delivery.objects.filter(pk__in=[d.pk for d in rows[:3]]).update(status=DeliveryStatus.SENT)
    Delivery.objects.filter(pk=rows[3].pk).update(status=DeliveryStatus.FAILED)
    a, b, c, _ = rows
    for d in (a, b, c):
        _event(d, "sent")
    _event(a, "open")
    _event(a, "open")  # a second open of the same recipient is not a second unique open
    _event(b, "open", machine=True)  # Apple MPP: counted apart
    _event(a, "click", url="https://acme.example/offer")
    _event(a, "click", url="https://acme.example/offer")
    _event(a, "click", url="https://acme.example/other")
    _event(b, "click", machine=True, url="https://acme.example/offer")
    _event(c, "bounce_hard")
    _event(b, "unsubscribe")
    _event(b, "complaint")
    _event(a, "reply")
    _event(a, "conversion", value=Decimal("19.90"))
    _event(a, "conversion", value=Decimal("5.10"))
    return campaign


def test_report_figures_and_rates(sent_campaign, django_assert_num_queries):
    with django_assert_num_queries(3):
        report = campaign_report(sent_campaign)
    t = report.total
    assert (t.sent, t.failed, t.delivered) == (3, 1, 0)
    assert (t.opens_human, t.opens_machine) == (1, 1)
    assert (t.clicks, t.clicks_unique, t.clicks_machine) == (3, 1, 1)
    assert (t.bounces_hard, t.unsubscribes, t.complaints, t.replies) == (1, 1, 1, 1)
    assert (t.conversions, t.revenue) == (2, Decimal("25.00"))
    # No delivered events yet: CTR is over sent, and says so.
    assert t.ctr_base == "sent" and t.ctr == pytest.approx(1 / 3)
    assert t.ctor == 1.0
    assert report.links == [
        {"url": "https://acme.example/offer", "clicks": 2, "unique": 1},
        {"url": "https://acme.example/other", "clicks": 1, "unique": 1},
    ]
    assert [r.label for r in report.variants] == ["all"]


def test_ctr_uses_delivered_once_delivered_events_exist(sent_campaign):
    a = Delivery.objects.filter(campaign=sent_campaign, status="sent").order_by("pk").first()
    _event(a, "delivered")
    t = campaign_report(sent_campaign).total
    assert (t.delivered, t.ctr_base, t.ctr) == (1, "delivered", 1.0)


def test_empty_campaign_has_undefined_rates(workspace):
    t = campaign_report(make_campaign(workspace, 2)).total
    assert (t.sent, t.clicks_unique, t.ctr, t.ctor, t.revenue) == (0, 0, None, None, Decimal("0"))


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sent=st.integers(0, 1000),
    delivered=st.integers(0, 1000),
    opens=st.integers(0, 1000),
    clicks=st.integers(0, 1000),
)
def test_rates_are_defined_exactly_when_their_base_is_positive(sent, delivered, opens, clicks):
    row = ReportRow(sent=sent, delivered=delivered, opens_human=opens, clicks_unique=clicks)
    base = delivered or sent
    assert (row.ctr is None) == (base == 0)
    assert (row.ctor is None) == (opens == 0)
    if base:
        assert row.ctr == clicks / base
    if opens:
        assert row.ctor == clicks / opens


def test_report_page_shows_figures_and_is_workspace_scoped(
    client_for, sent_campaign, other_workspace, django_assert_max_num_queries
):
    client = client_for(Role.VIEWER)
    with django_assert_max_num_queries(12):
        resp = client.get(f"/publishing/campaigns/{sent_campaign.pk}/report/")
    page = resp.content.decode()
    assert resp.status_code == 200
    assert 'data-figure="sent">3<' in page and 'data-figure="ctr">33.3%<' in page
    assert 'data-figure="ctor">100.0%<' in page and "https://acme.example/other" in page
    assert 'data-figure="revenue">25.00<' in page
    stranger = client_for(Role.ADMIN, other_workspace)
    assert stranger.get(f"/publishing/campaigns/{sent_campaign.pk}/report/").status_code == 404
