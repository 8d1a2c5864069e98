"""Recognising transient database errors: a write that lost the race for SQLite's lock, or a database
server that cannot be reached.

SQLite serialises writers. A connection that cannot take the lock within its busy timeout raises
``OperationalError("database is locked")`` (SQLITE_BUSY); a shared-cache table lock raises
``"database table is locked"`` (SQLITE_LOCKED). Both are transient: the same work succeeds once the other
writer commits (https://www.sqlite.org/rescode.html#busy).

A PostgreSQL server that is down, restarting or was cut off is just as transient: the connection attempt
is refused, or the server ends the session (SQLSTATE class 08 "connection exception"; 57P01
admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, see
https://www.postgresql.org/docs/current/errcodes-appendix.html). The transaction that was open is rolled
back by the server, so nothing of it is written. Every other ``OperationalError`` (a missing table, a disk
I/O error) is not treated as transient here.
"""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import dataclass

from django.db.utils import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

LOCKED_MESSAGES = ("database is locked", "database table is locked")
# What a client is told after a write lost the race for the lock: nothing was written, try again shortly.
BUSY_CODE = "database_busy"
BUSY_MESSAGE = "The database is busy; retry the request shortly."
BUSY_RETRY_AFTER_SECONDS = 1
# What a client is told while the database server cannot be reached: nothing was written, try again.
UNAVAILABLE_CODE = "database_unavailable"
UNAVAILABLE_MESSAGE = "The database is unavailable; retry the request shortly."
UNAVAILABLE_RETRY_AFTER_SECONDS = 5
# SQLSTATEs of a lost or refused server connection (class 08, and the shutdown / start-up states of 57P).
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")
# libpq / psycopg texts of a connection that could not be made or was cut (they carry no SQLSTATE).
UNAVAILABLE_MESSAGES = (
    "connection refused",
    "connection failed",
    "could not connect",
    "server closed the connection",
    "terminating connection",
    "the connection is closed",
    "the connection is lost",
    "connection already closed",
    "the database system is starting up",
    "the database system is shutting down",
)


def is_database_locked(exc: BaseException) -> bool:
    """True when ``exc`` (Django's or sqlite3's ``OperationalError``) says another writer holds the lock."""
    if not isinstance(exc, OperationalError | sqlite3.OperationalError):
        return False
    message = str(exc).lower()
    return any(text in message for text in LOCKED_MESSAGES)


def is_database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (Django's ``OperationalError`` / ``InterfaceError`` or psycopg's, directly or as
    the ``__cause__`` Django wraps) says the database server refused or lost the connection."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__module__.startswith("psycopg") or isinstance(
            current, OperationalError | InterfaceError
        ):
            sqlstate = getattr(current, "sqlstate", None) or ""
            if sqlstate.startswith(UNAVAILABLE_SQLSTATES):
                return True
            message = str(current).lower()
            if any(text in message for text in UNAVAILABLE_MESSAGES):
                return True
        current = current.__cause__
    return False


def is_database_transient(exc: BaseException) -> bool:
    """A lock error or an unreachable server: the same work succeeds later (tasks retry these)."""
    return is_database_locked(exc) or is_database_unavailable(exc)


@dataclass(frozen=True)
class TransientError:
    """How a client is answered for an error of the platform, not of the request: HTTP status, error
    code, message, and Retry-After in seconds."""

    status: int
    code: str
    message: str
    retry_after: int


def transient_error(exc: BaseException) -> TransientError | None:
    """503 for a lock error, an unreachable database server or a task that could not be queued
    (``aicmo.jobs.QueueUnavailable``), 507 for full file storage (:mod:`aicmo.storage`), None for any other
    exception."""
    from aicmo import jobs
    from aicmo.storage import FULL_CODE, FULL_MESSAGE, FULL_RETRY_AFTER_SECONDS, is_storage_full

    if is_database_locked(exc):
        return TransientError(503, BUSY_CODE, BUSY_MESSAGE, BUSY_RETRY_AFTER_SECONDS)
    if is_database_unavailable(exc):
        return TransientError(503, UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE, UNAVAILABLE_RETRY_AFTER_SECONDS)
    if isinstance(exc, jobs.QueueUnavailable):
        return TransientError(
            503,
            jobs.QUEUE_UNAVAILABLE_CODE,
            jobs.QUEUE_UNAVAILABLE_MESSAGE,
            jobs.QUEUE_UNAVAILABLE_RETRY_AFTER_SECONDS,
        )
    if is_storage_full(exc):
        return TransientError(507, FULL_CODE, FULL_MESSAGE, FULL_RETRY_AFTER_SECONDS)
    return None


def transient_response(request: HttpRequest, exc: BaseException) -> HttpResponse | None:
    """The :func:`transient_error` answer with ``Retry-After`` (JSON error body for the API or a
    JSON-asking client, plain text otherwise), or None for any other exception."""
    transient = transient_error(exc)
    if transient is None:
        return None
    from aicmo.api.errors import error_body

    if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
        body = error_body(transient.code, transient.message)
        response: HttpResponse = JsonResponse(body, status=transient.status)
    else:
        response = HttpResponse(
            transient.message, status=transient.status, content_type="text/plain; charset=utf-8"
        )
    response["Retry-After"] = str(transient.retry_after)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: an error raised by a middleware before any view ran (the session, the workspace
    lookup) reaches Django's 500 handler, not ``process_exception``; a transient error there is answered
    as in a view. Django calls handlers inside its ``except`` block."""
    exc = sys.exc_info()[1]
    if exc is not None:
        response = transient_response(request, exc)
        if response is not None:
            return response
    return defaults.server_error(request)


class DatabaseLockedMiddleware:
    """A lock error or an unreachable database server escaping a page view becomes ``503`` (full file
    storage ``507``) with ``Retry-After``, never a 500.

    API views answer through ``aicmo.api.errors.exception_handler`` before this runs; a JSON-asking
    client that reaches here still gets the standard error body. Any other exception passes through."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return transient_response(request, exception)
