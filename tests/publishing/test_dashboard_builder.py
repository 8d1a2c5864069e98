"""The content editor and campaign builder pages: happy paths, the services' errors on the fields, roles
(viewers see, cannot write) and tenant isolation (another workspace's ids are 404 or a form error)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from aicmo.models import Role
from crm.models import Suppression
from media.models import AssetKind, AssetStatus
from publishing.models import ABTest, Campaign, Content, ContentVersion
from tests.crm.factories import ContactFactory, ContactListFactory, SegmentFactory
from tests.media.factories import MediaAssetFactory

from .conftest import HTML, make_audience, make_campaign, make_content, make_sender

pytestmark = pytest.mark.django_db


def _version(content) -> ContentVersion | None:
    return ContentVersion.objects.filter(content=content, channel="email").first()


# ------------------------------------------------------------------------------------------ content


def test_new_content_then_its_editor(client_for, workspace):
    client = client_for(Role.MARKETER)
    assert b'name="name"' in client.get("/publishing/contents/new/").content
    response = client.post("/publishing/contents/new/", {"name": "  Spring  "})
    content = Content.objects.get(workspace=workspace)
    assert content.name == "Spring"
    assert response.status_code == 302 and response["Location"] == f"/publishing/contents/{content.pk}/edit/"


def test_new_content_needs_a_name(client_for, workspace):
    response = client_for(Role.MARKETER).post("/publishing/contents/new/", {"name": "   "})
    assert response.status_code == 400 and b"errorlist" in response.content
    assert not Content.objects.exists()


def test_editor_saves_the_email_and_generates_the_text(client_for, workspace):
    client = client_for(Role.MARKETER)
    sender = make_sender(workspace)
    content = Content.objects.create(workspace=workspace, name="N")
    response = client.post(
        f"/publishing/contents/{content.pk}/edit/",
        {
            "sender": sender.pk,
            "subject": "Hi {{ contact.first_name }}",
            "html": HTML,
            "reply_to": "R@X.example",
        },
    )
    assert response.status_code == 302
    version = _version(content)
    assert version.sender == sender and version.subject == "Hi {{ contact.first_name }}"
    assert (
        version.text_generated
        and "[Offer](https://acme.example/offer)" in version.text
        and version.reply_to == "r@x.example"
    )
    page = client.get(f"/publishing/contents/{content.pk}/edit/").content.decode()
    assert "The text part is generated from the HTML." in page
    assert f"/publishing/contents/{content.pk}/preview/" in page  # the frame shows what was saved
    assert "All checks pass." in page


def test_unknown_field_in_the_template_is_refused_naming_the_line(client_for, workspace):
    client = client_for(Role.MARKETER)
    content = make_content(workspace)
    before = _version(content).html
    response = client.post(
        f"/publishing/contents/{content.pk}/edit/",
        {
            "sender": _version(content).sender_id,
            "subject": "Hi",
            "html": "<p>Hello</p>\n<p>{{ contact.shoe_size }}</p>",
        },
    )
    assert response.status_code == 400
    html_errors = response.context["form"].errors["html"]
    assert any(e.startswith("line 2:") and "shoe_size" in e for e in html_errors), html_errors
    assert _version(content).html == before  # nothing written


def test_broken_template_syntax_is_refused_naming_the_line(client_for, workspace):
    content = make_content(workspace)
    response = client_for(Role.MARKETER).post(
        f"/publishing/contents/{content.pk}/edit/",
        {"subject": "Hi {{ contact.first_name", "html": "<p>ok</p>"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["subject"][0].startswith("line 1:")


def test_editor_offers_only_this_workspaces_verified_senders(client_for, workspace, other_workspace):
    client = client_for(Role.MARKETER)
    content = make_content(workspace)
    unverified = make_sender(workspace, email="new@acme.example", verified=False)
    foreign = make_sender(other_workspace, email="news@globex.example")
    page = client.get(f"/publishing/contents/{content.pk}/edit/").content.decode()
    assert "news@acme.example" in page and "new@acme.example" not in page and "globex" not in page
    for pk in (unverified.pk, foreign.pk):
        response = client.post(f"/publishing/contents/{content.pk}/edit/", {"sender": pk, "html": "<p>x</p>"})
        assert response.status_code == 400 and "sender" in response.context["form"].errors
    assert _version(content).sender.email == "news@acme.example"


def test_image_picker_lists_approved_images_of_the_workspace_only(client_for, workspace, other_workspace):
    client = client_for(Role.MARKETER)
    content = make_content(workspace)
    ok = MediaAssetFactory(
        workspace=workspace, kind=AssetKind.IMAGE, status=AssetStatus.APPROVED, alt_text="A <b>"
    )
    draft = MediaAssetFactory(workspace=workspace, kind=AssetKind.IMAGE, status=AssetStatus.DRAFT)
    doc = MediaAssetFactory(workspace=workspace, kind=AssetKind.DOCUMENT, status=AssetStatus.APPROVED)
    foreign = MediaAssetFactory(workspace=other_workspace, kind=AssetKind.IMAGE, status=AssetStatus.APPROVED)
    response = client.get(f"/publishing/contents/{content.pk}/edit/")
    assert [asset.pk for asset, _markup in response.context["images"]] == [ok.pk]
    assert response.context["images"][0][1] == f'<img src="asset:{ok.pk}" alt="A &lt;b&gt;">'
    for other in (draft, doc, foreign):
        assert f"#{other.pk} " not in response.content.decode()


def test_another_workspaces_content_is_404(client_for, other_workspace):
    client = client_for(Role.MARKETER)
    foreign = make_content(other_workspace)
    assert client.get(f"/publishing/contents/{foreign.pk}/edit/").status_code == 404
    assert client.post(f"/publishing/contents/{foreign.pk}/edit/", {"subject": "x"}).status_code == 404
    assert _version(foreign).subject == "Hi {{ contact.first_name }}"


def test_viewer_sees_the_editor_read_only_and_cannot_post(client_for, workspace):
    client = client_for(Role.VIEWER)
    content = make_content(workspace)
    page = client.get(f"/publishing/contents/{content.pk}/edit/")
    assert page.status_code == 200 and page.context["form"] is None and b'name="subject"' not in page.content
    assert b"Hello" in page.content  # the saved HTML, shown as text
    new = client.get("/publishing/contents/new/")
    assert new.status_code == 200 and b"data-read-only" in new.content and b'name="name"' not in new.content
    assert client.post(f"/publishing/contents/{content.pk}/edit/", {"subject": "x"}).status_code == 403
    assert client.post("/publishing/contents/new/", {"name": "x"}).status_code == 403
    assert Content.objects.count() == 1


# ------------------------------------------------------------------------------------------ campaigns


def _builder_data(content, **extra) -> dict:
    return {"name": "Spring", "content": content.pk, "time_zone": "Europe/Paris", **extra}


def test_new_campaign_from_a_segment_with_exclusions_limits_and_utm(client_for, workspace):
    client = client_for(Role.MARKETER)
    content = make_content(workspace)
    segment = SegmentFactory(workspace=workspace)
    ContactFactory.create_batch(3, workspace=workspace, lifecycle="new")
    excluded, _ = make_audience(workspace, 1, lifecycle="new")
    response = client.post(
        "/publishing/campaigns/new/",
        _builder_data(
            content,
            segments=[segment.pk],
            exclude_lists=[excluded.pk],
            max_per_second="5",
            max_per_hour="",
            utm_source="news",
            utm_campaign="spring",
        ),
    )
    campaign = Campaign.objects.get(workspace=workspace)
    assert response.status_code == 302 and response["Location"] == f"/publishing/campaigns/{campaign.pk}/"
    assert campaign.audience == {
        "segments": [segment.pk],
        "lists": [],
        "exclude_segments": [],
        "exclude_lists": [excluded.pk],
    }
    assert (campaign.time_zone, campaign.max_per_second, campaign.max_per_hour) == ("Europe/Paris", 5, None)
    assert campaign.utm == {"utm_source": "news", "utm_campaign": "spring"}
    assert campaign.status == "draft" and campaign.created_by == client.user
    assert not ABTest.objects.exists()


def test_edit_a_draft_campaign(client_for, workspace):
    client = client_for(Role.MARKETER)
    campaign = make_campaign(workspace, 1)
    page = client.get(f"/publishing/campaigns/{campaign.pk}/edit/")
    assert page.status_code == 200 and page.context["form"].initial["lists"] == campaign.audience["lists"]
    response = client.post(
        f"/publishing/campaigns/{campaign.pk}/edit/",
        _builder_data(campaign.content, name="Renamed", lists=campaign.audience["lists"], max_per_hour="100"),
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.name, campaign.max_per_hour, campaign.time_zone) == ("Renamed", 100, "Europe/Paris")


def test_foreign_segment_or_content_is_a_form_error_and_nothing_is_written(
    client_for, workspace, other_workspace
):
    client = client_for(Role.MARKETER)
    content = make_content(workspace)
    foreign_segment = SegmentFactory(workspace=other_workspace)
    foreign_content = make_content(other_workspace)
    response = client.post(
        "/publishing/campaigns/new/", _builder_data(content, segments=[foreign_segment.pk])
    )
    assert response.status_code == 400 and "segments" in response.context["form"].errors
    response = client.post("/publishing/campaigns/new/", _builder_data(foreign_content))
    assert response.status_code == 400 and "content" in response.context["form"].errors
    response = client.post(
        "/publishing/campaigns/new/",
        _builder_data(content, ab_enabled="on", variant_A_subject="Hi", variant_B_content=foreign_content.pk),
    )
    assert response.status_code == 400 and "variant_B_content" in response.context["form"].errors
    assert not Campaign.objects.exists()


def test_a_form_sent_back_keeps_the_estimate_of_its_audience(client_for, workspace):
    content = make_content(workspace)
    contact_list, _ = make_audience(workspace, 2)
    response = client_for(Role.MARKETER).post(
        "/publishing/campaigns/new/", _builder_data(content, name="", lists=[contact_list.pk])
    )
    assert response.status_code == 400
    assert response.context["estimate"] == {"expected": 2, "targeted": 2, "left_out": {}}


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"max_per_second": "0"}, "max_per_second"),
        ({"max_per_hour": "1.5"}, "max_per_hour"),
        ({"name": "  "}, "name"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"content": ""}, "content"),
    ],
)
def test_builder_errors_land_on_their_fields(client_for, workspace, extra, field):
    content = make_content(workspace)
    response = client_for(Role.MARKETER).post(
        "/publishing/campaigns/new/", {**_builder_data(content), **extra}
    )
    assert response.status_code == 400 and field in response.context["form"].errors
    assert not Campaign.objects.exists()


def test_ab_test_with_subject_and_content_variants(client_for, workspace):
    client = client_for(Role.MARKETER)
    content = make_content(workspace)
    other = make_content(workspace, sender=_version(content).sender)
    contact_list, _ = make_audience(workspace, 2)
    response = client.post(
        "/publishing/campaigns/new/",
        _builder_data(
            content,
            lists=[contact_list.pk],
            ab_enabled="on",
            variant_A_subject="Hello {{ contact.first_name }}",
            variant_B_content=other.pk,
            test_share="30",
            metric="clicks",
            wait_minutes="60",
        ),
    )
    assert response.status_code == 302
    abtest = ABTest.objects.get(campaign__workspace=workspace)
    assert (abtest.test_share, abtest.metric, abtest.wait_minutes, abtest.auto_winner) == (
        30,
        "clicks",
        60,
        False,
    )
    assert [(v.label, v.subject, v.content_id) for v in abtest.variants.all()] == [
        ("A", "Hello {{ contact.first_name }}", None),
        ("B", "", other.pk),
    ]
    page = client.get(f"/publishing/campaigns/{abtest.campaign_id}/edit/")
    assert b"variant_A_subject" not in page.content and b"A/B test: 2 variants" in page.content


def test_a_refused_ab_test_leaves_no_campaign(client_for, workspace):
    content = make_content(workspace)
    response = client_for(Role.MARKETER).post(
        "/publishing/campaigns/new/",
        _builder_data(
            content, ab_enabled="on", variant_A_subject="Hi {{ contact.nope }}", variant_B_subject="Yo"
        ),
    )
    assert response.status_code == 400
    errors = response.context["form"].errors["variant_A_subject"]
    assert errors[0].startswith("line 1:") and "nope" in errors[0]
    assert not Campaign.objects.exists() and not ABTest.objects.exists()
    response = client_for(Role.MARKETER).post(
        "/publishing/campaigns/new/", _builder_data(content, ab_enabled="on", variant_A_subject="Only one")
    )
    assert response.status_code == 400 and "Two to five variants." in response.content.decode()
    assert not Campaign.objects.exists()


def test_campaign_past_draft_is_shown_read_only(client_for, workspace):
    client = client_for(Role.MARKETER)
    campaign = make_campaign(workspace, 1)
    Campaign.objects.filter(pk=campaign.pk).update(status="sent")
    page = client.get(f"/publishing/campaigns/{campaign.pk}/edit/")
    assert page.status_code == 200 and page.context["form"] is None
    assert b"only a draft can be edited" in page.content
    response = client.post(f"/publishing/campaigns/{campaign.pk}/edit/", _builder_data(campaign.content))
    assert response.status_code == 400
    assert Campaign.objects.get(pk=campaign.pk).name == "C"


def test_another_workspaces_campaign_is_404(client_for, other_workspace):
    client = client_for(Role.MARKETER)
    foreign = make_campaign(other_workspace, 1)
    assert client.get(f"/publishing/campaigns/{foreign.pk}/edit/").status_code == 404
    assert client.post(f"/publishing/campaigns/{foreign.pk}/edit/", {"name": "x"}).status_code == 404
    assert (
        client.post(f"/publishing/campaigns/{foreign.pk}/schedule/", {"when": "2099-01-01T09:00"}).status_code
        == 404
    )
    assert Campaign.objects.get(pk=foreign.pk).status == "draft"


def test_viewer_cannot_build_or_schedule(client_for, workspace):
    client = client_for(Role.VIEWER)
    campaign = make_campaign(workspace, 1)
    for url in ("/publishing/campaigns/new/", f"/publishing/campaigns/{campaign.pk}/edit/"):
        page = client.get(url)
        assert page.status_code == 200 and page.context["form"] is None and b"data-read-only" in page.content
        assert client.post(url, _builder_data(campaign.content)).status_code == 403
    detail = client.get(f"/publishing/campaigns/{campaign.pk}/")
    assert b"campaign-schedule" not in detail.content and b'name="when"' not in detail.content
    schedule = client.post(f"/publishing/campaigns/{campaign.pk}/schedule/", {"when": "2099-01-01T09:00"})
    assert schedule.status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == "draft" and Campaign.objects.count() == 1


# ------------------------------------------------------------------------------------------ estimate


def test_estimate_counts_and_reasons_as_the_audience_changes(client_for, workspace):
    client = client_for(Role.VIEWER)  # reading only
    contact_list, contacts = make_audience(workspace, 3)
    Suppression.objects.create(
        workspace=workspace, contact=contacts[0], channel="email", reason="unsubscribed"
    )
    response = client.get("/publishing/campaigns/estimate/", {"lists": [contact_list.pk]})
    assert response.status_code == 200
    assert response.context["estimate"] == {
        "expected": 2,
        "targeted": 3,
        "left_out": {"suppressed_unsubscribed": 1},
    }
    assert b'data-left-out="suppressed_unsubscribed"' in response.content
    assert "left out, unsubscribed: 1" in response.content.decode()  # the reason in words, the key kept
    empty = client.get("/publishing/campaigns/estimate/")
    assert empty.context["estimate"] == {"expected": 0, "targeted": 0, "left_out": {}}


def test_estimate_refuses_another_workspaces_ids(client_for, other_workspace):
    foreign = ContactListFactory(workspace=other_workspace)
    response = client_for(Role.MARKETER).get("/publishing/campaigns/estimate/", {"lists": [foreign.pk]})
    assert response.status_code == 200 and response.context["estimate"] is None
    assert b"data-estimate-errors" in response.content
    bad = client_for(Role.MARKETER).get("/publishing/campaigns/estimate/", {"segments": ["x"]})
    assert bad.context["estimate"] is None and bad.context["errors"]


# ------------------------------------------------------------------------------------------ schedule


def test_schedule_in_the_campaigns_zone_shown_back_in_that_zone_and_utc(client_for, workspace):
    client = client_for(Role.MARKETER)
    campaign = make_campaign(workspace, 1, time_zone="Europe/Paris")
    year = timezone.now().year + 1
    response = client.post(f"/publishing/campaigns/{campaign.pk}/schedule/", {"when": f"{year}-07-01T09:30"})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"
    assert campaign.scheduled_at == datetime(year, 7, 1, 7, 30, tzinfo=UTC)  # CEST is UTC+2
    page = client.get(f"/publishing/campaigns/{campaign.pk}/").content.decode()
    assert f"Scheduled for {year}-07-01 09:30 Europe/Paris ({year}-07-01 07:30 UTC)." in page
    assert ">Unschedule</button>" in page and ">unschedule</button>" not in page  # actions read as words
    assert client.post(f"/publishing/campaigns/{campaign.pk}/unschedule/").status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def _paris_spring_forward() -> str:
    """Next year's last Sunday of March: 02:00–03:00 does not exist in Europe/Paris."""
    day = datetime(timezone.now().year + 1, 3, 31)
    while day.weekday() != 6:
        day -= timedelta(days=1)
    return f"{day:%Y-%m-%d}"


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ((timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"), "The time must be in the future."),
        (f"{_paris_spring_forward()}T02:30", "does not exist in Europe/Paris (DST)"),
        ("tomorrow", "Enter a date and time"),
        ("2099-01-01T09:00+02:00", "without a zone"),
    ],
)
def test_schedule_errors_are_shown_and_nothing_changes(client_for, workspace, when, message):
    client = client_for(Role.MARKETER)
    campaign = make_campaign(workspace, 1, time_zone="Europe/Paris")
    response = client.post(f"/publishing/campaigns/{campaign.pk}/schedule/", {"when": when}, follow=True)
    assert message in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


