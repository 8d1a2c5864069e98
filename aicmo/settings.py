"""AICMO settings, read from the environment (12-factor).

Development and the embedded demo (`make run`, the test suite) set ``AICMO_ENV=dev``; anything else is
production, where every secret must be provided explicitly and the process refuses to start without it.
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from aicmo.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

AICMO_ENV = env.str("AICMO_ENV", default="production")
DEV = AICMO_ENV in {"dev", "test"}
TESTING = AICMO_ENV == "test" or "pytest" in sys.modules

# Off unless asked for (DEBUG=1), in `make run` too: people using the demo get the product's own 404/403/500
# pages, not Django's technical ones (static files come from WhiteNoise's finders in dev, not from DEBUG).
DEBUG = env.bool("DEBUG", default=False)


def _secret(name: str) -> str:
    """Secrets have no production default: fail loudly unless we are in dev/test."""
    value = env.str(name, default="")
    if value:
        return value
    if DEV or TESTING:
        return "dev-insecure-" + name.lower() + "-" + secrets.token_hex(8)
    raise ImproperlyConfigured(f"{name} must be set in production (AICMO_ENV={AICMO_ENV!r}).")


SECRET_KEY = env.str("SECRET_KEY", default="") or (
    "dev-insecure-only-for-local-demo-and-tests-0123456789abcdefghijklmnop" if (DEV or TESTING) else ""
)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set in production.")

# Old signing keys still accepted for sessions/signed values while a rotation settles (newest SECRET_KEY signs).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

# Fernet keys (comma-separated, newest first) encrypting provider credentials at rest; rotatable.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if not FIELD_ENCRYPTION_KEYS:
    if DEV or TESTING:
        FIELD_ENCRYPTION_KEYS = ["ZGV2LW9ubHktZmllbGQta2V5LWRvLW5vdC11c2UtcHI="]
    else:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must be set in production.")

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"] if DEV or TESTING else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "aicmo",
    "gateway",
    "crm",
    "media",
    "publishing",
    "analytics",
]

MIDDLEWARE = [
    "aicmo.health.OpsEndpointsMiddleware",  # /healthz, /readyz, /metrics: before host checks and redirects
    "aicmo.metrics.MetricsMiddleware",
    "aicmo.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "aicmo.twofactor.TwoFactorMiddleware",
    "aicmo.tenancy.WorkspaceMiddleware",
    "aicmo.timezones.TimeZoneMiddleware",  # after the workspace: its zone is the reader's default
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "aicmo.dblocks.DatabaseLockedMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into the 429 page
]

ROOT_URLCONF = "aicmo.urls"
WSGI_APPLICATION = "aicmo.wsgi.application"
ASGI_APPLICATION = "aicmo.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "aicmo.tenancy.workspace_context",
            ],
        },
    },
]

VAR_DIR = Path(env.str("AICMO_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'aicmo.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web server and Celery worker share the embedded database. Transactions
    # start IMMEDIATE (take the write lock at BEGIN, waiting up to the busy timeout): a deferred transaction
    # that read first and then writes cannot wait once another writer committed since its read, and SQLite
    # answers "database is locked" at once, whatever the timeout (https://www.sqlite.org/lang_transaction.html).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    if TESTING:
        # A file, not SQLite's shared-cache memory database: live Celery workers and servers run in threads
        # next to the test, and shared-cache table locks ("database table is locked") ignore the busy
        # timeout, while a WAL file database lets readers and one writer proceed together.
        # One file per test process (the pid), so two pytest runs in one checkout do not share — and break
        # — each other's database; Django deletes it when the run ends (`make clean` removes strays).
        DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

if TESTING:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
MEDIA_URL = "/media-files/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# User files (media assets, renditions, imports, exports): local disk by default; any S3-compatible
# object store (AWS S3, MinIO, Ceph, R2…) with AICMO_STORAGE=s3 and the AWS_* variables below.
AICMO_STORAGE = env.str("AICMO_STORAGE", default="local")


def s3_storage_options() -> dict:
    return {
        "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
        "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
        "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
        "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
        "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
        "location": env.str("AWS_LOCATION", default=""),
        # Private by default: files are served through our views or short-lived signed URLs.
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": env.int("AWS_QUERYSTRING_EXPIRE", default=600),
        "file_overwrite": False,
    }


if AICMO_STORAGE == "s3":
    _default_storage = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3_storage_options()}
elif AICMO_STORAGE == "local":
    _default_storage = {"BACKEND": "aicmo.storage.LocalStorage"}  # all-or-nothing writes, 507 when full
else:
    raise ImproperlyConfigured(f"AICMO_STORAGE must be 'local' or 's3', not {AICMO_STORAGE!r}.")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEV or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEV or TESTING
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Login brute force (django-axes): after AXES_FAILURE_LIMIT failed logins for one username (from any
# address), or from one client address (for any usernames), further logins there answer 429 until
# AXES_COOLOFF_TIME has passed since the last failure; a successful login resets the count.
AUTHENTICATION_BACKENDS = [
    "aicmo.loginguard.LoginAttemptBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "aicmo.loginguard.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# TOTP two-factor (django-otp): the issuer shown in authenticator apps.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="AICMO")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Security: safe production defaults, relaxed only for local dev/test over plain HTTP.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not (DEV or TESTING))
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not (DEV or TESTING))
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not (DEV or TESTING))
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEV or TESTING else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not (DEV or TESTING)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not (DEV or TESTING))
# BEHIND_PROXY: a reverse proxy we run terminates TLS and appends X-Forwarded-For / -Proto; only then are
# those headers believed, and only the last TRUSTED_PROXY_COUNT hops of X-Forwarded-For (aicmo/loginguard.py).
BEHIND_PROXY = env.bool("BEHIND_PROXY", default=False)
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp 4.x): scripts only from our origin — no inline scripts or event
# handlers (page behaviour lives in static/aicmo/app.js), no eval. Styles keep 'unsafe-inline' for
# style="…" attributes (the job progress bar's width is data); styles cannot run code. No framing at all.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="aicmo@localhost")

# Public base URL used in links we send out (tracking pixels, unsubscribe links, webhooks).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")

# Email campaigns: a worker's claim on a batch of recipients lapses after this many seconds without
# progress (its worker is taken for dead); a schedule missed by more than the grace waits for a person.
PUBLISHING_CLAIM_LEASE_SECONDS = env.int("PUBLISHING_CLAIM_LEASE_SECONDS", default=120)
PUBLISHING_SEND_BATCH_SIZE = env.int("PUBLISHING_SEND_BATCH_SIZE", default=50)
PUBLISHING_SEND_CONCURRENCY = env.int("PUBLISHING_SEND_CONCURRENCY", default=2)
PUBLISHING_MISSED_GRACE_SECONDS = env.int("PUBLISHING_MISSED_GRACE_SECONDS", default=15 * 60)
PUBLISHING_SOFT_BOUNCE_LIMIT = env.int("PUBLISHING_SOFT_BOUNCE_LIMIT", default=3)
PUBLISHING_CONVERSION_WINDOW_DAYS = env.int("PUBLISHING_CONVERSION_WINDOW_DAYS", default=7)
PUBLISHING_REPLY_LOOKBACK_DAYS = env.int("PUBLISHING_REPLY_LOOKBACK_DAYS", default=7)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "aicmo.apikeys.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bodies only, unless a view takes uploads (imports, media assets) and says so: a JSON field sent
    # form-encoded ("null" as text) would otherwise skip the JSON validation that the schema documents.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "aicmo.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "aicmo.api.filters.DjangoFilterBackend",
        "aicmo.api.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "aicmo.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "aicmo.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_THROTTLE_USER", default="10000/hour" if TESTING else "3000/hour"),
        "anon": env.str("API_THROTTLE_ANON", default="1000/hour" if TESTING else "100/hour"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "AICMO API",
    "DESCRIPTION": "Marketing operations: contacts, enrichment, publishing, analytics and media.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Group operations by area (crm, media, gateway, jobs, …) rather than one "v1" bucket.
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Two apps name a choice set "channel": crm's suppression channels and publishing's content channels.
    "ENUM_NAME_OVERRIDES": {
        "SuppressionChannelEnum": "crm.models.Channel",
        "ContentChannelEnum": "publishing.models.Channel",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "aicmo.api.schema.add_error_responses",
    ],
}

# Celery: JSON only, late acks so a lost worker's task is redelivered, bounded run time.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://" if TESTING else REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="cache+memory://" if TESTING else REDIS_URL)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
# With Redis, an unacknowledged (acks_late) task is redelivered after the visibility timeout; it must
# exceed the longest task ETA/countdown plus its run time, so it is set above the hard time limit.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=2 * 60 * 60)
}
CELERY_RESULT_EXPIRES = timedelta(days=1)
# Queues, one worker pool each in production (docs/OPERATIONS.md, "Queues and worker pools"), so a
# million-recipient send cannot starve enrichment or the dashboard's rollups. A worker started without
# `-Q` consumes every queue listed here (that is what `make run` does). Routes are glob patterns on task
# names, first match wins; a task that matches none goes to `default`.
AICMO_QUEUES = ("default", "sending", "tracking", "enrichment", "imports", "rollups", "media", "webhooks")
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in AICMO_QUEUES]
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_TASK_ROUTES = [
    {
        "publishing.tasks.webhook_*": {"queue": "webhooks"},
        "crm.tasks.*enrich*": {"queue": "enrichment"},
        "crm.tasks.*run_lane*": {"queue": "enrichment"},
        "crm.tasks.*import*": {"queue": "imports"},
        "media.tasks.*": {"queue": "media"},
        "publishing.*track*": {"queue": "tracking"},
        "publishing.*flush*": {"queue": "tracking"},
        "publishing.*send*": {"queue": "sending"},
        "analytics.*": {"queue": "rollups"},
    }
]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every task (aicmo.celery.Task) retries a write that found SQLite's lock taken: at most `max_retries`
# times, waiting about base_delay * 2**n seconds (capped at max_delay, with jitter) before retry n + 1.
AICMO_DB_LOCKED_RETRY = {
    "max_retries": env.int("AICMO_DB_LOCKED_MAX_RETRIES", default=8),
    "base_delay": env.float("AICMO_DB_LOCKED_BASE_DELAY", default=1.0),
    "max_delay": env.float("AICMO_DB_LOCKED_MAX_DELAY", default=60.0),
}

# A task whose worker process died (acks_late + reject_on_worker_lost re-queue it) runs at most this many
# times; the next delivery is refused and its job marked failed (aicmo/deliveries.py).
AICMO_TASK_MAX_DELIVERIES = env.int("AICMO_TASK_MAX_DELIVERIES", default=3)

# Logs: one JSON object per line in production (structlog), with request/task ids (aicmo/logs.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEV or TESTING else "json")
LOGGING = logging_config(level=env.str("LOG_LEVEL", default="INFO"), fmt=LOG_FORMAT)

# Errors to Sentry (or a compatible server such as GlitchTip) when a DSN is given; off otherwise.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    import sentry_sdk

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=AICMO_ENV,
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        send_default_pii=False,
    )

# Prometheus scrapes of /metrics (aicmo/metrics.py): a bearer token, or a source address in these networks.
AICMO_METRICS_TOKEN = env.str("AICMO_METRICS_TOKEN", default="")
AICMO_METRICS_ALLOWED_NETWORKS = env.list(
    "AICMO_METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"]
)
# Dotted paths: functions yielding extra prometheus metric families (e.g. analytics' rollup lag).
AICMO_METRICS_SOURCES = env.list("AICMO_METRICS_SOURCES", default=[])
# Fleet-wide provider status (breakers, success, latency) for /metrics and the operations page.
AICMO_PROVIDER_STATUS = env.str("AICMO_PROVIDER_STATUS", default="gateway.ops.provider_status")
# Retention (aicmo/retention.py): prune functions run every 6 hours by beat and by `manage.py prune_history`.
AICMO_RETENTION_JOBS_DAYS = env.int("AICMO_RETENTION_JOBS_DAYS", default=90)
AICMO_RETENTION_AUDIT_DAYS = env.int("AICMO_RETENTION_AUDIT_DAYS", default=365)
AICMO_RETENTION_HEALTH_DAYS = env.int("AICMO_RETENTION_HEALTH_DAYS", default=30)
AICMO_RETENTION_EVENTS_DAYS = env.int("AICMO_RETENTION_EVENTS_DAYS", default=730)
AICMO_RETENTION_WEBHOOKS_SUCCEEDED_DAYS = env.int("AICMO_RETENTION_WEBHOOKS_SUCCEEDED_DAYS", default=30)
AICMO_RETENTION_WEBHOOKS_FAILED_DAYS = env.int("AICMO_RETENTION_WEBHOOKS_FAILED_DAYS", default=90)
AICMO_RETENTION = [
    "aicmo.retention.prune_jobs",
    "aicmo.retention.prune_audit",
    "gateway.ops.prune_health",
    "publishing.retention.prune_events",
    "publishing.retention.prune_webhook_deliveries",
]
# {workspace id: highest engagement event id rolled up}: raw events are pruned only below it.
PUBLISHING_EVENTS_ROLLED_UP = "analytics.rollups.events_rolled_up"
# Told (workspace id, cut-off) before raw events are pruned: analytics stops rebuilding older days.
PUBLISHING_EVENTS_PRUNED = "analytics.rollups.events_pruned"
# Called with a workspace id after its time zone changed (aicmo/timezones.py).
AICMO_WORKSPACE_ZONE_CHANGED = ["analytics.rollups.workspace_zone_changed"]
# What outside crm uses a segment or a list (crm.usage): deleting one in use is refused, naming the users.
CRM_USAGE_PROVIDERS = {
    "segment": ["publishing.selectors.campaigns_using_segment"],
    "list": ["publishing.selectors.campaigns_using_list"],
}
# Backups (manage.py backup / restore): directory of pg_dump/pg_restore; empty means PATH.
AICMO_PG_BINDIR = env.str("AICMO_PG_BINDIR", default="")
# Failed jobs an operator may retry from the operations page: job kind → function(job=, by=) -> new Job.
AICMO_JOB_RETRY = {
    "audit_export": "aicmo.exports.audit_export_retry",
    "crm.enrichment": "crm.services.runs.run_retry",
    "crm.verification": "crm.services.runs.run_retry",
}
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

# Outbound destinations given by users (provider base URLs, SMTP/IMAP servers, webhook URLs) never reach
# loopback, private or metadata addresses, in every profile. The one exception is this operator allow-list
# of exact loopback host:port pairs ("127.0.0.1:1025", "[::1]:1025", "localhost:1025" = both), e.g. a local
# mail catcher; tests add the ports of their local servers. The demo's providers run in-process and need
# none, so it is empty in every profile unless the environment says otherwise.
GATEWAY_LOOPBACK_ALLOW = env.list("AICMO_GATEWAY_LOOPBACK_ALLOW", default=[])

# Workspace invitations: how long a link stays valid, and the function that mails it. The mailer is a
# dotted path resolved when a mail goes out, because the core must not import the gateway (which sits
# above it); the default sends through the workspace's `send_email` provider chain.
AICMO_INVITATION_TTL_DAYS = env.int("AICMO_INVITATION_TTL_DAYS", default=7)
AICMO_INVITATION_MAILER = env.str("AICMO_INVITATION_MAILER", default="gateway.services.send_plain_email")

# Password reset mails go through the same provider chain (see aicmo/password_reset.py); links last 1 day.
AICMO_PASSWORD_RESET_MAILER = env.str(
    "AICMO_PASSWORD_RESET_MAILER", default="gateway.services.send_plain_email"
)
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=24 * 3600)
