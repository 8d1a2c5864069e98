"""Root fixtures. Real services (Redis, Celery worker, SMTP sink, vendor HTTP servers, Chromium) live in
tests/fixtures/services.py and tests/fixtures/browser.py; workspaces, users and clients in core.py."""

pytest_plugins = [
    "tests.fixtures.network",
    "tests.fixtures.core",
    "tests.fixtures.services",
    "tests.fixtures.browser",
]


import pytest  # noqa: E402
from django.core.cache import cache  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: database ids repeat between tests (rolled-back rows), so a
    cached value keyed by an id (idempotency replays, throttles) must not outlive its test."""
    cache.clear()


def pytest_sessionfinish(session):
    """Django deletes this process's SQLite test database at the end, but SQLite can leave its ``-wal`` and
    ``-shm`` files behind; the name carries the pid (aicmo/settings.py), so they would pile up in var/."""
    from pathlib import Path

    from django.conf import settings

    name = (settings.DATABASES["default"].get("TEST") or {}).get("NAME")
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") and name:
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{name}{suffix}").unlink(missing_ok=True)
