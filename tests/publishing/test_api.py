"""/api/v1/publishing/: the same services behind every call, 400s naming the problem, tenant isolation,
roles, Idempotency-Key on calls that start work."""

from __future__ import annotations

import re

import pytest

from aicmo.models import AuditEvent, Role
from publishing.models import Campaign, Delivery
from publishing.services.approval import publishing_settings_save
from tests.crm.factories import ContactListFactory

from .conftest import make_audience, make_content, make_sender

pytestmark = pytest.mark.django_db
API = "/api/v1/publishing"


@pytest.fixture
def marketer(api_client_for):
    return api_client_for(role="marketer")


@pytest.fixture
def campaign(marketer):
    ws = marketer.workspace
    contact_list, _ = make_audience(ws, 3)
    resp = marketer.post(
        f"{API}/campaigns/",
        {"name": "Launch", "content": make_content(ws).pk, "audience": {"lists": [contact_list.pk]}},
        format="json",
    )
    assert resp.status_code == 201, resp.json()
    return resp.json()


def test_sender_verification_is_for_admins(api_client_for):
    marketer, admin = api_client_for(role="marketer"), api_client_for(role="admin")
    resp = marketer.post(f"{API}/senders/", {"email": "News@Acme.example", "name": "News"}, format="json")
    assert resp.status_code == 201 and resp.json()["email"] == "news@acme.example"
    sender_id = resp.json()["id"]
    assert marketer.post(f"{API}/senders/{sender_id}/verify/").status_code == 403
    resp = admin.post(f"{API}/senders/{sender_id}/verify/")
    assert resp.status_code == 200 and resp.json()["is_verified"] is True
    again = marketer.post(f"{API}/senders/", {"email": "news@acme.example"}, format="json")
    assert again.status_code == 409 and "already exists" in again.json()["error"]["fields"]["email"][0]


def test_email_version_400_names_field_and_line(marketer):
    ws = marketer.workspace
    sender = make_sender(ws)
    content = marketer.post(f"{API}/contents/", {"name": "N"}, format="json").json()
    resp = marketer.put(
        f"{API}/contents/{content['id']}/email/",
        {
            "subject": "Hi {{ contact.first_name }}",
            "sender": sender.pk,
            "html": "<p>\n{{ contact.salary }}</p>",
        },
        format="json",
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["fields"] == {"html": ["line 2: unknown field contact.salary"]}
    resp = marketer.put(
        f"{API}/contents/{content['id']}/email/",
        {
            "subject": "Hi",
            "sender": sender.pk,
            "html": "<p>Hi {{ contact.first_name | default('there') }}</p>",
        },
        format="json",
    )
    assert resp.status_code == 200 and resp.json()["text_generated"] is True
    check = marketer.get(f"{API}/contents/{content['id']}/check/").json()
    assert check["ok"] is True and check["warnings"]


def test_campaign_lifecycle_and_invalid_transitions(marketer, campaign, django_capture_on_commit_callbacks):
    url = f"{API}/campaigns/{campaign['id']}"
    assert marketer.get(f"{url}/estimate/").json() == {"expected": 3, "targeted": 3, "left_out": {}}
    resp = marketer.post(f"{url}/pause/")
    assert resp.status_code == 409 and resp.json()["error"] == {
        "code": "conflict",
        "message": "Cannot pause a campaign that is draft.",
        "fields": {},
    }
    resp = marketer.post(f"{url}/schedule/", {"scheduled_at": "2000-01-01T09:00:00"}, format="json")
    assert resp.status_code == 400 and "future" in resp.json()["error"]["fields"]["scheduled_at"][0]
    resp = marketer.post(f"{url}/send/", HTTP_IDEMPOTENCY_KEY="k-1")
    assert resp.status_code == 202 and resp.json()["status"] == "sending"
    assert resp.json()["counts"]["queued"] == 3 and resp.json()["job"]["total"] == 3
    replay = marketer.post(f"{url}/send/", HTTP_IDEMPOTENCY_KEY="k-1")
    assert replay.status_code == 202 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == resp.json()
    assert Delivery.objects.filter(campaign_id=campaign["id"]).count() == 3  # started once
    resp = marketer.post(f"{url}/send/")
    assert resp.status_code == 409 and "sending" in resp.json()["error"]["message"]
    assert marketer.post(f"{url}/pause/").json()["status"] == "paused"
    assert marketer.post(f"{url}/resume/").json()["status"] == "sending"
    assert marketer.post(f"{url}/cancel/").json()["status"] == "cancelled"
    deliveries = marketer.get(f"{url}/deliveries/?status=skipped").json()
    assert deliveries["count"] == 3 and {d["skip_reason"] for d in deliveries["results"]} == {"cancelled"}
    assert marketer.get(f"{url}/deliveries/?status=nope").status_code == 400


def test_idempotency_key_reused_for_another_request_is_422(
    marketer, campaign, django_capture_on_commit_callbacks
):
    other = marketer.post(
        f"{API}/campaigns/",
        {"name": "Two", "content": campaign["content"], "audience": campaign["audience"]},
        format="json",
    ).json()
    assert (
        marketer.post(f"{API}/campaigns/{campaign['id']}/send/", HTTP_IDEMPOTENCY_KEY="same").status_code
        == 202
    )
    resp = marketer.post(f"{API}/campaigns/{other['id']}/send/", HTTP_IDEMPOTENCY_KEY="same")
    assert resp.status_code == 422
    assert Campaign.objects.get(pk=other["id"]).status == "draft"


def test_viewer_reads_but_cannot_act(api_client_for, campaign, marketer):
    viewer = api_client_for(role="viewer", workspace_=marketer.workspace)
    assert viewer.get(f"{API}/campaigns/{campaign['id']}/").status_code == 200
    assert viewer.get(f"{API}/campaigns/{campaign['id']}/estimate/").status_code == 200
    assert viewer.post(f"{API}/campaigns/{campaign['id']}/send/").status_code == 403


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", "/"),
        ("patch", "/"),
        ("get", "/estimate/"),
        ("get", "/check/"),
        ("get", "/deliveries/"),
        ("post", "/send/"),
        ("post", "/pause/"),
        ("post", "/cancel/"),
        ("post", "/resend-uncertain/"),
        ("post", "/approve/"),
    ],
)
def test_other_workspace_campaign_is_404(api_client_for, other_workspace, campaign, method, suffix):
    stranger = api_client_for(role="admin", workspace_=other_workspace)
    resp = getattr(stranger, method)(f"{API}/campaigns/{campaign['id']}{suffix}", {}, format="json")
    assert resp.status_code == 404
    assert Campaign.objects.get(pk=campaign["id"]).status == "draft"


