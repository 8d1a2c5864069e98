"""Helpers for vendor-shaped local servers used by the adapter tests."""

from __future__ import annotations

import threading
import time

import pytest
from werkzeug import Response


class slow:  # noqa: N801 - used like a function in handler registration
    """A pytest-httpserver handler that answers after ``seconds`` (to provoke client timeouts).

    The server is single-threaded: call ``.wait()`` before the test ends so the late answer does not
    land in the next test's request log.
    """

    def __init__(self, seconds: float, body: str = "{}", status: int = 200) -> None:
        self.seconds, self.body, self.status = seconds, body, status
        self.done = threading.Event()

    def __call__(self, _request):
        time.sleep(self.seconds)
        self.done.set()
        return Response(self.body, status=self.status, content_type="application/json")

    def wait(self) -> None:
        assert self.done.wait(5), "slow handler never ran"
        time.sleep(0.05)


@pytest.fixture
def vendor_url(httpserver) -> str:
    """Base URL of the local vendor server (pytest-httpserver)."""
    return httpserver.url_for("").rstrip("/")
