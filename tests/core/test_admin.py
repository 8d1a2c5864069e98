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
    audit_record(workspace=workspace, actor=None, verb="crm.tag.created")
    audit_record(workspace=other_workspace, actor=None, verb="crm.list.created")
    html = client.get("/admin/aicmo/auditevent/").content.decode()
    assert "crm.tag.created" in html and "crm.list.created" not in html


def test_viewer_cannot_change_in_admin(staff_for, workspace):
    client = staff_for(Role.VIEWER)
    MembershipFactory(workspace=workspace, role=Role.VIEWER)
    assert client.get("/admin/aicmo/membership/add/").status_code == 403


def test_admin_foreign_audit_and_key_objects_answer_404(staff_for, other_workspace):
    from aicmo.apikeys import api_key_create
    from aicmo.audit import audit_record

    client = staff_for(Role.ADMIN)
    owner = UserFactory()
    event = audit_record(workspace=other_workspace, actor=owner, verb="crm.list.created")
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


def test_workspace_admin_cannot_repoint_a_membership_at_another_user(staff_for, workspace, other_workspace):
    """The admin's change form once let a workspace admin swap a membership's user for any account."""
    from aicmo.models import Membership

    client = staff_for(Role.ADMIN)
    outsider = MembershipFactory(workspace=other_workspace, user=UserFactory(username="outsider")).user
    mine = MembershipFactory(workspace=workspace, user=UserFactory(username="mine"), role=Role.VIEWER)
    assert client.get("/admin/aicmo/membership/add/").status_code == 403
    resp = client.post(
        f"/admin/aicmo/membership/{mine.pk}/change/",
        {"user": outsider.pk, "workspace": workspace.pk, "role": "reviewer"},
    )
    assert resp.status_code == 302
    mine.refresh_from_db()
    assert mine.user.username == "mine" and mine.role == Role.REVIEWER
    assert not Membership.objects.filter(workspace=workspace, user=outsider).exists()


def test_superuser_adds_a_member_in_admin_audited(admin_client, workspace):
    from aicmo.models import AuditEvent, Membership

    user = UserFactory(username="direct")
    resp = admin_client.post(
        "/admin/aicmo/membership/add/", {"user": user.pk, "workspace": workspace.pk, "role": "viewer"}
    )
    assert resp.status_code == 302
    assert Membership.objects.get(workspace=workspace, user=user).role == Role.VIEWER
    assert AuditEvent.objects.get(verb="member.added").changes["via"] == "admin"


def test_invitations_in_admin_are_scoped_read_only_and_act_through_services(
    staff_for, workspace, other_workspace
):
    from aicmo.invitations import invitation_create
    from aicmo.models import AuditEvent, Invitation

    mine = invitation_create(workspace=workspace, email="mine@example.com", role=Role.VIEWER, by=None)
    theirs = invitation_create(
        workspace=other_workspace, email="theirs@example.com", role=Role.VIEWER, by=None
    )
    assert staff_for(Role.MARKETER).get("/admin/aicmo/invitation/").status_code == 403
    client = staff_for(Role.ADMIN)
    html = client.get("/admin/aicmo/invitation/").content.decode()
    assert "mine@example.com" in html and "theirs@example.com" not in html
    assert client.get(f"/admin/aicmo/invitation/{theirs.pk}/change/").status_code == 404
    assert client.get("/admin/aicmo/invitation/add/").status_code == 403
    page = client.get(f"/admin/aicmo/invitation/{mine.pk}/change/").content.decode()
    assert "mine@example.com" in page and mine.nonce not in page and mine.token_hash not in page
    client.post(
        "/admin/aicmo/invitation/",
        {"action": "revoke_invitations", "_selected_action": [mine.pk, theirs.pk]},
    )
    assert Invitation.objects.get(pk=mine.pk).revoked_at is not None
    assert Invitation.objects.get(pk=theirs.pk).revoked_at is None
    assert AuditEvent.objects.filter(verb="invitation.revoked").count() == 1


def test_admin_pages_run_no_inline_script(client, db):
    """The CSP allows our own script files only: the periodic-task form (django_celery_beat ships an inline
    script) loads its behaviour from a static file, and admin pages declare an icon (no /favicon.ico 404)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    task = PeriodicTask.objects.create(name="tick", task="aicmo.tasks.audit_export_task", interval=every)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(f"/admin/django_celery_beat/periodictask/{task.pk}/change/").content.decode()
    assert "aicmo/admin_periodictask.js" in page and 'id="readable-crontabs"' in page
    assert "<script>" not in page and 'id="periodic-task-overrides"' not in page
    assert '<link rel="icon" href="data:,">' in page
