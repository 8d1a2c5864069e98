"""Recognising a write that lost the race for SQLite's single write lock.

SQLite serialises writers. A connection that cannot take the lock within its busy timeout raises
``OperationalError("database is locked")`` (SQLITE_BUSY); a shared-cache table lock raises
``"database table is locked"`` (SQLITE_LOCKED). Both are transient: the same work succeeds once the other
writer commits (https://www.sqlite.org/rescode.html#busy). Every other ``OperationalError`` (a missing
table, a disk I/O error, a PostgreSQL connection failure) is not retried here.
"""

from __future__ import annotations

import sqlite3

from django.db.utils import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

LOCKED_MESSAGES = ("database is locked", "database table is locked")
# What a client is told after a write lost the race for the lock: nothing was written, try again shortly.
BUSY_CODE = "database_busy"
BUSY_MESSAGE = "The database is busy; retry the request shortly."
BUSY_RETRY_AFTER_SECONDS = 1


def is_database_locked(exc: BaseException) -> bool:
    """True when ``exc`` (Django's or sqlite3's ``OperationalError``) says another writer holds the lock."""
    if not isinstance(exc, OperationalError | sqlite3.OperationalError):
        return False
    message = str(exc).lower()
    return any(text in message for text in LOCKED_MESSAGES)


class DatabaseLockedMiddleware:
    """A lock error escaping a page view becomes ``503`` with ``Retry-After``, never a 500.

    API views answer through ``aicmo.api.errors.exception_handler`` before this runs; a JSON-asking
    client that reaches here still gets the standard error body. Any other exception passes through."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_locked(exception):
            return None
        from aicmo.api.errors import error_body

        if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
            response: HttpResponse = JsonResponse(error_body(BUSY_CODE, BUSY_MESSAGE), status=503)
        else:
            response = HttpResponse(BUSY_MESSAGE, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
        return response
