"""``Idempotency-Key`` for API calls that start work (imports, enrichment and verification runs, uploads,
exports, campaign sends): the first response (non-5xx) is stored for 24 hours per workspace, caller and
key, and replayed for a repeat with the same method, path and body (with ``Idempotent-Replayed: true``);
the same key with a different request is a 422 ``idempotency_key_reused``, and a repeat while the first is
still running a 409 ``conflict``. Follows the IETF httpapi "The Idempotency-Key HTTP Header Field" draft.

A request's identity is its method, path, JSON/form fields and the SHA-256 of every uploaded file's bytes
(two different files under the same name are different requests). The store is Django's cache (Redis in
every deployed profile), shared by every web process.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re

from django.core.cache import cache
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from .errors import error_body

TTL_SECONDS = 24 * 3600
LOCK_SECONDS = 60
HEADER = "Idempotency-Key"
KEY_PATTERN = r"^[!-~]{1,255}$"  # visible ASCII, as a header value carries it

PARAMETER = OpenApiParameter(
    HEADER,
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
    location=OpenApiParameter.HEADER,
    required=False,
    description="Make this call safe to retry: a repeat with the same key and request replays the first "
    "answer (`Idempotent-Replayed: true`); the same key with another request is a 422, a repeat while "
    "the first still runs a 409. Kept 24 hours. 1–255 visible ASCII characters.",
)


def _uploads_digest(request) -> list[tuple[str, str]]:
    digests = []
    for name, upload in sorted(getattr(request, "FILES", {}).items()):
        sha = hashlib.sha256()
        for chunk in upload.chunks():
            sha.update(chunk)
        upload.seek(0)
        digests.append((name, sha.hexdigest()))
    return digests


def _fingerprint(request) -> str:
    files = dict(_uploads_digest(request))
    fields = {k: v for k, v in request.data.items() if k not in files} if request.data else {}
    body = json.dumps([fields, files], sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotent(view_method):
    """Decorate a DRF view method that starts work; documents the header and, through
    ``aicmo.api.schema``, the 409 and 422 it can answer. Place it *above* ``@action`` (``@action`` replaces
    the schema override of a function it decorates) and below any ``@extend_schema``."""

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:  # absent; present but empty is malformed like any other bad key
            return view_method(self, request, *args, **kwargs)
        if not re.fullmatch(KEY_PATTERN, key):
            return Response(
                error_body("invalid", f"{HEADER} must be 1 to 255 visible ASCII characters."),
                status=status.HTTP_400_BAD_REQUEST,
            )
        caller = getattr(request.auth, "pk", None) or f"u{request.user.pk}"
        scope = hashlib.sha256(f"{request.workspace.pk}:{caller}:{key}".encode()).hexdigest()
        cache_key, lock_key = f"aicmo:idem:{scope}", f"aicmo:idem-lock:{scope}"
        fingerprint = _fingerprint(request)
        stored = cache.get(cache_key)
        if stored is None:
            if not cache.add(lock_key, 1, LOCK_SECONDS):
                return Response(
                    error_body("conflict", f"A request with this {HEADER} is still being processed."),
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
                error_body("idempotency_key_reused", f"This {HEADER} was used for a different request."),
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        return Response(stored["data"], status=stored["status"], headers={"Idempotent-Replayed": "true"})

    return extend_schema(parameters=[PARAMETER])(wrapper)
