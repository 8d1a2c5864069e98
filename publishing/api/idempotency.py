"""``Idempotency-Key`` for API calls that start work: the first response (non-5xx) is stored for 24 hours
per workspace, caller and key, and replayed for a repeat with the same method, path and body (with
``Idempotent-Replayed: true``); the same key with a different request is a 422, and a repeat while the
first is still running a 409. Follows the IETF httpapi "Idempotency-Key" draft."""

from __future__ import annotations

import functools
import hashlib
import json

from django.core.cache import cache
from rest_framework import status
from rest_framework.response import Response

from aicmo.api.errors import error_body

TTL_SECONDS = 24 * 3600
LOCK_SECONDS = 60
MAX_KEY_LENGTH = 255


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str) if request.data else ""
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotent(view_method):
    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key", "")
        if not key:
            return view_method(self, request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH or not key.isprintable():
            return Response(
                error_body("invalid", "Idempotency-Key must be printable and at most 255 characters."),
                status=status.HTTP_400_BAD_REQUEST,
            )
        caller = getattr(request.auth, "pk", None) or f"u{request.user.pk}"
        scope = hashlib.sha256(f"{request.workspace.pk}:{caller}:{key}".encode()).hexdigest()
        cache_key, lock_key = f"publishing:idem:{scope}", f"publishing:idem-lock:{scope}"
        fingerprint = _fingerprint(request)
        stored = cache.get(cache_key)
        if stored is None:
            if not cache.add(lock_key, 1, LOCK_SECONDS):
                return Response(
                    error_body("conflict", "A request with this Idempotency-Key is still being processed."),
                    status=status.HTTP_409_CONFLICT,
                )
            try:
                response = view_method(self, request, *args, **kwargs)
                if response.status_code < 500:
                    cache.set(
                        cache_key,
                        {"fingerprint": fingerprint, "status": response.status_code, "data": response.data},
                        TTL_SECONDS,
                    )
                return response
            finally:
                cache.delete(lock_key)
        if stored["fingerprint"] != fingerprint:
            return Response(
                error_body(
                    "idempotency_key_reused", "This Idempotency-Key was used for a different request."
                ),
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        return Response(stored["data"], status=stored["status"], headers={"Idempotent-Replayed": "true"})

    return wrapper
