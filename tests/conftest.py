"""Root fixtures. Real services (Redis, Celery worker, SMTP sink, vendor HTTP servers, Chromium) live in
tests/fixtures/services.py and tests/fixtures/browser.py; workspaces, users and clients in core.py."""

pytest_plugins = [
    "tests.fixtures.network",
    "tests.fixtures.core",
    "tests.fixtures.services",
    "tests.fixtures.browser",
]
