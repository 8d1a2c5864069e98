"""Time zones: a workspace zone (schedules, analytics days, members' default), a per-person reading zone,
and an API that answers in UTC whoever calls."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from aicmo.models import AuditEvent, Job, Role, Workspace
from aicmo.timezones import user_time_zone_set, workspace_time_zone_set, zone_clean
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

AT = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # 14:00 in Berlin (CEST), 08:00 in New York (EDT)


@pytest.mark.parametrize(
    "name", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "  Asia/Kolkata "]
)
def test_known_zone_names_are_accepted(name):
    assert zone_clean(name) == name.strip()


@pytest.mark.parametrize(
    "name",
    ["", "   ", "Mars/Olympus", "europe/berlin", "+02:00", "../../etc/passwd", "/usr/share/zoneinfo/UTC",
     "Europe/Berlin\x00", "A" * 300, None, 3],
)  # fmt: skip
def test_anything_else_is_a_field_error(name):
    with pytest.raises(ValidationError) as exc:
        zone_clean(name)
    assert "time_zone" in exc.value.message_dict


def test_blank_follows_the_workspace_only_where_allowed():
    assert zone_clean("", blank=True) == ""


def _job_page(client, job):
    return client.get(f"/jobs/{job.pk}/").content.decode()


def test_pages_show_the_workspace_zone_then_the_persons_own(client_for, workspace):
    client = client_for(Role.MARKETER)
    job = JobFactory(workspace=workspace)
    Job.objects.filter(pk=job.pk).update(created_at=AT)
    assert "2026-07-01 12:00:00 UTC" in _job_page(client, job)  # the server default

    workspace_time_zone_set(workspace=workspace, time_zone="Europe/Berlin")
    assert "2026-07-01 14:00:00 CEST" in _job_page(client, job)

    response = client.post("/preferences/", {"time_zone": "America/New_York"})
    assert response.status_code == 302
    assert "2026-07-01 08:00:00 EDT" in _job_page(client, job)

    client.post("/preferences/", {"time_zone": ""})  # back to following the workspace
    assert "2026-07-01 14:00:00 CEST" in _job_page(client, job)


def test_the_api_answers_in_utc_whatever_the_readers_zone(client_for, workspace):
    client = client_for(Role.MARKETER)
    workspace_time_zone_set(workspace=workspace, time_zone="Asia/Tokyo")
    user_time_zone_set(user=client.user, time_zone="America/New_York")
    job = JobFactory(workspace=workspace)
    Job.objects.filter(pk=job.pk).update(created_at=AT)
    body = client.get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["created_at"] in ("2026-07-01T12:00:00Z", "2026-07-01T12:00:00+00:00")


def test_preferences_refuse_an_unknown_zone_and_keep_the_old_one(client_for):
    client = client_for(Role.VIEWER)  # any role has preferences
    assert client.post("/preferences/", {"time_zone": "Asia/Tokyo"}).status_code == 302
    response = client.post("/preferences/", {"time_zone": "Mars/Olympus"})
    assert response.status_code == 400
    assert "Mars/Olympus is not one of the available choices" in response.content.decode()
    assert client.user.preferences.time_zone == "Asia/Tokyo"
    assert client.get("/preferences/").status_code == 200


def test_only_admins_change_the_workspace_zone_and_it_is_audited(client_for, workspace):
    marketer = client_for(Role.MARKETER)
    assert marketer.post("/settings/", {"action": "time-zone", "time_zone": "Asia/Tokyo"}).status_code == 403
    admin = client_for(Role.ADMIN)
    assert admin.post("/settings/", {"action": "time-zone", "time_zone": "Nowhere/Land"}).status_code == 400
    assert admin.post("/settings/", {"action": "time-zone", "time_zone": "Asia/Tokyo"}).status_code == 302
    workspace.refresh_from_db()
    assert workspace.time_zone == "Asia/Tokyo"
    event = AuditEvent.objects.get(workspace=workspace, verb="workspace.time_zone_changed")
    assert event.changes == {"time_zone": ["UTC", "Asia/Tokyo"]}


def test_a_zone_change_touches_only_its_workspace(workspace, other_workspace):
    workspace_time_zone_set(workspace=workspace, time_zone="Asia/Tokyo")
    assert Workspace.objects.get(pk=other_workspace.pk).time_zone == "UTC"


def test_new_workspaces_start_in_the_server_zone(settings):
    settings.TIME_ZONE = "Europe/Lisbon"
    assert Workspace.objects.create(name="Lisbon", slug="lisbon").time_zone == "Europe/Lisbon"


def test_a_choice_made_elsewhere_applies_at_the_next_login(client, workspace, member_factory):
    user = member_factory(workspace, Role.MARKETER)
    user_time_zone_set(user=user, time_zone="Asia/Tokyo")  # e.g. on another device
    job = JobFactory(workspace=workspace)
    Job.objects.filter(pk=job.pk).update(created_at=AT)
    client.force_login(user)  # the login signal copies the choice into this session
    assert "2026-07-01 21:00:00 JST" in _job_page(client, job)


def test_the_settings_page_offers_the_zone_once_with_the_current_one_chosen(client_for, workspace):
    workspace_time_zone_set(workspace=workspace, time_zone="Europe/Berlin")
    page = client_for(Role.ADMIN).get("/settings/").content.decode()
    assert page.count('name="time_zone"') == 1
    assert '<option value="Europe/Berlin" selected>' in page
    assert "<title>Workspace settings" in page
