"""One error body for every API failure: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.fields import get_error_detail
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from aicmo.conflicts import CONFLICT, CONFLICT_CODES, MISSING_CODES
from aicmo.dblocks import transient_error


def _flatten(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub, msgs in _flatten(value).items():
                    out[f"{key}.{sub}"] = msgs
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                for i, item in enumerate(value):
                    for sub, msgs in _flatten(item).items():
                        out[f"{key}[{i}].{sub}"] = msgs
            else:
                out[key] = [str(v) for v in (value if isinstance(value, list) else [value])]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [str(v) for v in detail]}
    return {"non_field_errors": [str(detail)]}


def _codes(detail) -> set[str]:
    """The codes of every message in a DRF error detail (ErrorDetail leaves of dicts and lists)."""
    if isinstance(detail, dict):
        return set().union(*(_codes(value) for value in detail.values())) if detail else set()
    if isinstance(detail, list):
        return set().union(*(_codes(value) for value in detail)) if detail else set()
    return {getattr(detail, "code", None) or "invalid"}


def is_conflict(exc: exceptions.ValidationError) -> bool:
    """Every message is a state conflict (``aicmo.conflicts``): answer 409, not 400. One malformed field
    beside it keeps the 400, since the request would fail whatever the state."""
    codes = _codes(exc.detail)
    return bool(codes) and codes <= CONFLICT_CODES | MISSING_CODES and bool(codes & CONFLICT_CODES)


def is_missing(exc: exceptions.ValidationError) -> bool:
    """Every message names a body id with no row in the workspace (``aicmo.conflicts.MISSING``): 404."""
    codes = _codes(exc.detail)
    return bool(codes) and codes <= MISSING_CODES


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def exception_handler(exc, context):
    transient = transient_error(exc)
    if transient is not None:
        # Not the request's fault (another writer held SQLite's lock past the busy timeout, the database
        # server is unreachable, file storage is full): nothing was written, the same request succeeds
        # later. 503 / 507 + Retry-After, never a 500.
        set_rollback()
        return Response(
            error_body(transient.code, transient.message),
            status=transient.status,
            headers={"Retry-After": str(transient.retry_after)},
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(get_error_detail(exc))  # keeps each message's code
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        general = fields.pop("non_field_errors", [])
        message = general[0] if general else "Invalid input."
        if general[1:]:
            fields["non_field_errors"] = general
        if is_conflict(exc):
            response.status_code = status.HTTP_409_CONFLICT
            response.data = error_body(CONFLICT, message, fields)
        elif is_missing(exc):
            response.status_code = status.HTTP_404_NOT_FOUND
            message = general[0] if general else "An id in the request names no row of this workspace."
            response.data = error_body("not_found", message, fields)
        else:
            response.data = error_body("invalid", message, fields)
    else:
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(str(code), str(detail))
    return response


def error_response(code: str, message: str, http_status: int = status.HTTP_400_BAD_REQUEST, fields=None):
    return Response(error_body(code, message, fields), status=http_status)