def test_foreign_ids_in_bodies_are_refused(api_client_for, other_workspace, marketer):
    foreign_content = make_content(other_workspace)
    foreign_list = ContactListFactory(workspace=other_workspace)
    resp = marketer.post(
        f"{API}/campaigns/", {"name": "X", "content": foreign_content.pk, "audience": {}}, format="json"
    )
    assert resp.status_code == 404 and "content" in resp.json()["error"]["fields"]  # names no row here
    own = make_content(marketer.workspace)
    resp = marketer.post(
        f"{API}/campaigns/",
        {"name": "X", "content": own.pk, "audience": {"lists": [foreign_list.pk]}},
        format="json",
    )
    assert resp.status_code == 404 and "audience.lists" in resp.json()["error"]["fields"]
    stranger_sender = make_sender(other_workspace, "x@globex.example")
    resp = marketer.put(
        f"{API}/contents/{own.pk}/email/",
        {"subject": "s", "html": "<p>x</p>", "sender": stranger_sender.pk},
        format="json",
    )
    assert resp.status_code == 404 and "sender" in resp.json()["error"]["fields"]
    contents = marketer.get(f"{API}/contents/").json()["results"]
    senders = marketer.get(f"{API}/senders/").json()["results"]
    assert [c["id"] for c in contents] == [own.pk] and stranger_sender.pk not in [s["id"] for s in senders]
    assert marketer.get(f"{API}/contents/{foreign_content.pk}/").status_code == 404
    assert marketer.get(f"{API}/senders/{stranger_sender.pk}/").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        {"name": "X", "content": "abc"},
        {"name": "X", "content": 1, "audience": {"lists": "1"}},
        {"name": "X", "content": 1, "audience": {"lists": [0]}},
        {"name": "", "content": 1},
    ],
)
def test_bad_campaign_bodies_are_400(marketer, body):
    assert marketer.post(f"{API}/campaigns/", body, format="json").status_code == 400


def test_campaign_list_query_count_is_flat(marketer, campaign, django_assert_max_num_queries):
    for i in range(20):
        Campaign.objects.create(
            workspace=marketer.workspace, name=f"C{i}", content_id=campaign["content"], audience={}
        )
    with django_assert_max_num_queries(8):
        resp = marketer.get(f"{API}/campaigns/?page_size=50")
    assert resp.status_code == 200 and resp.json()["count"] == 21


