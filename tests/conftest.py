"""Root fixtures. Real services (Redis, Celery worker, SMTP sink, vendor HTTP servers, Chromium) live in
tests/fixtures/services.py and tests/fixtures/browser.py; workspaces, users and clients in core.py."""

pytest_plugins = [
    "tests.fixtures.network",
    "tests.fixtures.core",
    "tests.fixtures.services",
    "tests.fixtures.browser",
]


import os  # noqa: E402

import pytest  # noqa: E402
from django.core.cache import cache  # noqa: E402

ON_POSTGRES = os.environ.get("DATABASE_URL", "").split(":", 1)[0] in {"postgres", "postgresql"}
# Fixtures through which a test reaches the Django database (pytest-django blocks any other way in-process).
DATABASE_FIXTURES = {"db", "transactional_db", "live_server", "django_db_reset_sequences", "django_db_setup"}


def pytest_addoption(parser):
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="run only tests that reach the database (the PostgreSQL phase of `make test`: the others "
        "gave their answer in the SQLite phase, and no database can change it)",
    )


def reaches_the_database(item) -> bool:
    return (
        item.get_closest_marker("django_db") is not None
        or item.get_closest_marker("postgres") is not None
        or item.get_closest_marker("faults") is not None
        or bool(DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())))
    )


def pytest_collection_modifyitems(config, items):
    """Which database a test runs against (see the markers in pyproject.toml and the Makefile).

    - `postgres` and `faults` tests are skipped on SQLite, with the reason: the first need PostgreSQL, the
      second (real processes killed, Redis and PostgreSQL restarted) state their guarantees for the
      production database, so they run once, in the PostgreSQL phase, instead of twice.
    - With `--database-tests-only` (the PostgreSQL phase) a test that reaches no database is deselected.
    """
    if not ON_POSTGRES:
        for item in items:
            if item.get_closest_marker("postgres"):
                item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: runs in the PostgreSQL phase"))
            elif item.get_closest_marker("faults"):
                item.add_marker(
                    pytest.mark.skip(reason="a fault test: runs in the PostgreSQL phase (tests/pgrun.py)")
                )
    if config.getoption("--database-tests-only"):
        kept, dropped = [], []
        for item in items:
            (kept if reaches_the_database(item) else dropped).append(item)
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


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
