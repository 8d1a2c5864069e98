"""Celery app for the multi-host test's worker processes: the project's app, with a short visibility timeout
and kombu's unacked-restore scan every second, so a killed host's tasks come back within seconds instead of
the production timing (2 h timeout, scan every ~100 s; docs/OPERATIONS.md)."""

from aicmo.celery import app

app.conf.broker_transport_options = {
    "visibility_timeout": 8,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
