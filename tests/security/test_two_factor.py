"""Optional TOTP two-factor (django-otp): enrol with a QR code, a code after the password on the dashboard,
the admin and session API calls, and a per-workspace requirement for admins."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP, totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from aicmo.models import AuditEvent, Role

pytestmark = pytest.mark.django_db

PASSWORD = "right-Pass-8812!"


def _code(device: TOTPDevice) -> str:
    """The code an authenticator app shows now, or for the next 30-s step when this step's code was used
    already (django-otp refuses a replayed step; it accepts one step of clock drift)."""
    device.refresh_from_db()
    now = TOTP(device.bin_key, device.step, device.t0, device.digits).t()
    drift = 1 if device.last_t is not None and device.last_t >= now else 0
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=drift):06d}"


@pytest.fixture
def person(member_factory, workspace):
    def make(role=Role.MARKETER, ws=None, **kwargs):
        user = member_factory(ws or workspace, role, **kwargs)
        user.set_password(PASSWORD)
        user.save()
        return user

    return make


def _time_passes(device: TOTPDevice, seconds: int = 60) -> None:
    """django-otp throttles a device after a wrong code (1, 2, 4 … s); move the failure into the past."""
    TOTPDevice.objects.filter(pk=device.pk, throttling_failure_timestamp__isnull=False).update(
        throttling_failure_timestamp=timezone.now() - timedelta(seconds=seconds)
    )
    device.refresh_from_db()


def _password_login(user) -> Client:
    client = Client()
    resp = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert resp.status_code == 302
    return client


def _enrol(client, user) -> TOTPDevice:
    page = client.get("/two-factor/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "<svg" in body and "otpauth://totp/" in body
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    wrong = f"{(int(_code(device)) + 1) % 1_000_000:06d}"
    assert client.post("/two-factor/", {"action": "confirm", "token": wrong}).status_code == 400
    device.refresh_from_db()
    right = _code(device)
    assert client.post("/two-factor/", {"action": "confirm", "token": right}).status_code == 400  # throttled
    _time_passes(device)
    resp = client.post("/two-factor/", {"action": "confirm", "token": _code(device), "next": "/jobs/"})
    assert resp.status_code == 302 and resp["Location"] == "/jobs/"
    device.refresh_from_db()
    assert device.confirmed
    return device


def test_without_a_device_nothing_changes(person):
    client = _password_login(person())
    assert client.get("/jobs/").status_code == 200


def test_enrol_then_every_login_asks_for_a_code(person):
    user = person(is_staff=True)
    client = _password_login(user)
    device = _enrol(client, user)
    assert client.get("/jobs/").status_code == 200  # the enrolling session is verified

    fresh = _password_login(user)
    for path in ("/jobs/", "/settings/", "/admin/"):
        resp = fresh.get(path)
        assert resp.status_code == 302 and resp["Location"].startswith("/two-factor/verify/?next=")
    api = fresh.get("/api/v1/jobs/")
    assert api.status_code == 403 and api.json()["error"]["code"] == "two_factor_required"

    wrong = fresh.post("/two-factor/verify/", {"token": f"{(int(_code(device)) + 1) % 1_000_000:06d}"})
    assert wrong.status_code == 400 and "not right" in wrong.content.decode()
    _time_passes(device)
    ok = fresh.post("/two-factor/verify/", {"token": _code(device), "next": "/jobs/"})
    assert ok.status_code == 302 and ok["Location"] == "/jobs/"
    assert fresh.get("/jobs/").status_code == 200
    assert fresh.get("/api/v1/jobs/").status_code == 200


def test_verify_refuses_an_offsite_next(person):
    user = person()
    client = _password_login(user)
    device = _enrol(client, user)
    fresh = _password_login(user)
    device.refresh_from_db()
    resp = fresh.post("/two-factor/verify/", {"token": _code(device), "next": "https://evil.example/"})
    assert resp["Location"] == "/"


def test_api_keys_are_not_asked_for_a_code(person, workspace):
    from aicmo.apikeys import api_key_create

    user = person(role=Role.ADMIN)
    _enrol(_password_login(user), user)
    secret = api_key_create(workspace=workspace, name="CI", role=Role.VIEWER, by=user).secret
    resp = Client().get("/api/v1/jobs/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert resp.status_code == 200


@pytest.mark.parametrize(
    ("role", "required", "sent_to_enrol"),
    [
        (Role.ADMIN, True, True),
        (Role.ADMIN, False, False),
        (Role.MARKETER, True, False),
        (Role.VIEWER, True, False),
    ],
)
def test_a_workspace_can_require_it_of_its_admins(person, workspace, role, required, sent_to_enrol):
    workspace.admins_require_two_factor = required
    workspace.save()
    user = person(role=role)
    client = _password_login(user)
    resp = client.get("/jobs/")
    if sent_to_enrol:
        assert resp.status_code == 302 and resp["Location"].startswith("/two-factor/?next=")
        _enrol(client, user)
        assert client.get("/jobs/").status_code == 200
        device = TOTPDevice.objects.get(user=user)
        removed = client.post("/two-factor/", {"action": "remove", "token": _code(device)})
        assert TOTPDevice.objects.filter(user=user).exists()  # required: it cannot be turned off
        assert (
            removed.status_code == 400
            or "cannot be turned off" in client.get("/two-factor/").content.decode()
        )
    else:
        assert resp.status_code == 200


def test_an_admin_elsewhere_is_held_to_the_strictest_workspace(person, workspace, other_workspace):
    other_workspace.admins_require_two_factor = True
    other_workspace.save()
    user = person(role=Role.MARKETER)
    from tests.factories import MembershipFactory

    MembershipFactory(workspace=other_workspace, user=user, role=Role.ADMIN)
    resp = _password_login(user).get("/jobs/")
    assert resp.status_code == 302 and resp["Location"].startswith("/two-factor/")


def test_the_requirement_is_set_on_the_settings_page_by_admins_only(person, workspace, other_workspace):
    admin = person(role=Role.ADMIN)
    client = _password_login(admin)
    resp = client.post("/settings/", {"action": "two-factor", "required": "on"})
    assert resp.status_code == 302
    workspace.refresh_from_db()
    other_workspace.refresh_from_db()
    assert workspace.admins_require_two_factor is True
    assert other_workspace.admins_require_two_factor is False  # only the admin's own workspace
    assert AuditEvent.objects.filter(workspace=workspace, verb="workspace.two_factor_changed").count() == 1

    marketer = _password_login(person(role=Role.MARKETER, ws=workspace))
    assert marketer.post("/settings/", {"action": "two-factor"}).status_code == 403
    workspace.refresh_from_db()
    assert workspace.admins_require_two_factor is True


def test_turning_it_off_needs_a_current_code(person):
    user = person()
    client = _password_login(user)
    device = _enrol(client, user)
    bad = f"{(int(_code(device)) + 1) % 1_000_000:06d}"
    assert client.post("/two-factor/", {"action": "remove", "token": bad}).status_code == 400
    _time_passes(device)
    assert client.post("/two-factor/", {"action": "remove", "token": _code(device)}).status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()