def test_schema_documents_publishing(marketer):
    resp = marketer.get("/api/schema/?format=json")
    assert resp.status_code == 200
    paths = resp.json()["paths"]
    assert "/api/v1/publishing/campaigns/{id}/send/" in paths
    assert "/api/v1/publishing/contents/{id}/email/" in paths


def test_campaign_utm_and_speed_limits_through_the_api(marketer, campaign):
    url = f"{API}/campaigns/{campaign['id']}/"
    assert (campaign["utm"], campaign["max_per_second"], campaign["max_per_hour"]) == ({}, None, None)
    resp = marketer.patch(
        url,
        {"utm": {"utm_source": " news ", "utm_medium": "", "utm_term": None}, "max_per_second": 5},
        format="json",
    )
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert (body["utm"], body["max_per_second"], body["max_per_hour"]) == ({"utm_source": "news"}, 5, None)
    stored = Campaign.objects.get(pk=campaign["id"])
    assert (stored.utm, stored.max_per_second) == ({"utm_source": "news"}, 5)
    resp = marketer.patch(url, {"max_per_second": None, "max_per_hour": 1000}, format="json")
    assert (resp.json()["max_per_second"], resp.json()["max_per_hour"]) == (None, 1000)
    created = marketer.post(
        f"{API}/campaigns/",
        {
            "name": "Slow",
            "content": campaign["content"],
            "utm": {"utm_campaign": "spring"},
            "max_per_hour": 60,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert (created.json()["utm"], created.json()["max_per_hour"]) == ({"utm_campaign": "spring"}, 60)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"utm": {"utm_sorce": "x"}}, "utm"),
        ({"utm": {"utm_source": "x" * 201}}, "utm"),
        ({"utm": {"utm_source": 5}}, "utm"),
        ({"utm": "utm_source=x"}, "utm"),
        ({"utm": None}, "utm"),
        ({"max_per_second": 0}, "max_per_second"),
        ({"max_per_hour": -1}, "max_per_hour"),
        ({"max_per_hour": 2**31}, "max_per_hour"),
        ({"max_per_hour": "ten"}, "max_per_hour"),
    ],
)
def test_bad_utm_or_limits_are_400_naming_the_field(marketer, campaign, body, field):
    resp = marketer.patch(f"{API}/campaigns/{campaign['id']}/", body, format="json")
    assert resp.status_code == 400
    assert field in {re.split(r"[.\[]", name)[0] for name in resp.json()["error"]["fields"]}
    stored = Campaign.objects.get(pk=campaign["id"])
    assert (stored.utm, stored.max_per_second, stored.max_per_hour) == ({}, None, None)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.VIEWER, False), (Role.MARKETER, False), (Role.REVIEWER, True), (Role.ADMIN, True)],
)
def test_only_reviewers_and_admins_approve(api_client_for, marketer, campaign, role, allowed):
    publishing_settings_save(workspace=marketer.workspace, approval_required=True)
    url = f"{API}/campaigns/{campaign['id']}"
    assert marketer.get(f"{url}/").json()["needs_approval"] is True
    refused = marketer.post(f"{url}/send/")
    assert refused.status_code == 409 and "approval" in refused.json()["error"]["fields"]["campaign"][0]
    caller = api_client_for(role=role, workspace_=marketer.workspace)
    resp = caller.post(f"{url}/approve/")
    stored = Campaign.objects.get(pk=campaign["id"])
    if not allowed:
        assert resp.status_code == 403 and stored.approved_at is None
        assert not AuditEvent.objects.filter(verb="publishing.campaign.approved").exists()
        return
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert body["needs_approval"] is False and body["approved_by"] == caller.user.pk
    assert body["approved_at"] and stored.approved_by_id == caller.user.pk
    assert AuditEvent.objects.filter(verb="publishing.campaign.approved", actor=caller.user).count() == 1
    edited = marketer.patch(f"{url}/", {"utm": {"utm_source": "x"}}, format="json").json()
    assert (edited["needs_approval"], edited["approved_at"], edited["approved_by"]) == (True, None, None)


def test_approving_a_campaign_past_review_is_409(api_client_for, marketer, campaign):
    reviewer = api_client_for(role=Role.REVIEWER, workspace_=marketer.workspace)
    url = f"{API}/campaigns/{campaign['id']}"
    assert marketer.post(f"{url}/cancel/").status_code == 200
    resp = reviewer.post(f"{url}/approve/")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "conflict"
    assert "past review" in resp.json()["error"]["message"]
    assert Campaign.objects.get(pk=campaign["id"]).approved_at is None


def test_needs_approval_is_false_without_the_rule(marketer, campaign):
    assert campaign["needs_approval"] is False and campaign["approved_at"] is None
