"""Dashboard shell: login, navigation, workspace switcher, job pages and the progress partial."""

import pytest

from aicmo.models import Role
from tests.factories import JobFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_login(client):
    resp = client.get("/")
    assert resp.status_code == 302 and resp.url.startswith("/login/")
    assert client.get("/login/").status_code == 200


def test_home_shows_workspace_and_jobs(client_for, workspace):
    client = client_for(Role.VIEWER)
    JobFactory(workspace=workspace, label="Spring import")
    resp = client.get("/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "Acme" in html and "Spring import" in html
    assert "htmx.min.js" in html and "cdn" not in html.lower()


def test_job_pages_are_scoped(client_for, other_workspace):
    client = client_for(Role.ADMIN)
    foreign = JobFactory(workspace=other_workspace)
    for url in (f"/jobs/{foreign.pk}/", f"/jobs/{foreign.pk}/progress/"):
        assert client.get(url).status_code == 404
    assert client.post(f"/jobs/{foreign.pk}/cancel/").status_code == 404


def test_progress_partial_polls_until_finished(client_for, workspace):
    client = client_for(Role.VIEWER)
    job = JobFactory(workspace=workspace, total=4, done=1)
    html = client.get(f"/jobs/{job.pk}/progress/").content.decode()
    assert 'hx-trigger="every 1s"' in html and "1 of 4" in html and 'aria-valuenow="25"' in html
    job.status = "succeeded"
    job.save()
    html = client.get(f"/jobs/{job.pk}/progress/").content.decode()
    assert "hx-trigger" not in html


def test_viewer_cannot_cancel_from_dashboard(client_for, workspace):
    client = client_for(Role.VIEWER)
    job = JobFactory(workspace=workspace)
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 403
    job.refresh_from_db()
    assert job.status == "queued"


def test_workspace_switcher_only_switches_to_own_workspaces(client_for, other_workspace, workspace):
    client = client_for(Role.VIEWER)
    assert client.post("/workspace/switch/", {"workspace": other_workspace.pk}).status_code == 404
    MembershipFactory(workspace=other_workspace, user=client.user, role=Role.MARKETER)
    resp = client.post(
        "/workspace/switch/", {"workspace": other_workspace.pk, "next": "https://evil.example/"}
    )
    assert resp.status_code == 302 and resp.url == "/"
    html = client.get("/").content.decode()
    assert "<h1>Globex</h1>" in html


def test_user_without_workspace_sees_explanation(client, django_user_model):
    user = django_user_model.objects.create_user("lonely", password="x-long-pass-1")
    client.force_login(user)
    resp = client.get("/")
    assert resp.status_code == 403 and b"not a member" in resp.content


def test_home_query_count(client_for, workspace, django_assert_max_num_queries):
    client = client_for(Role.ADMIN)
    JobFactory.create_batch(20, workspace=workspace)
    # The overview adds one aggregate per figure and one query per getting-started step, and analytics'
    # KPI panel its four rollup queries: fixed, not per row.
    with django_assert_max_num_queries(22):
        assert client.get("/").status_code == 200
