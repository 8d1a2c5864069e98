"""Structured logs: the request id goes back to the caller, into JSON log lines and on into the tasks the
request started (through the message header, on a real worker)."""

from __future__ import annotations

import json
import logging
import logging.config

import pytest
import structlog

from aicmo.celery import app
from aicmo.logs import logging_config


@app.task(name="tests.ops.log_context_probe")
def log_context_probe():
    return structlog.contextvars.get_contextvars()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abc-123.X_y", True),
        ("", False),
        ("bad id with spaces", False),
        ("x" * 65, False),
        ("<script>", False),
    ],
)
def test_request_id_is_echoed_or_replaced(client, given, kept):
    resp = client.get("/login/", HTTP_X_REQUEST_ID=given)
    rid = resp["X-Request-ID"]
    assert (rid == given) is kept
    if not kept:
        assert len(rid) == 32 and int(rid, 16) >= 0


def test_json_lines_carry_the_bound_context(capsys):
    config = logging_config(level="INFO", fmt="json")
    config["handlers"]["console"]["stream"] = "ext://sys.stdout"
    logging.config.dictConfig(config)
    try:
        structlog.contextvars.bind_contextvars(request_id="req-42")
        logging.getLogger("aicmo.test").info("hello %s", "world")
        structlog.get_logger("aicmo.test").warning("sent", recipients=3)
    finally:
        structlog.contextvars.clear_contextvars()
        from django.conf import settings

        logging.config.dictConfig(settings.LOGGING)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert lines[0]["event"] == "hello world" and lines[0]["request_id"] == "req-42"
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "aicmo.test" and "timestamp" in lines[0]
    assert lines[1]["event"] == "sent" and lines[1]["recipients"] == 3 and lines[1]["request_id"] == "req-42"


def test_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logging_config(fmt="xml")


def test_request_id_travels_into_the_task(live_celery_worker):
    structlog.contextvars.bind_contextvars(request_id="req-from-web")
    try:
        result = log_context_probe.delay()
    finally:
        structlog.contextvars.clear_contextvars()
    context = result.get(timeout=20)
    assert context == {
        "request_id": "req-from-web",
        "task_id": result.id,
        "task": "tests.ops.log_context_probe",
    }
