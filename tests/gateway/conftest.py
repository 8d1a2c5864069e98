"""Helpers for vendor-shaped local servers used by the adapter tests."""

from __future__ import annotations

import time

import pytest
from werkzeug import Response


def slow(seconds: float, body: str = "{}", status: int = 200):
    """A pytest-httpserver handler that answers after ``seconds`` (to provoke client timeouts)."""

    def handler(_request):
        time.sleep(seconds)
        return Response(body, status=status, content_type="application/json")

    return handler


@pytest.fixture
def vendor_url(httpserver) -> str:
    """Base URL of the local vendor server (pytest-httpserver)."""
    return httpserver.url_for("").rstrip("/")
