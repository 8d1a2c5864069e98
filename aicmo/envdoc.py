"""The environment variable table of docs/OPERATIONS.md, generated from the code that reads the variables.

:func:`env_reads` parses (``ast``; nothing is imported or executed) ``aicmo/settings.py`` for
django-environ reads (``env.str("NAME", default=...)``, ``env.db(...)``, ``env("NAME")`` ...) and the other
process-level files for ``os.environ.get("NAME", ...)`` / ``os.getenv``. Each variable needs a sentence in
:data:`DESCRIPTIONS`; :func:`render_table` joins both into the Markdown table that
``manage.py env_table --write`` puts between the markers in docs/OPERATIONS.md. tests/ops/test_env_table.py
fails when a variable is read but not described, described but no longer read, or the doc is stale.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    "aicmo/settings.py",
    "aicmo/metrics.py",
    "aicmo/localredis.py",
    "gunicorn.conf.py",
]
DOC = ROOT / "docs" / "OPERATIONS.md"
BEGIN = "<!-- env-table:begin (generated: manage.py env_table --write; sentences in aicmo/envdoc.py) -->"
END = "<!-- env-table:end -->"

DESCRIPTIONS: dict[str, str] = {
    "AICMO_ENV": "Profile. `dev`/`test` relax security and allow generated secrets; anything else is production. "
    "Set `production` explicitly for operator commands.",
    "SECRET_KEY": "**Required in production.** Django's signing key (sessions, CSRF, invitation links). "
    "See *Rotating SECRET_KEY*.",
    "SECRET_KEY_FALLBACKS": "Comma-separated previous signing keys still accepted during a rotation.",
    "FIELD_ENCRYPTION_KEYS": "**Required in production.** Comma-separated Fernet keys, newest first, encrypting "
    "stored secrets (provider credentials, hook secrets, DKIM keys). See *Rotating the credentials key*.",
    "DEBUG": "Django debug pages. Never in production.",
    "ALLOWED_HOSTS": "**Required in production.** Comma-separated host names the site answers to "
    "(probes and /metrics bypass it).",
    "CSRF_TRUSTED_ORIGINS": "Origins allowed to POST, e.g. `https://aicmo.example.com`.",
    "AICMO_VAR_DIR": "Directory for local state (SQLite file, media by default).",
    "DATABASE_URL": "**Production: PostgreSQL**, `postgres://user:pass@host:5432/aicmo`. Unset: SQLite in "
    "`AICMO_VAR_DIR` (demo only).",
    "DB_CONN_MAX_AGE": "Seconds a PostgreSQL connection is reused (health-checked).",
    "REDIS_URL": "**Required in production.** Broker, results, cache, breakers, rate limits, metrics counters.",
    "TIME_ZONE": "Default zone of new workspaces and of the logs (each workspace has its own; people may choose theirs).",
    "STATIC_ROOT": "Where `collectstatic` writes; whitenoise serves it.",
    "MEDIA_ROOT": "User files with local storage; included in `manage.py backup`.",
    "AICMO_STORAGE": "`local` or `s3` (any S3-compatible store; then the `AWS_*` variables).",
    "AWS_STORAGE_BUCKET_NAME": "Bucket for user files (required with `AICMO_STORAGE=s3`).",
    "AWS_S3_ENDPOINT_URL": "S3-compatible endpoint (MinIO, R2, Ceph); empty for AWS.",
    "AWS_S3_REGION_NAME": "Bucket region.",
    "AWS_ACCESS_KEY_ID": "Object store key id (or use the instance role).",
    "AWS_SECRET_ACCESS_KEY": "Object store secret.",
    "AWS_LOCATION": "Key prefix inside the bucket.",
    "AWS_QUERYSTRING_EXPIRE": "Lifetime of signed download URLs, seconds.",
    "SECURE_SSL_REDIRECT": "Redirect HTTP to HTTPS (probes and /metrics are exempt).",
    "SESSION_COOKIE_SECURE": "Session cookie only over HTTPS.",
    "CSRF_COOKIE_SECURE": "CSRF cookie only over HTTPS.",
    "SECURE_HSTS_SECONDS": "HSTS max-age.",
    "SECURE_HSTS_PRELOAD": "Ask browsers to preload HSTS.",
    "BEHIND_PROXY": "Trust `X-Forwarded-Proto`, and `X-Forwarded-For` for the client address (see Security), from your TLS-terminating proxy.",
    "TRUSTED_PROXY_COUNT": "How many proxies of yours append to `X-Forwarded-For` (only with `BEHIND_PROXY`).",
    "AICMO_GATEWAY_LOOPBACK_ALLOW": "Exact loopback `host:port` pairs provider URLs may reach (e.g. a local mail catcher); empty refuses every loopback address.",
    "AICMO_DB_LOCKED_MAX_RETRIES": "SQLite: how often a task retries a write that lost the database lock.",
    "AICMO_DB_LOCKED_BASE_DELAY": "SQLite: first backoff (seconds) before retrying a lost lock; doubles each time, with jitter.",
    "AICMO_DB_LOCKED_MAX_DELAY": "SQLite: longest backoff (seconds) between lock retries.",
    "AICMO_TASK_MAX_DELIVERIES": "A task whose worker died this many times running it is not run again; its job fails with the reason.",
    "AICMO_PASSWORD_RESET_MAILER": "Dotted path of the function mailing password reset links (like `AICMO_INVITATION_MAILER`).",
    "PASSWORD_RESET_TIMEOUT": "Seconds a password reset link works.",
    "AXES_FAILURE_LIMIT": "Failed logins (per username, or per client address) before the login is locked.",
    "AXES_COOLOFF_MINUTES": "Minutes a login lock lasts after the last failure.",
    "OTP_TOTP_ISSUER": "Name of the two-factor entry in authenticator apps.",
    "PUBLISHING_CLAIM_LEASE_SECONDS": "Email sending: a claimed delivery whose worker has not renewed its lease for this long is taken back (not yet started) or marked uncertain (started).",
    "PUBLISHING_SOFT_BOUNCE_LIMIT": "Soft bounces after which a contact is suppressed for email.",
    "PUBLISHING_CONVERSION_WINDOW_DAYS": "A conversion is attributed to the last human click within this many days.",
    "PUBLISHING_REPLY_LOOKBACK_DAYS": "How far back the IMAP reply fetch looks for replies and bounces to our messages.",
    "PUBLISHING_SEND_BATCH_SIZE": "Email sending: deliveries one worker claims per batch.",
    "PUBLISHING_SEND_CONCURRENCY": "Email sending: parallel batch chains per campaign.",
    "PUBLISHING_MISSED_GRACE_SECONDS": "A scheduled campaign later than this (the platform was down) waits as `missed` for a person instead of sending.",
    "EMAIL_BACKEND": "Django mail backend for operator mail.",
    "EMAIL_HOST": "SMTP host for Django's own mail (staging: the mailpit catcher).",
    "EMAIL_PORT": "SMTP port.",
    "DEFAULT_FROM_EMAIL": "Sender of Django's own mail.",
    "PUBLIC_BASE_URL": "**Required in production.** Base URL in links we send (tracking, unsubscribe, invitations).",
    "API_THROTTLE_USER": "DRF rate for authenticated callers.",
    "API_THROTTLE_ANON": "DRF rate for anonymous callers.",
    "CELERY_BROKER_URL": "Celery broker if not `REDIS_URL`.",
    "CELERY_RESULT_BACKEND": "Celery results if not `REDIS_URL`.",
    "CELERY_TASK_TIME_LIMIT": "Hard per-task limit, seconds.",
    "CELERY_TASK_SOFT_TIME_LIMIT": "Soft per-task limit, seconds (the task gets an exception to clean up).",
    "CELERY_VISIBILITY_TIMEOUT": "Seconds before Redis redelivers an unacknowledged task; see *Queues and "
    "worker pools*.",
    "LOG_FORMAT": "`json` (one object per line) or `plain`.",
    "LOG_LEVEL": "Root log level.",
    "SENTRY_DSN": "Send errors to Sentry (or GlitchTip); empty: off.",
    "SENTRY_TRACES_SAMPLE_RATE": "Share of requests/tasks traced to Sentry (0..1).",
    "AICMO_METRICS_TOKEN": "Bearer token that may scrape /metrics.",
    "AICMO_METRICS_ALLOWED_NETWORKS": "CIDRs that may scrape /metrics without the token.",
    "AICMO_METRICS_SOURCES": "Dotted paths of extra metric sources (apps' own gauges).",
    "AICMO_PROVIDER_STATUS": "Dotted path of the fleet-wide provider status function (gateway's).",
    "AICMO_RETENTION_JOBS_DAYS": "Finished jobs older than this are deleted (0 keeps all).",
    "AICMO_RETENTION_AUDIT_DAYS": "Audit events older than this are deleted (0 keeps all).",
    "AICMO_RETENTION_HEALTH_DAYS": "Provider health history older than this is deleted.",
    "AICMO_RETENTION_EVENTS_DAYS": "Raw engagement events older than this are deleted once rolled up, for campaigns with no newer event (0 keeps all); daily rollups are kept.",
    "AICMO_RETENTION_WEBHOOKS_SUCCEEDED_DAYS": "Outbound webhook deliveries that succeeded are deleted this many days after they finished (0 keeps all).",
    "AICMO_RETENTION_WEBHOOKS_FAILED_DAYS": "Outbound webhook deliveries that failed or were discarded are deleted this many days after they finished (0 keeps all).",
    "AICMO_PG_BINDIR": "Directory of `pg_dump`/`pg_restore` for backups; empty: PATH.",
    "AICMO_INVITATION_TTL_DAYS": "Days an invitation link stays valid.",
    "AICMO_INVITATION_MAILER": "Dotted path of the function mailing invitations.",
    "PROMETHEUS_MULTIPROC_DIR": "Web only, with several gunicorn workers: empty writable directory for "
    "prometheus-client's multiprocess files.",
    "AICMO_REDIS_SERVER": "`make run` only: the redis-server binary to use.",
    "AICMO_REDIS_PORT": "`make run` only: port of the local Redis.",
    "PORT": "gunicorn: listening port.",
    "WEB_CONCURRENCY": "gunicorn: worker processes.",
    "WEB_THREADS": "gunicorn: threads per worker.",
    "WEB_TIMEOUT": "gunicorn: seconds before a silent worker is restarted.",
    "FORWARDED_ALLOW_IPS": "gunicorn: proxy addresses trusted for `X-Forwarded-*`.",
}


@dataclass(frozen=True)
class EnvRead:
    name: str
    kind: str  # str, int, bool, list, db, float
    default: str | None  # source text of the default, None when there is none
    source: str  # file it is read in


def _read_from_call(node: ast.Call, text: str, path: str) -> EnvRead | None:
    func = node.func
    if not node.args or not isinstance(node.args[0], ast.Constant) or not isinstance(node.args[0].value, str):
        return None
    name = node.args[0].value
    defaults = [kw.value for kw in node.keywords if kw.arg == "default"]
    # environ.Env: env("X"), env.str("X", default=...), env.db("X", default=...)
    if isinstance(func, ast.Name) and func.id == "env":
        kind = "str"
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "env":
        if func.attr in {"read_env"}:
            return None
        kind = func.attr
    # os.environ.get("X", d) / os.getenv("X", d)
    elif isinstance(func, ast.Attribute) and ast.unparse(func) in {"os.environ.get", "os.getenv"}:
        kind = "str"
        defaults = node.args[1:2]
    else:
        return None
    default = ast.get_source_segment(text, defaults[0]) if defaults else None
    return EnvRead(name=name, kind=kind, default=default, source=path)


def env_reads() -> dict[str, EnvRead]:
    """Every environment variable the sources read, first read wins (name → EnvRead)."""
    out: dict[str, EnvRead] = {}
    for rel in SOURCES:
        text = (ROOT / rel).read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call):
                read = _read_from_call(node, text, rel)
                if read is not None and read.name != "DJANGO_SETTINGS_MODULE":
                    out.setdefault(read.name, read)
    return out


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def render_table() -> str:
    reads = env_reads()
    lines = ["| variable | type | default | read in | meaning |", "|---|---|---|---|---|"]
    for name in sorted(reads):
        read = reads[name]
        default = "—" if read.default is None else f"`{_cell(read.default)}`"
        meaning = DESCRIPTIONS.get(name, "**UNDOCUMENTED**")
        lines.append(f"| `{name}` | {read.kind} | {default} | `{read.source}` | {_cell(meaning)} |")
    return "\n".join(lines)


def doc_with_table(doc: str) -> str:
    """``doc`` with the text between the markers replaced by the current table (ValueError: no markers)."""
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    return doc[:start] + "\n" + render_table() + "\n" + doc[end:]
