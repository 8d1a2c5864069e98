"""Django admin is scoped to the staff user's workspaces; roles decide what they may change."""

import pytest

from aicmo.models import Role
from tests.factories import JobFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_admin_job_list_is_scoped(staff_for, workspace, other_workspace):
    client = staff_for(Role.MARKETER)
    mine = JobFactory(workspace=workspace, label="mine-job")
    theirs = JobFactory(workspace=other_workspace, label="their-job")
    html = client.get("/admin/aicmo/job/").content.decode()
    assert "mine-job" in html and "their-job" not in html
    assert client.get(f"/admin/aicmo/job/{theirs.pk}/change/").status_code == 404
    assert client.get(f"/admin/aicmo/job/{mine.pk}/change/").status_code == 200


def test_admin_audit_and_keys_are_for_workspace_admins_only(staff_for):
    client = staff_for(Role.MARKETER)
    assert client.get("/admin/aicmo/auditevent/").status_code == 403
    assert client.get("/admin/aicmo/apikey/").status_code == 403
    assert client.get("/admin/aicmo/membership/").status_code in (200, 403)


def test_admin_of_workspace_sees_own_audit_only(staff_for, other_workspace, workspace):
    from aicmo.audit import audit_record

    client = staff_for(Role.ADMIN)
    audit_record(workspace=workspace, actor=None, verb="mine.event")
    audit_record(workspace=other_workspace, actor=None, verb="their.event")
    html = client.get("/admin/aicmo/auditevent/").content.decode()
    assert "mine.event" in html and "their.event" not in html


def test_viewer_cannot_change_in_admin(staff_for, workspace):
    client = staff_for(Role.VIEWER)
    MembershipFactory(workspace=workspace, role=Role.VIEWER)
    assert client.get("/admin/aicmo/membership/add/").status_code == 403


def test_admin_foreign_audit_and_key_objects_answer_404(staff_for, other_workspace):
    from aicmo.apikeys import api_key_create
    from aicmo.audit import audit_record

    client = staff_for(Role.ADMIN)
    owner = UserFactory()
    event = audit_record(workspace=other_workspace, actor=owner, verb="their.event")
    key = api_key_create(workspace=other_workspace, name="theirs", by=owner).api_key
    assert client.get(f"/admin/aicmo/auditevent/{event.pk}/change/").status_code == 404
    assert client.get(f"/admin/aicmo/apikey/{key.pk}/change/").status_code == 404
    assert client.get("/admin/aicmo/job/not-a-number/change/").status_code == 404


def test_admin_api_key_created_once_and_shown_in_message(staff_for, workspace):
    from aicmo.models import ApiKey

    client = staff_for(Role.ADMIN)
    resp = client.post(
        "/admin/aicmo/apikey/add/",
        {"workspace": workspace.pk, "name": "zapier", "role": "viewer"},
        follow=True,
    )
    assert resp.status_code == 200
    key = ApiKey.objects.get(name="zapier")
    shown = [str(m) for m in resp.context["messages"]]
    assert any(key.prefix in m and "aicmo_" in m for m in shown)
    assert ApiKey.objects.filter(name="zapier").count() == 1


def test_admin_login_page_renders_for_anonymous_visitors(client):
    assert client.get("/admin/login/").status_code == 200
    assert client.get("/admin/").status_code == 302
