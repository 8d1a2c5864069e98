"""Admin actions and dashboard pages call the campaign services; other workspaces' campaigns are 404."""

from __future__ import annotations

import pytest

from aicmo.models import Role
from publishing.models import Campaign

from .conftest import make_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(workspace):
    return make_campaign(workspace, 2, name="Admin C")


def test_admin_actions_move_the_state_machine_and_report_refusals(
    staff_for, campaign, django_capture_on_commit_callbacks
):
    client = staff_for(Role.MARKETER)
    url = "/admin/publishing/campaign/"
    resp = client.post(url, {"action": "pause", "_selected_action": [campaign.pk]}, follow=True)
    assert "Cannot pause a campaign that is draft." in resp.content.decode()
    resp = client.post(
        url, {"action": "schedule", "_selected_action": [campaign.pk], "scheduled_at": ""}, follow=True
    )
    assert "Give the time to schedule at first." in resp.content.decode()
    client.post(url, {"action": "schedule", "_selected_action": [campaign.pk], "scheduled_at": "nonsense"})
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    client.post(
        url, {"action": "schedule", "_selected_action": [campaign.pk], "scheduled_at": "2999-01-01 09:00"}
    )
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"
    client.post(url, {"action": "send_now", "_selected_action": [campaign.pk]})
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"
    client.post(url, {"action": "pause", "_selected_action": [campaign.pk]})
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"
    client.post(url, {"action": "cancel", "_selected_action": [campaign.pk]})
    assert Campaign.objects.get(pk=campaign.pk).status == "cancelled"


def test_admin_hides_other_workspaces_campaigns(staff_for, other_workspace, campaign):
    client = staff_for(Role.ADMIN, other_workspace)
    assert client.get(f"/admin/publishing/campaign/{campaign.pk}/change/").status_code == 404
    assert "Admin C" not in client.get("/admin/publishing/campaign/").content.decode()


def test_dashboard_list_detail_and_actions(
    client_for, campaign, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    client = client_for(Role.MARKETER)
    with django_assert_max_num_queries(12):
        resp = client.get("/publishing/")
    assert resp.status_code == 200 and "Admin C" in resp.content.decode()
    detail = client.get(f"/publishing/campaigns/{campaign.pk}/")
    assert detail.status_code == 200 and "Pre-send checks" in detail.content.decode()
    assert "<strong data-expected>2</strong> of 2 targeted" in detail.content.decode()
    resp = client.post(f"/publishing/campaigns/{campaign.pk}/pause/", follow=True)
    assert "Cannot pause a campaign that is draft." in resp.content.decode()
    client.post(f"/publishing/campaigns/{campaign.pk}/send/")
    page = client.get(f"/publishing/campaigns/{campaign.pk}/").content.decode()
    assert "Sending" in page and 'class="job-progress"' in page and 'data-status="queued">2<' in page


def test_dashboard_is_workspace_scoped_and_role_checked(client_for, other_workspace, campaign):
    stranger = client_for(Role.ADMIN, other_workspace)
    assert stranger.get(f"/publishing/campaigns/{campaign.pk}/").status_code == 404
    assert stranger.post(f"/publishing/campaigns/{campaign.pk}/cancel/").status_code == 404
    assert "Admin C" not in stranger.get("/publishing/").content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_viewer_cannot_act_from_the_dashboard(client_for, campaign, workspace):
    viewer = client_for(Role.VIEWER)
    assert viewer.post(f"/publishing/campaigns/{campaign.pk}/send/").status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_live_counts_partial_polls_while_sending_and_is_scoped(client_for, campaign, other_workspace):
    client = client_for(Role.MARKETER)
    url = f"/publishing/campaigns/{campaign.pk}/counts/"
    draft = client.get(url).content.decode()
    assert 'data-status="queued">0<' in draft and "hx-trigger" not in draft
    client.post(f"/publishing/campaigns/{campaign.pk}/send/")
    sending = client.get(url).content.decode()
    assert 'data-status="queued">2<' in sending and 'hx-trigger="every 2s"' in sending
    assert f'hx-get="{url}"' in client.get(f"/publishing/campaigns/{campaign.pk}/").content.decode()
    assert client_for(Role.ADMIN, other_workspace).get(url).status_code == 404
