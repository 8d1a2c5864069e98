"""The workspace review rule: approval before scheduling/sending, audited, withdrawn by edits."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from aicmo.models import AuditEvent, Role
from publishing.models import Campaign
from publishing.services import approval, campaigns
from publishing.services import content as content_services

from .conftest import make_campaign

pytestmark = pytest.mark.django_db
LATER = datetime(2999, 1, 1, 9, 0)


@pytest.fixture
def strict(workspace):
    approval.publishing_settings_save(workspace=workspace, approval_required=True)
    return workspace


def test_without_the_rule_nothing_changes(workspace):
    campaign = make_campaign(workspace, 1)
    assert campaigns.campaign_schedule(campaign=campaign, when=LATER).status == "scheduled"


def test_rule_blocks_schedule_and_send_until_a_reviewer_approves(strict, member_factory):
    campaign = make_campaign(strict, 1)
    for action in (
        lambda: campaigns.campaign_schedule(campaign=campaign, when=LATER),
        lambda: campaigns.campaign_send_now(campaign=campaign),
    ):
        with pytest.raises(ValidationError, match="needs a reviewer's approval"):
            action()
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    marketer = member_factory(strict, Role.MARKETER)
    with pytest.raises(PermissionDenied):
        approval.campaign_approve(campaign=campaign, by=marketer, role=Role.MARKETER)
    reviewer = member_factory(strict, Role.REVIEWER)
    approval.campaign_approve(campaign=campaign, by=reviewer, role=Role.REVIEWER)
    event = AuditEvent.objects.get(verb="publishing.campaign.approved")
    assert (event.actor_id, event.target_id) == (reviewer.pk, str(campaign.pk))
    assert campaigns.campaign_schedule(campaign=campaign, when=LATER).status == "scheduled"


@pytest.mark.parametrize("edit", ["content", "campaign"])
def test_editing_what_was_approved_sends_it_back_to_review(strict, member_factory, edit):
    campaign = make_campaign(strict, 1)
    reviewer = member_factory(strict, Role.REVIEWER)
    approval.campaign_approve(campaign=campaign, by=reviewer, role=Role.REVIEWER)
    campaigns.campaign_schedule(campaign=campaign, when=LATER)
    if edit == "content":
        content_services.email_version_save(content=campaign.content, subject="New subject")
    else:
        campaigns.campaign_unschedule(campaign=campaign)
        campaigns.campaign_update(campaign=campaign, name="Renamed")
    campaign.refresh_from_db()
    assert (campaign.status, campaign.approved_at, campaign.scheduled_at) == ("draft", None, None)
    assert AuditEvent.objects.filter(verb="publishing.campaign.approval_withdrawn").count() == 1
    with pytest.raises(ValidationError, match="approval"):
        campaigns.campaign_send_now(campaign=campaign)


def test_sent_campaigns_keep_their_approval_when_content_changes(strict, member_factory):
    campaign = make_campaign(strict, 1)
    reviewer = member_factory(strict, Role.REVIEWER)
    approval.campaign_approve(campaign=campaign, by=reviewer, role=Role.REVIEWER)
    campaigns.campaign_send_now(campaign=campaign)
    content_services.email_version_save(content=campaign.content, subject="Later edit")
    campaign.refresh_from_db()
    assert campaign.status == "sending" and campaign.approved_at is not None
    with pytest.raises(ValidationError, match="past review"):
        approval.campaign_approve(campaign=campaign, by=reviewer, role=Role.REVIEWER)


def test_dashboard_approve_button_is_for_reviewers_of_the_workspace(strict, client_for, other_workspace):
    campaign = make_campaign(strict, 1)
    url = f"/publishing/campaigns/{campaign.pk}/approve/"
    marketer = client_for(Role.MARKETER)
    page = marketer.get(f"/publishing/campaigns/{campaign.pk}/").content.decode()
    assert 'data-approval="pending"' in page and url not in page
    assert marketer.post(url).status_code == 403
    assert client_for(Role.ADMIN, other_workspace).post(url).status_code == 404
    reviewer = client_for(Role.REVIEWER)
    assert url in reviewer.get(f"/publishing/campaigns/{campaign.pk}/").content.decode()
    page = reviewer.post(url, follow=True).content.decode()
    assert 'data-approval="approved"' in page
    assert Campaign.objects.get(pk=campaign.pk).approved_at is not None
