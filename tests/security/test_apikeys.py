"""API keys: scoped by the key's role, revocable with immediate effect, optional expiry, never logged.
Sessions: changing the password ends the user's other sessions."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.test import Client, RequestFactory
from django.utils import timezone
from django.views.debug import ExceptionReporter
from rest_framework.test import APIClient

from aicmo.apikeys import api_key_create, api_key_revoke
from aicmo.models import ApiKey, Role
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def _bot(secret: str, workspace, header: str = "bearer") -> APIClient:
    client = APIClient()
    if header == "bearer":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_X_WORKSPACE=str(workspace.pk))
    else:
        client.credentials(HTTP_X_API_KEY=secret, HTTP_X_WORKSPACE=str(workspace.pk))
    return client


@pytest.fixture
def owner(member_factory, workspace):
    return member_factory(workspace, Role.ADMIN)


def test_revocation_takes_effect_on_the_next_request(owner, workspace):
    created = api_key_create(workspace=workspace, name="CI", role=Role.VIEWER, by=owner)
    bot = _bot(created.secret, workspace)
    assert bot.get("/api/v1/jobs/").status_code == 200
    api_key_revoke(api_key=created.api_key, by=owner)
    resp = bot.get("/api/v1/jobs/")
    assert resp.status_code == 401
    assert resp.json()["error"]["message"] == "Invalid, revoked or expired API key."


@pytest.mark.parametrize("revoked", [False, True])
@pytest.mark.parametrize("expires_in", [None, timedelta(hours=1), timedelta(seconds=-1), timedelta(days=-30)])
@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_a_key_authenticates_iff_not_revoked_and_not_expired(owner, workspace, revoked, expires_in, header):
    created = api_key_create(workspace=workspace, name="CI", role=Role.VIEWER, by=owner)
    # Time passes: the expiry is moved relative to now (creation itself refuses a past expiry).
    expires_at = None if expires_in is None else timezone.now() + expires_in
    ApiKey.objects.filter(pk=created.api_key.pk).update(
        expires_at=expires_at, revoked_at=timezone.now() if revoked else None
    )
    usable = not revoked and (expires_in is None or expires_in > timedelta(0))
    assert _bot(created.secret, workspace, header).get("/api/v1/jobs/").status_code == (
        200 if usable else 401
    )
    created.api_key.refresh_from_db()
    assert created.api_key.is_active is usable


def test_expiry_is_set_at_creation_and_must_lie_in_the_future(api_client_for):
    admin = api_client_for(Role.ADMIN)
    future = (timezone.now() + timedelta(days=7)).replace(microsecond=0)
    resp = admin.post("/api/v1/api-keys/", {"name": "CI", "role": "viewer", "expires_at": future.isoformat()})
    assert resp.status_code == 201
    assert ApiKey.objects.get(pk=resp.json()["id"]).expires_at == future

    past = timezone.now() - timedelta(minutes=1)
    resp = admin.post("/api/v1/api-keys/", {"name": "old", "role": "viewer", "expires_at": past.isoformat()})
    assert resp.status_code == 400
    assert "expires_at" in resp.json()["error"]["fields"]
    assert not ApiKey.objects.filter(name="old").exists()


def test_dashboard_refuses_a_past_expiry_with_a_form_error(client, owner):
    client.force_login(owner)
    resp = client.post(
        "/settings/",
        {"action": "create-key", "name": "old", "role": "viewer", "expires_at": "2001-01-01 10:00"},
    )
    assert resp.status_code == 400
    assert "The expiry must be in the future." in resp.content.decode()
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    ("role", "can_manage_keys"),
    [(Role.VIEWER, False), (Role.MARKETER, False), (Role.ADMIN, True)],
)
def test_a_key_acts_with_its_own_role_not_its_owners(owner, workspace, role, can_manage_keys):
    secret = api_key_create(workspace=workspace, name="CI", role=role, by=owner).secret
    resp = _bot(secret, workspace).post("/api/v1/api-keys/", {"name": "child", "role": "admin"})
    assert resp.status_code == (201 if can_manage_keys else 403)


def test_the_key_never_reaches_the_logs(owner, workspace, caplog):
    created = api_key_create(workspace=workspace, name="CI", role=Role.VIEWER, by=owner)
    revoked = api_key_create(workspace=workspace, name="old", role=Role.VIEWER, by=owner)
    api_key_revoke(api_key=revoked.api_key, by=owner)
    job = JobFactory(workspace=workspace)
    with caplog.at_level(logging.DEBUG):
        for secret in (created.secret, revoked.secret, created.secret + "x"):
            for header in ("bearer", "x-api-key"):
                bot = _bot(secret, workspace, header)
                bot.get("/api/v1/jobs/")
                bot.get(f"/api/v1/jobs/{job.pk}/")
                bot.post("/api/v1/api-keys/", {"name": "x"})  # 403 / 401: logged as warnings
                bot.get("/api/v1/jobs/999999/")  # 404
    assert any(r.name == "django.request" for r in caplog.records)  # the 4xx answers were logged
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret in (created.secret, revoked.secret):
        assert secret not in logged
        assert secret.split("_", 2)[2] not in logged


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"])
def test_a_crash_while_checking_a_key_reports_no_key(owner, workspace, header):
    """The database fails during the key lookup: Django's error report (mailed to admins, shown with
    DEBUG) lists headers and every frame's local variables; none may show the key."""
    from django.db import OperationalError, connection

    from aicmo.apikeys import ApiKeyAuthentication

    secret = api_key_create(workspace=workspace, name="CI", role=Role.VIEWER, by=owner).secret
    value = f"Bearer {secret}" if header == "HTTP_AUTHORIZATION" else secret
    django_request = RequestFactory().get("/api/v1/jobs/", **{header: value})

    def database_down(execute, sql, params, many, context):
        raise OperationalError("server closed the connection unexpectedly")

    from rest_framework.request import Request

    with connection.execute_wrapper(database_down), pytest.raises(OperationalError) as info:
        ApiKeyAuthentication().authenticate(Request(django_request))
    # The report starts at the frame that caught nothing (the authentication class), not at this test.
    tb = info.value.__traceback__.tb_next
    reporter = ExceptionReporter(django_request, OperationalError, info.value, tb)
    report = reporter.get_traceback_text() + reporter.get_traceback_html()
    assert "authenticate" in report and header in report
    assert secret not in report and secret.split("_", 2)[2] not in report


def test_password_change_ends_the_users_other_sessions(member_factory, workspace):
    user = member_factory(workspace, Role.MARKETER, username="pat")
    user.set_password("old-pass-Xy12!")
    user.save()
    laptop, phone = Client(), Client()
    assert laptop.login(username="pat", password="old-pass-Xy12!")
    assert phone.login(username="pat", password="old-pass-Xy12!")
    assert phone.get("/jobs/").status_code == 200

    resp = laptop.post(
        "/password/change/",
        {
            "old_password": "old-pass-Xy12!",
            "new_password1": "new-pass-Qz98!",
            "new_password2": "new-pass-Qz98!",
        },
    )
    assert resp.status_code == 302
    assert laptop.get("/jobs/").status_code == 200  # the session that changed it stays signed in
    resp = phone.get("/jobs/")
    assert resp.status_code == 302 and resp["Location"].startswith("/login/")
