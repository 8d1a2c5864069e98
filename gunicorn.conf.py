"""gunicorn settings for the web process: `gunicorn -c gunicorn.conf.py aicmo.wsgi` (docs/OPERATIONS.md).

Environment: PORT (8000), WEB_CONCURRENCY (worker processes; 2 × CPUs + 1), WEB_THREADS (1),
WEB_TIMEOUT (30 s), FORWARDED_ALLOW_IPS (proxies trusted for X-Forwarded-*; default 127.0.0.1),
PROMETHEUS_MULTIPROC_DIR (set it so /metrics sums every worker's request metrics).
"""

import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("WEB_THREADS", "1"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (jittered so they do not restart together): bounds slow memory growth.
max_requests = 2000
max_requests_jitter = 200
# Heartbeat files on tmpfs: a slow disk must not make the arbiter think workers hang.
SHM = "/dev/shm"  # noqa: S108 - gunicorn heartbeat files only, per its deployment docs
worker_tmp_dir = SHM if os.path.isdir(SHM) else None
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
# Load the app in each worker after fork: database and Redis connections are never shared across forks.
preload_app = False


def on_starting(server):
    """Multiprocess metrics: start from an empty directory (files of dead processes would be summed)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.remove(os.path.join(directory, name))


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
