"""Login brute-force protection (django-axes): which address a request comes from, and the backend that
refuses a locked-out login.

Client address. ``REMOTE_ADDR`` — the peer of the TCP connection — unless ``settings.BEHIND_PROXY`` says a
reverse proxy we run sits in front. Then the address is read from ``X-Forwarded-For``, and only the entry
our own proxies appended counts: with ``settings.TRUSTED_PROXY_COUNT`` = n proxies, each appends the peer it
saw, so the client is the n-th entry from the right; everything to its left was sent by the client and is
ignored (otherwise rotating a made-up ``X-Forwarded-For`` would give each attempt a fresh address). A
header too short or not an IP address falls back to ``REMOTE_ADDR``.
"""

from __future__ import annotations

import ipaddress

from axes.backends import AxesBackend
from django.conf import settings


def _ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The client's IP address as text (see the module docstring), or None without any address."""
    remote = request.META.get("REMOTE_ADDR", "")
    if settings.BEHIND_PROXY:
        hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        count = settings.TRUSTED_PROXY_COUNT
        if count >= 1 and len(hops) >= count:
            forwarded = _ip(hops[-count])
            if forwarded:
                return forwarded
    return _ip(remote) if remote else None


class LoginAttemptBackend(AxesBackend):
    """Axes' lockout check for every login made from a request (the login page, the admin, password
    forms). ``authenticate()`` called without a request comes from code (management commands, the test
    client), not from someone trying passwords over HTTP, and is passed on to the next backend. Being first
    in ``AUTHENTICATION_BACKENDS`` it is also the one ``login()`` records when none is named, so it keeps
    ModelBackend's ``get_user`` and permission methods (``AxesBackend``); it never authenticates anyone."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
