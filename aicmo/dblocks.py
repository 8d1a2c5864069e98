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

LOCKED_MESSAGES = ("database is locked", "database table is locked")


def is_database_locked(exc: BaseException) -> bool:
    """True when ``exc`` (Django's or sqlite3's ``OperationalError``) says another writer holds the lock."""
    if not isinstance(exc, OperationalError | sqlite3.OperationalError):
        return False
    message = str(exc).lower()
    return any(text in message for text in LOCKED_MESSAGES)