# ------------------------------------------------------------------------------------------ query counts


def _queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_builder_and_editor_pages_cost_the_same_with_more_choices(client_for, workspace):
    client = client_for(Role.MARKETER)
    campaign = make_campaign(workspace, 1)
    content = campaign.content

    def add(n):
        for _ in range(n):
            SegmentFactory(workspace=workspace)
            ContactListFactory(workspace=workspace)
            Content.objects.create(workspace=workspace, name="More")
            MediaAssetFactory(workspace=workspace, kind=AssetKind.IMAGE, status=AssetStatus.APPROVED)

    urls = [
        "/publishing/campaigns/new/",
        f"/publishing/campaigns/{campaign.pk}/edit/",
        f"/publishing/contents/{content.pk}/edit/",
    ]
    add(1)
    few = [_queries(client, url) for url in urls]
    add(15)
    assert [_queries(client, url) for url in urls] == few


def test_every_left_out_reason_the_audience_writes_has_words():
    """The reasons are built in publishing/services/audience.py; each one the code can write has words."""
    import re
    from pathlib import Path

    from crm.models import SuppressionReason
    from publishing.services.audience import LEFT_OUT_WORDS, left_out_words

    source = Path("publishing/services/audience.py").read_text()
    literals = set(re.findall(r'(?:left\[|reason = )"([a-z_]+)"', source))
    reasons = literals | {f"suppressed_{r}" for r in SuppressionReason.values}
    assert literals and reasons <= set(LEFT_OUT_WORDS), reasons - set(LEFT_OUT_WORDS)
    assert left_out_words("suppressed_bounced") == "bounced before"
    assert left_out_words("some_new_reason") == "some new reason"


def test_every_campaign_action_button_has_words():
    from publishing.views import ACTION_LABELS, ACTIONS

    assert set(ACTION_LABELS) == set(ACTIONS)
