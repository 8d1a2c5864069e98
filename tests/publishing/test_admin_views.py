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


def test_admin_edits_a_sender_through_the_service_and_never_its_address(staff_for, workspace):
    """Verification vouches for the address: the admin changes name and speed limits (audited), not email."""
    from aicmo.models import AuditEvent
    from publishing.models import Sender
    from publishing.services.content import sender_create, sender_verify

    sender = sender_verify(sender=sender_create(workspace=workspace, email="news@acme.example"))
    client = staff_for(Role.ADMIN)
    url = f"/admin/publishing/sender/{sender.pk}/change/"
    resp = client.post(
        url,
        {"email": "attacker@evil.example", "name": "News", "max_per_second": "5", "max_per_hour": ""},
    )
    assert resp.status_code == 302
    sender = Sender.objects.get(pk=sender.pk)
    assert (sender.email, sender.name, sender.max_per_second, sender.max_per_hour) == (
        "news@acme.example",
        "News",
        5,
        None,
    )
    assert sender.is_verified
    assert AuditEvent.objects.filter(verb="publishing.sender.updated", target_id=str(sender.pk)).exists()


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("\u00a0News@Acme.example\u200b", "news@acme.example"),
        ("info@xn--exmple-cua.de", "info@exämple.de"),
        ("jürgen@exämple.de", "jürgen@exämple.de"),
    ],
)
def test_sender_and_reply_to_go_through_the_one_email_normalizer(workspace, typed, stored):
    from publishing.services.content import sender_create, sender_verify

    from .conftest import make_content

    sender = sender_create(workspace=workspace, email=typed)
    assert sender.email == stored
    version = make_content(workspace, sender=sender_verify(sender=sender), reply_to=typed).versions.get()
    assert version.reply_to == stored


def test_sender_refuses_what_the_normalizer_refuses(workspace):
    from django.core.exceptions import ValidationError

    from publishing.services.content import sender_create, sender_update

    with pytest.raises(ValidationError) as exc:
        sender_create(workspace=workspace, email="news@acme\u200b.example")
    assert "email" in exc.value.message_dict
    sender = sender_create(workspace=workspace, email="ok@acme.example")
    with pytest.raises(ValidationError) as exc:
        sender_update(sender=sender, name="x", max_per_second=0, max_per_hour=None)
    assert "max_per_second" in exc.value.message_dict
