"""Login brute force: locked out per username and per client address (django-axes), with the address taken
from REMOTE_ADDR unless a trusted proxy is configured, so a rotated X-Forwarded-For does not reset the
count. The lock lifts after the cool-off; the admin login is guarded the same way."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client, RequestFactory

from aicmo.loginguard import client_ip
from aicmo.models import Role

pytestmark = pytest.mark.django_db

PASSWORD = "right-Pass-8812!"


@pytest.fixture
def people(member_factory, workspace):
    out = {}
    for name in ("pat", "sam"):
        user = member_factory(workspace, Role.MARKETER, username=name)
        user.set_password(PASSWORD)
        user.save()
        out[name] = user
    return out


def _login(username, password, *, ip="198.51.100.1", xff=None, path="/login/"):
    extra = {"REMOTE_ADDR": ip}
    if xff is not None:
        extra["HTTP_X_FORWARDED_FOR"] = xff
    client = Client()
    resp = client.post(path, {"username": username, "password": password}, **extra)
    return resp, client


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_one_username_is_locked_whatever_address_the_attempts_come_from(people, settings):
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        resp, _ = _login("pat", "wrong", ip=f"198.51.100.{10 + n}")
        assert resp.status_code == 200  # the form again, with its error
    assert _login("pat", "wrong", ip="198.51.100.60")[0].status_code == 429  # the limit-th failure locks
    resp, client = _login("pat", PASSWORD, ip="198.51.100.99")
    assert resp.status_code == 429 and not _logged_in(client)
    assert "Too many failed logins" in resp.content.decode()
    resp, client = _login("sam", PASSWORD, ip="198.51.100.99")  # another user is not affected
    assert resp.status_code == 302 and _logged_in(client)


def test_one_address_is_locked_whatever_usernames_it_tries(people, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(f"guess{n}", "wrong", ip="203.0.113.5")
    resp, client = _login("sam", PASSWORD, ip="203.0.113.5")
    assert resp.status_code == 429 and not _logged_in(client)
    resp, client = _login("sam", PASSWORD, ip="203.0.113.6")
    assert resp.status_code == 302 and _logged_in(client)


@pytest.mark.parametrize("behind_proxy", [False, True])
def test_rotating_x_forwarded_for_does_not_reset_the_count(people, settings, behind_proxy):
    """Without a trusted proxy the header is ignored; with one, only the hop the proxy appended counts."""
    settings.BEHIND_PROXY = behind_proxy
    proxy, attacker = "10.0.0.2", "203.0.113.7"
    for n in range(settings.AXES_FAILURE_LIMIT):
        forged = f"192.0.2.{n}, 192.0.2.{100 + n}"
        if behind_proxy:
            _login(f"guess{n}", "wrong", ip=proxy, xff=f"{forged}, {attacker}")
        else:
            _login(f"guess{n}", "wrong", ip=attacker, xff=forged)
    if behind_proxy:
        resp, client = _login("sam", PASSWORD, ip=proxy, xff=f"192.0.2.250, {attacker}")
        assert resp.status_code == 429 and not _logged_in(client)
        resp, client = _login("sam", PASSWORD, ip=proxy, xff="203.0.113.8")  # another client, same proxy
        assert resp.status_code == 302 and _logged_in(client)
    else:
        resp, client = _login("sam", PASSWORD, ip=attacker, xff="192.0.2.251")
        assert resp.status_code == 429 and not _logged_in(client)


def test_the_lock_lifts_after_the_cool_off(people, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login("pat", "wrong")
    assert _login("pat", PASSWORD)[0].status_code == 429
    # time passes: the failures are now older than the cool-off
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.first().attempt_time
        - settings.AXES_COOLOFF_TIME
        - timedelta(seconds=1)
    )
    resp, client = _login("pat", PASSWORD)
    assert resp.status_code == 302 and _logged_in(client)


def test_the_admin_login_is_guarded_too(people, settings):
    admin = people["pat"]
    admin.is_staff = True
    admin.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login("pat", "wrong", path="/admin/login/")
    resp, client = _login("pat", PASSWORD, path="/admin/login/")
    assert resp.status_code == 429 and not _logged_in(client)


@pytest.mark.parametrize(
    ("behind_proxy", "count", "remote", "xff", "expected"),
    [
        (False, 1, "198.51.100.1", None, "198.51.100.1"),
        (False, 1, "198.51.100.1", "1.2.3.4", "198.51.100.1"),
        (True, 1, "10.0.0.2", "1.2.3.4", "1.2.3.4"),
        (True, 1, "10.0.0.2", "9.9.9.9, 1.2.3.4", "1.2.3.4"),
        (True, 2, "10.0.0.2", "9.9.9.9, 1.2.3.4, 10.0.0.9", "1.2.3.4"),
        (True, 2, "10.0.0.2", "1.2.3.4", "10.0.0.2"),  # shorter than the proxy chain: not believed
        (True, 1, "10.0.0.2", "not-an-ip", "10.0.0.2"),
        (True, 1, "10.0.0.2", "", "10.0.0.2"),
        (True, 1, "10.0.0.2", " 2001:db8::1 ", "2001:db8::1"),
        (False, 1, "", None, None),
    ],
)
def test_client_ip(settings, behind_proxy, count, remote, xff, expected):
    settings.BEHIND_PROXY, settings.TRUSTED_PROXY_COUNT = behind_proxy, count
    extra = {"REMOTE_ADDR": remote} | ({"HTTP_X_FORWARDED_FOR": xff} if xff is not None else {})
    assert client_ip(RequestFactory().get("/", **extra)) == expected
