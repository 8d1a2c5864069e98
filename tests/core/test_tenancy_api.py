"""Tenant isolation and role rules for the core API (jobs, audit events, API keys, members)."""

import re

import pytest

from aicmo.apikeys import api_key_create
from aicmo.audit import audit_record
from aicmo.models import ApiKey, JobStatus, Membership, Role
from tests.factories import JobFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def foreign_objects(other_workspace):
    owner = UserFactory()
    MembershipFactory(workspace=other_workspace, user=owner, role=Role.ADMIN)
    job = JobFactory(workspace=other_workspace)
    event = audit_record(workspace=other_workspace, actor=owner, verb="job.cancelled", target=job)
    key = api_key_create(workspace=other_workspace, name="theirs", role=Role.ADMIN, by=owner).api_key
    return {"job": job, "event": event, "key": key, "owner": owner}


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/jobs/{job}/",
        "/api/v1/audit-events/{event}/",
        "/api/v1/api-keys/{key}/",
        "/api/v1/jobs/{job}/errors/",
    ],
)
def test_foreign_objects_answer_404(api_client_for, foreign_objects, url):
    client = api_client_for(Role.ADMIN)
    ids = {k: v.pk for k, v in foreign_objects.items()}
    resp = client.get(url.format(**ids))
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"


def test_foreign_job_cannot_be_cancelled(api_client_for, foreign_objects):
    client = api_client_for(Role.ADMIN)
    resp = client.post(f"/api/v1/jobs/{foreign_objects['job'].pk}/cancel/")
    assert resp.status_code == 404
    foreign_objects["job"].refresh_from_db()
    assert foreign_objects["job"].status == JobStatus.QUEUED


def test_lists_show_only_own_workspace(api_client_for, foreign_objects, workspace):
    client = api_client_for(Role.ADMIN)
    mine = JobFactory(workspace=workspace)
    assert [j["id"] for j in client.get("/api/v1/jobs/").json()["results"]] == [mine.pk]
    assert client.get("/api/v1/api-keys/").json()["results"] == []
    verbs = [e["verb"] for e in client.get("/api/v1/audit-events/").json()["results"]]
    assert "job.cancelled" not in verbs


def test_header_for_foreign_workspace_is_refused(api_client_for, other_workspace):
    client = api_client_for(Role.ADMIN)
    client.credentials(HTTP_X_WORKSPACE=str(other_workspace.pk))
    resp = client.get("/api/v1/jobs/")
    assert resp.status_code == 404


def test_viewer_cannot_write(api_client_for, workspace):
    client = api_client_for(Role.VIEWER)
    job = JobFactory(workspace=workspace)
    resp = client.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "permission_denied"
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 200


def test_marketer_cannot_manage_members_keys_or_read_audit(api_client_for, member_factory, workspace):
    client = api_client_for(Role.MARKETER)
    other = member_factory(workspace, Role.VIEWER)
    membership = Membership.objects.get(user=other)
    assert client.patch(f"/api/v1/members/{membership.pk}/", {"role": "admin"}).status_code == 403
    assert client.post("/api/v1/api-keys/", {"name": "x", "role": "admin"}).status_code == 403
    assert client.get("/api/v1/audit-events/").status_code == 403
    assert client.get("/api/v1/members/").status_code == 200
    membership.refresh_from_db()
    assert membership.role == Role.VIEWER


def test_admin_changes_role_and_it_is_audited(api_client_for, member_factory, workspace):
    client = api_client_for(Role.ADMIN)
    other = member_factory(workspace, Role.VIEWER)
    membership = Membership.objects.get(user=other)
    resp = client.patch(f"/api/v1/members/{membership.pk}/", {"role": "reviewer"})
    assert resp.status_code == 200, resp.content
    assert resp.json()["role"] == "reviewer"
    events = client.get("/api/v1/audit-events/?verb=member.role_changed").json()["results"]
    assert events[0]["changes"] == {"user": other.username, "from": "viewer", "to": "reviewer"}


def test_last_admin_cannot_be_demoted(api_client_for):
    client = api_client_for(Role.ADMIN)
    me = Membership.objects.get(user=client.user)
    resp = client.patch(f"/api/v1/members/{me.pk}/", {"role": "viewer"})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "conflict"
    assert "admin" in resp.json()["error"]["fields"]["role"][0]


def test_invalid_role_gets_field_error(api_client_for):
    client = api_client_for(Role.ADMIN)
    resp = client.post("/api/v1/api-keys/", {"name": "", "role": "emperor"})
    assert resp.status_code == 400
    body = resp.json()["error"]
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {"name", "role"}


def test_unauthenticated_gets_401_with_error_body(client):
    from rest_framework.test import APIClient

    resp = APIClient().get("/api/v1/jobs/")
    assert resp.status_code in (401, 403)
    assert "error" in resp.json()


def test_job_list_query_count_is_flat(api_client_for, workspace, django_assert_max_num_queries):
    client = api_client_for(Role.VIEWER)
    JobFactory.create_batch(60, workspace=workspace)
    with django_assert_max_num_queries(8):
        resp = client.get("/api/v1/jobs/?page_size=60")
    assert len(resp.json()["results"]) == 60


def test_api_key_is_shown_once_and_authenticates(api_client_for, workspace):
    from rest_framework.test import APIClient

    admin = api_client_for(Role.ADMIN)
    resp = admin.post("/api/v1/api-keys/", {"name": "CI", "role": "viewer"})
    assert resp.status_code == 201
    secret = resp.json()["key"]
    key_id = resp.json()["id"]
    assert "key" not in admin.get(f"/api/v1/api-keys/{key_id}/").json()
    stored = ApiKey.objects.get(pk=key_id)
    assert secret not in (stored.hashed_key, stored.prefix) and len(stored.hashed_key) == 64

    job = JobFactory(workspace=workspace)
    bot = APIClient()
    bot.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert bot.get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    assert bot.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 403  # the key is a viewer
    stored.refresh_from_db()
    assert stored.last_used_at is not None

    assert admin.post(f"/api/v1/api-keys/{key_id}/revoke/").status_code == 200
    assert bot.get(f"/api/v1/jobs/{job.pk}/").status_code in (401, 403)


def test_api_key_cannot_reach_other_workspace(api_client_for, other_workspace, foreign_objects):
    from rest_framework.test import APIClient

    admin = api_client_for(Role.ADMIN)
    secret = admin.post("/api/v1/api-keys/", {"name": "CI", "role": "admin"}).json()["key"]
    bot = APIClient()
    bot.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_X_WORKSPACE=str(other_workspace.pk))
    assert bot.get(f"/api/v1/jobs/{foreign_objects['job'].pk}/").status_code == 404


def test_my_workspaces(api_client_for, member_factory, other_workspace):
    client = api_client_for(Role.MARKETER)
    MembershipFactory(workspace=other_workspace, user=client.user, role=Role.VIEWER)
    rows = client.get("/api/v1/workspaces/").json()["results"]
    assert {(r["slug"], r["role"]) for r in rows} == {("acme", "marketer"), ("globex", "viewer")}


def test_schema_and_docs_are_served(admin_client):
    assert admin_client.get("/api/schema/").status_code == 200
    docs = admin_client.get("/api/docs/")
    assert docs.status_code == 200
    # assets are served locally (the page also carries a random CSRF token, so no substring test on "cdn")
    assert b"swagger-ui" in docs.content and not re.search(rb'(?:src|href)="(?:https?:)?//', docs.content)
