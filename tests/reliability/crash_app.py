"""Celery app for the kill-and-restart tests' worker processes: the project's app with kombu's unacked-restore
scan every second, so a killed worker's unacknowledged task comes back as soon as its visibility timeout
(``CELERY_VISIBILITY_TIMEOUT``, set short by the test) has passed, instead of the production scan every
~100 s (docs/OPERATIONS.md). The restore scan's mutex expires after 5 s instead of 300 s: a worker killed
while scanning leaves it held, which would otherwise delay the redelivery by five minutes."""

import os

from aicmo.celery import app

app.conf.broker_transport_options = {
    "visibility_timeout": int(os.environ["CELERY_VISIBILITY_TIMEOUT"]),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
    "unacked_mutex_expire": 5,
}
