"""Structured logs (structlog): one JSON object per line, with the request id carried into tasks.

- :class:`RequestIdMiddleware` takes the caller's ``X-Request-ID`` when it is a plain token (letters,
  digits, ``-_.``, up to 64 characters; anything else is replaced), otherwise makes one (32 hex digits),
  binds it to the log context and returns it in the ``X-Request-ID`` response header.
- Publishing a task copies the current request id into the message header ``aicmo_request_id``
  (:func:`carry_request_id`); the worker binds it with the task id and name before the task runs
  (:func:`bind_task_context`), so one id follows a click from the web log into every task it started.
- :func:`logging_config` is the ``LOGGING`` dict: the standard library's records (Django, Celery, ours)
  go through structlog's ``ProcessorFormatter``; ``json`` renders JSON lines, ``plain`` a readable line.
"""

from __future__ import annotations

import re
import uuid

import structlog

REQUEST_ID_HEADER = "aicmo_request_id"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _shared_processors() -> list:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def logging_config(*, level: str = "INFO", fmt: str = "json") -> dict:
    """The ``LOGGING`` setting. ``fmt``: ``json`` (production) or ``plain`` (development)."""
    if fmt not in {"json", "plain"}:
        raise ValueError(f"LOG_FORMAT must be 'json' or 'plain', not {fmt!r}")
    renderer = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": [*_shared_processors(), structlog.stdlib.ExtraAdder()],
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # httpx/httpcore log full request URLs at INFO; some vendors take API keys in the query string.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }


def current_request_id() -> str | None:
    return structlog.contextvars.get_contextvars().get("request_id")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _VALID_ID.match(given) else uuid.uuid4().hex
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
        finally:
            structlog.contextvars.clear_contextvars()
        response["X-Request-ID"] = request_id
        return response


def carry_request_id(headers=None, **_kwargs) -> None:
    """``before_task_publish``: put the current request id (if any) into the message headers."""
    if headers is None:
        return
    request_id = current_request_id()
    if request_id and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id


def bind_task_context(*, task=None, task_id=None) -> None:
    """``task_prerun``: a fresh log context with the task's id and name and the originating request id."""
    structlog.contextvars.clear_contextvars()
    context = {"task_id": task_id, "task": getattr(task, "name", None)}
    request_id = getattr(getattr(task, "request", None), REQUEST_ID_HEADER, None)
    if request_id is None and task is not None:
        request_id = (getattr(task.request, "headers", None) or {}).get(REQUEST_ID_HEADER)
    if request_id:
        context["request_id"] = request_id
    structlog.contextvars.bind_contextvars(**context)
