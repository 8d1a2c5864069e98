"""Campaign state machine, audience estimate and snapshot, scheduling in the campaign's time zone, and
the beat tick (start due, mark missed)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm import services as crm_services
from crm.models import Verdict
from publishing.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from publishing.services import campaigns
from publishing.services.audience import audience_estimate
from publishing.services.campaigns import TRANSITIONS, CampaignStateError
from tests.crm.factories import ContactListFactory, SegmentFactory

from .conftest import make_audience, make_campaign, make_content

pytestmark = pytest.mark.django_db
S = CampaignStatus


@pytest.fixture
def campaign(workspace):
    return make_campaign(workspace, 3, time_zone="Europe/Paris")


ACTIONS = {
    "pause": (campaigns.campaign_pause, S.PAUSED),
    "resume": (campaigns.campaign_resume, S.SENDING),
    "cancel": (campaigns.campaign_cancel, S.CANCELLED),
    "unschedule": (campaigns.campaign_unschedule, S.DRAFT),
    "send": (campaigns.campaign_send_now, S.SENDING),
}


@pytest.mark.parametrize("state", S.values)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_transition_matrix(campaign, state, action, django_capture_on_commit_callbacks):
    """Every action from every state either moves to its target (when the table allows it) or raises a
    CampaignStateError naming the state, leaving the campaign unchanged."""
    Campaign.objects.filter(pk=campaign.pk).update(status=state)
    campaign.refresh_from_db()
    service, target = ACTIONS[action]
    allowed = target in TRANSITIONS[state] and not (action == "resume" and state != S.PAUSED)
    allowed = allowed and not (action == "send" and state == S.SENT)
    if allowed:
        service(campaign=campaign)
        campaign.refresh_from_db()
        assert campaign.status == target
    else:
        with pytest.raises(CampaignStateError) as err:
            service(campaign=campaign)
        assert campaign.get_status_display().lower() in err.value.messages[0]
        campaign.refresh_from_db()
        assert campaign.status == state


def test_audience_estimate_and_snapshot_name_why_contacts_are_left_out(workspace, campaign):
    """Segment "everyone new" minus an exclusion list; crm decides who may receive."""
    from crm.models import ListMembership

    _, extra = make_audience(workspace, 5)
    unsub, bounced, erased, invalid, excluded = extra
    crm_services.contact_unsubscribe(contact=unsub)
    crm_services.contact_suppress(contact=bounced, reason="bounced")
    crm_services.contact_erase(contact=erased)
    crm_services.contact_set_verification(contact=invalid, verdict=Verdict.INVALID)
    exclusion = ContactListFactory(workspace=workspace)
    ListMembership.objects.create(workspace=workspace, contact_list=exclusion, contact=excluded)
    everyone = SegmentFactory(workspace=workspace)
    campaign = campaigns.campaign_update(
        campaign=campaign,
        audience={
            "segments": [everyone.pk],
            "lists": campaign.audience["lists"],
            "exclude_lists": [exclusion.pk],
        },
    )
    report = audience_estimate(campaign)
    expected_left = {
        "suppressed_unsubscribed": 1,
        "suppressed_bounced": 1,
        "erased": 1,
        "invalid_email": 1,
        "excluded": 1,
    }
    assert (report.expected, report.targeted, report.left_out) == (3, 7, expected_left)
    campaigns.campaign_send_now(campaign=campaign)
    rows = dict(Delivery.objects.filter(campaign=campaign).values_list("contact_id", "skip_reason"))
    assert rows[unsub.pk] == "suppressed_unsubscribed" and rows[bounced.pk] == "suppressed_bounced"
    assert rows[erased.pk] == "erased" and rows[invalid.pk] == "invalid_email" and excluded.pk not in rows
    assert Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.QUEUED).count() == 3
    campaign.refresh_from_db()
    assert campaign.snapshot == report.as_dict() | {"queued": 3}


def test_audience_ids_of_another_workspace_are_unknown(workspace, other_workspace):
    foreign = ContactListFactory(workspace=other_workspace)
    with pytest.raises(ValidationError) as err:
        campaigns.campaign_create(
            workspace=workspace, name="C", content=make_content(workspace), audience={"lists": [foreign.pk]}
        )
    assert err.value.message_dict == {"audience.lists": [f"Not found in this workspace: {foreign.pk}."]}


@pytest.mark.parametrize("bad", [{"lists": "1"}, {"lists": [True]}, {"people": [1]}, ["x"]])
def test_audience_shape_errors(workspace, bad):
    with pytest.raises(ValidationError):
        campaigns.campaign_create(
            workspace=workspace, name="C", content=make_content(workspace), audience=bad
        )


def test_schedule_wall_clock_in_campaign_time_zone_stored_utc(campaign):
    local = (
        (timezone.now() + dt.timedelta(days=30))
        .astimezone(ZoneInfo("Europe/Paris"))
        .replace(hour=9, minute=0, second=0, microsecond=0, tzinfo=None)
    )
    campaigns.campaign_schedule(campaign=campaign, when=local)
    campaign.refresh_from_db()
    assert campaign.status == S.SCHEDULED
    assert campaign.scheduled_at == local.replace(tzinfo=ZoneInfo("Europe/Paris")).astimezone(dt.UTC)


def test_schedule_refuses_past_and_dst_gap(campaign):
    with pytest.raises(ValidationError, match="future"):
        campaigns.campaign_schedule(campaign=campaign, when=timezone.now() - dt.timedelta(minutes=1))
    year = timezone.now().year + 1
    last_sunday_march = max(d for d in (dt.date(year, 3, day) for day in range(25, 32)) if d.weekday() == 6)
    gap = dt.datetime.combine(last_sunday_march, dt.time(2, 30))
    with pytest.raises(ValidationError, match="does not exist"):
        campaigns.campaign_schedule(campaign=campaign, when=gap)


def test_schedule_refuses_a_campaign_failing_checks(workspace):
    content = make_content(workspace, subject="  ")
    campaign = campaigns.campaign_create(workspace=workspace, name="C", content=content, audience={})
    with pytest.raises(ValidationError) as err:
        campaigns.campaign_schedule(campaign=campaign, when=timezone.now() + dt.timedelta(days=1))
    assert err.value.message_dict["campaign"] == [
        "The subject is empty.",
        "Choose at least one segment or list.",
    ]


def test_tick_starts_due_schedules_and_parks_missed_ones(
    workspace, campaign, settings, django_capture_on_commit_callbacks
):
    settings.PUBLISHING_MISSED_GRACE_SECONDS = 600
    later = campaigns.campaign_create(
        workspace=workspace, name="Late", content=campaign.content, audience=campaign.audience
    )
    now = timezone.now()
    for c in (campaign, later):
        campaigns.campaign_schedule(campaign=c, when=now + dt.timedelta(minutes=5))
    Campaign.objects.filter(pk=campaign.pk).update(scheduled_at=now - dt.timedelta(minutes=1))
    Campaign.objects.filter(pk=later.pk).update(scheduled_at=now - dt.timedelta(minutes=11))
    with django_capture_on_commit_callbacks() as callbacks:
        result = campaigns.campaigns_tick(now=now)
    assert result["started"] == 1 and result["missed"] == 1
    assert Campaign.objects.get(pk=campaign.pk).status == S.SENDING
    assert Campaign.objects.get(pk=later.pk).status == S.MISSED
    assert callbacks  # senders enqueued after commit
    # a person decides about the missed one: send it now (or cancel)
    campaigns.campaign_send_now(campaign=Campaign.objects.get(pk=later.pk))
    assert Campaign.objects.get(pk=later.pk).status == S.SENDING


def test_campaigns_to_wake_skips_campaigns_a_worker_claimed_from_recently(
    campaign, settings, django_capture_on_commit_callbacks
):
    from publishing.selectors import campaigns_to_wake

    campaign = campaigns.campaign_send_now(campaign=campaign)
    first = Delivery.objects.filter(campaign=campaign).order_by("pk").first()
    now = timezone.now()
    lease = dt.timedelta(seconds=settings.PUBLISHING_CLAIM_LEASE_SECONDS)
    assert campaigns_to_wake(now=now, lease=lease) == [campaign.pk]  # queued, nobody at work
    Delivery.objects.filter(pk=first.pk).update(status=DeliveryStatus.SENDING, claimed_by="w", claimed_at=now)
    assert campaigns_to_wake(now=now, lease=lease) == []  # a worker is at it
    later = now + lease + dt.timedelta(seconds=1)
    assert campaigns_to_wake(now=later, lease=lease) == [campaign.pk]  # its claim lapsed
    Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.QUEUED).update(
        retry_at=later + dt.timedelta(minutes=5)
    )
    Delivery.objects.filter(pk=first.pk).update(status=DeliveryStatus.SENT)
    assert campaigns_to_wake(now=later, lease=lease) == []  # waiting for retry_at


@pytest.mark.parametrize("bad", [0, -1, 2**63, 44484948904246696462830796800])
def test_audience_ids_no_row_can_have_are_unknown_not_a_crash(workspace, bad):
    with pytest.raises(ValidationError) as err:
        campaigns.campaign_create(
            workspace=workspace, name="C", content=make_content(workspace), audience={"segments": [bad]}
        )
    assert err.value.message_dict == {"audience.segments": [f"Not found in this workspace: {bad}."]}
