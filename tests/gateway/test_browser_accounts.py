"""Acceptance in Chromium: an admin adds an SMTP provider account from the gateway page, presses Test
connection against a real SMTP server (aiosmtpd sink) and reads the outcome in words."""

from __future__ import annotations

import pytest

from aicmo.models import Role
from gateway.models import HealthCheck, ProviderAccount

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_adds_smtp_account_and_tests_the_connection(
    browser_page, browser_login, live_server, member_factory, workspace, redis_client, smtp_sink
):
    admin = member_factory(workspace, Role.ADMIN)
    page = browser_login(browser_page, live_server, admin, workspace)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live_server.url}/gateway/")
    page.click("text=Add provider account")
    page.locator("section", has=page.locator("h2", has_text="Send email")).locator(
        "a", has_text="SMTP"
    ).click()
    page.wait_for_selector("h1:has-text('Add SMTP account')")
    page.fill("#id_name", "Office SMTP")
    page.fill("#id_base_url", f"smtp+plain://{smtp_sink.host}:{smtp_sink.port}")
    page.fill("#id_cred_username", "mailer")
    page.fill("#id_cred_password", "s3cret-pw")
    page.fill("#id_opt_from_email", "team@acme.test")
    page.uncheck("#id_opt_verify_tls")
    page.click("button:has-text('Add account')")
    page.wait_for_selector("#connection-outcome:has-text('Not tested yet')")
    account = ProviderAccount.objects.get(workspace=workspace, name="Office SMTP")
    assert account.get_credentials() == {"username": "mailer", "password": "s3cret-pw"}
    assert "s3cret-pw" not in page.content()

    page.click("#test-connection")
    outcome = page.wait_for_selector("#connection-outcome[data-ok='true']")
    assert "Connected: SMTP answered in" in outcome.inner_text()
    assert "The account works." in outcome.inner_text()
    assert HealthCheck.objects.get(account=account).ok
    assert errors == []
