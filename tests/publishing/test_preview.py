"""Preview as a chosen contact (sandboxed) and test sends through the real gateway chain."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from aicmo.models import AuditEvent, Role
from publishing.models import Delivery, EngagementEvent, TrackedLink
from publishing.services import preview
from tests.crm.factories import ContactFactory

from .conftest import make_content, smtp_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def content(workspace):
    return make_content(workspace)


def test_preview_as_contact_or_sample_and_never_another_workspaces(workspace, other_workspace, content):
    ada = ContactFactory(workspace=workspace, first_name="Ada")
    assert preview.content_preview(content=content, contact=ada).subject == "Hi Ada"
    assert preview.content_preview(content=content).subject == "Hi First"
    with pytest.raises(ValidationError, match="Unknown contact"):
        preview.content_preview(content=content, contact=ContactFactory(workspace=other_workspace))


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("", "at least one"),
        ("a@x.example, nope", "Not an email address: nope"),
        (",".join(f"p{i}@x.example" for i in range(11)), "At most 10"),
    ],
)
def test_test_addresses_are_checked(raw, error):
    with pytest.raises(ValidationError, match=error):
        preview.addresses_clean(raw)


def test_addresses_are_deduplicated_case_insensitively():
    assert preview.addresses_clean("A@x.example\na@X.example; b@x.example") == ["A@x.example", "b@x.example"]


def test_send_test_goes_through_the_chain_marked_as_a_test(workspace, content, smtp_sink, fast_gateway):
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    ada = ContactFactory(workspace=workspace, first_name="Ada")
    results = preview.content_send_test(content=content, addresses="me@x.example, you@x.example", contact=ada)
    assert results == {"me@x.example": "sent", "you@x.example": "sent"}
    messages = smtp_sink.wait_for(2)
    assert sorted(m.envelope_to[0] for m in messages) == ["me@x.example", "you@x.example"]
    for m in messages:
        assert m["Subject"] == "[TEST] Hi Ada" and m["X-AICMO-Test"] == "true"
        assert m["List-Unsubscribe"] is None and m["Feedback-ID"].startswith("test:")
        html = m.get_body(("html",)).get_content()
        assert 'href="https://acme.example/offer"' in html and "/publishing/t/" not in html
    assert not Delivery.objects.exists() and not EngagementEvent.objects.exists()
    assert not TrackedLink.objects.exists()
    audit = AuditEvent.objects.get(verb="publishing.content.test_sent")
    assert audit.changes["addresses"] == ["me@x.example", "you@x.example"]


def test_content_page_preview_frame_and_send_test(
    client_for, workspace, other_workspace, content, smtp_sink, fast_gateway
):
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    ContactFactory(workspace=workspace, first_name="Ada", email="ada@x.example")
    client = client_for(Role.MARKETER)
    page = client.get(f"/publishing/contents/{content.pk}/?contact=ADA@x.example").content.decode()
    assert 'sandbox=""' in page and "Previewing as ada@x.example" in page
    assert "<script>" not in page and "onclick" not in page
    frame = client.get(f"/publishing/contents/{content.pk}/preview/?contact=ada@x.example")
    assert frame.status_code == 200 and "Hello Ada" in frame.content.decode()
    assert frame["Content-Security-Policy"].startswith("sandbox")
    page = client.get(f"/publishing/contents/{content.pk}/?contact=ghost@x.example").content.decode()
    assert "data-unknown-contact" in page
    resp = client.post(
        f"/publishing/contents/{content.pk}/send-test/",
        {"addresses": "me@x.example", "contact": "ada@x.example"},
        follow=True,
    )
    assert "Test sent to me@x.example." in resp.content.decode()
    assert smtp_sink.wait_for(1)[0]["Subject"] == "[TEST] Hi Ada"
    resp = client.post(f"/publishing/contents/{content.pk}/send-test/", {"addresses": "bad"}, follow=True)
    assert "Not an email address: bad" in resp.content.decode()
    stranger = client_for(Role.ADMIN, other_workspace)
    for url in ("", "preview/"):
        assert stranger.get(f"/publishing/contents/{content.pk}/{url}").status_code == 404
    assert (
        stranger.post(
            f"/publishing/contents/{content.pk}/send-test/", {"addresses": "a@x.example"}
        ).status_code
        == 404
    )
    assert (
        client_for(Role.VIEWER)
        .post(f"/publishing/contents/{content.pk}/send-test/", {"addresses": "a@x.example"})
        .status_code
        == 403
    )
    assert len(smtp_sink.messages) == 1


@pytest.mark.parametrize("typed", ["\u00a0ADA@x.example\u200b", "ada@x.example\u00a0", "Ada@X.Example"])
def test_preview_finds_the_contact_by_any_spelling_the_normalizer_folds(
    client_for, workspace, content, typed
):
    """The page looks the contact up through crm's `contact_by_email` (one normalizer for every lookup)."""
    ContactFactory(workspace=workspace, first_name="Ada", email="ada@x.example")
    page = client_for(Role.MARKETER).get(f"/publishing/contents/{content.pk}/", {"contact": typed})
    assert "Previewing as ada@x.example" in page.content.decode()


@pytest.mark.parametrize("junk", ["\x00", "ada\x00@x.example", "x" * 5000, "not an address"])
def test_preview_with_a_junk_contact_is_sample_values_not_an_error(client_for, content, junk):
    client = client_for(Role.MARKETER)
    for url in ("", "preview/"):
        resp = client.get(f"/publishing/contents/{content.pk}/{url}", {"contact": junk})
        assert resp.status_code == 200
