"""Django admin is scoped to the staff user's workspaces; roles decide what they may change."""

import pytest

from aicmo.models import Role
from tests.factories import JobFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_for(client, workspace):
    def make(role, ws=None):
        user = UserFactory(is_staff=True)
        MembershipFactory(workspace=ws or workspace, user=user, role=role)
        client.force_login(user)
        return client

    return make


def test_admin_job_list_is_scoped(staff_for, workspace, other_workspace):
    client = staff_for(Role.MARKETER)
    mine = JobFactory(workspace=workspace, label="mine-job")
    theirs = JobFactory(workspace=other_workspace, label="their-job")
    html = client.get("/admin/aicmo/job/").content.decode()
    assert "mine-job" in html and "their-job" not in html
    assert client.get(f"/admin/aicmo/job/{theirs.pk}/change/").status_code in (302, 404)
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
