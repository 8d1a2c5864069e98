"""Password reset by email: the same answer for known and unknown addresses, the mail leaves through the
workspace's send_email chain from a worker, and the link sets a new password once."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from aicmo.models import Role
from tests.fixtures.services import smtp_account_for_sink


def _ask(client: Client, email: str):
    return client.post("/password/reset/", {"email": email}, follow=True)


def _without_csrf(content: bytes) -> bytes:
    """The page minus its per-session CSRF token (which differs between any two clients)."""
    return re.sub(
        rb'"X-CSRFToken": "[^"]*"', b"", re.sub(rb'name="csrfmiddlewaretoken" value="[^"]*"', b"", content)
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "email",
    [
        "pat@example.com",
        "PAT@example.com",
        "nobody@example.com",
        "inactive@example.com",
        "nopass@example.com",
    ],
)
def test_the_answer_is_the_same_whether_or_not_an_account_exists(
    email, member_factory, workspace, django_capture_on_commit_callbacks
):
    member_factory(workspace, Role.VIEWER, username="pat", email="pat@example.com")
    member_factory(workspace, Role.VIEWER, username="gone", email="inactive@example.com", is_active=False)
    nopass = member_factory(workspace, Role.VIEWER, username="sso", email="nopass@example.com")
    nopass.set_unusable_password()
    nopass.save()

    reference = _ask(Client(), "someone-else@example.com")
    with django_capture_on_commit_callbacks() as queued:
        resp = _ask(Client(), email)
    assert resp.status_code == reference.status_code == 200
    assert resp.redirect_chain == reference.redirect_chain == [("/password/reset/sent/", 302)]
    assert _without_csrf(resp.content) == _without_csrf(reference.content)
    assert len(queued) == (1 if email.lower() == "pat@example.com" else 0)


def test_the_link_arrives_through_the_chain_and_works_once(
    live_celery_worker, redis_client, smtp_sink, workspace, member_factory, settings
):
    settings.PUBLIC_BASE_URL = "http://testserver"
    user = member_factory(workspace, Role.MARKETER, username="pat", email="pat@example.com")
    user.set_password("old-pass-Xy12!")
    user.save()
    smtp_account_for_sink(workspace, smtp_sink)
    other_session = Client()
    assert other_session.login(username="pat", password="old-pass-Xy12!")

    _ask(Client(), "pat@example.com")
    message = smtp_sink.wait_for(1)[0]
    assert message.envelope_to == ["pat@example.com"]
    link = re.search(r"http://testserver(/password/reset/\S+/)", message.get_content()).group(1)

    browser = Client()
    form_page = browser.get(link, follow=True)  # Django swaps the token for a session marker
    assert form_page.context["validlink"] is True
    done = browser.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "new-pass-Qz98!", "new_password2": "new-pass-Qz98!"},
    )
    assert done.status_code == 302 and done["Location"] == "/password/reset/done/"
    assert Client().login(username="pat", password="new-pass-Qz98!")
    assert other_session.get("/jobs/").status_code == 302  # the old session ended
    assert Client().get(link, follow=True).context["validlink"] is False  # used once
