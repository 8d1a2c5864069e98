"""The invitation round trip in a real Chromium: an admin invites from the settings page and copies the
link; the invited person opens it logged out, logs in, comes back to the invitation and accepts."""

import pytest

from aicmo.models import AuditEvent, Membership, Role
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_invite_copy_link_log_in_and_accept(
    browser_page, chromium_browser, browser_login, live_server, member_factory, workspace
):
    admin = member_factory(workspace, Role.ADMIN, username="boss")
    page = browser_page
    browser_login(page, live_server, admin, workspace)
    page.goto(f"{live_server.url}/settings/")
    page.fill("#id_email", "mia@example.com")
    page.select_option("#id_role", "reviewer")
    page.click("button:has-text('Invite')")
    link = page.locator("input.invite-link").first.input_value()
    assert "/invitations/" in link

    invitee = UserFactory(username="mia", email="mia@example.com")
    invitee.set_password("a-long-pass-phrase-1")
    invitee.save()
    other = chromium_browser.new_context()
    try:
        visitor = other.new_page()
        path = link.split("/invitations/", 1)[1]
        visitor.goto(f"{live_server.url}/invitations/{path}")
        visitor.click("text=Log in to accept")
        visitor.fill("#id_username", "mia")
        visitor.fill("#id_password", "a-long-pass-phrase-1")
        visitor.click("button[type=submit]")
        visitor.click("#accept-invitation")
        visitor.wait_for_selector("text=you joined as reviewer")
    finally:
        other.close()
    assert Membership.objects.get(workspace=workspace, user=invitee).role == Role.REVIEWER
    assert AuditEvent.objects.filter(verb="invitation.accepted", actor=invitee).exists()
