# AICMO image: web (gunicorn), Celery workers and beat all run from it (see docker-compose.yml and
# docs/OPERATIONS.md). Pinned requirements, non-root user, static files collected at build time.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    AICMO_ENV=production \
    AICMO_VAR_DIR=/var/lib/aicmo \
    MEDIA_ROOT=/var/lib/aicmo/media \
    STATIC_ROOT=/app/staticfiles

# postgresql-client: pg_dump/pg_restore for `manage.py backup` / `restore`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 aicmo \
    && useradd --system --uid 10001 --gid aicmo --home-dir /app --shell /usr/sbin/nologin aicmo

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY --chown=aicmo:aicmo . .

# collectstatic needs settings that import; these throw-away values exist only in this build step.
RUN SECRET_KEY=collectstatic-only-not-a-secret \
    FIELD_ENCRYPTION_KEYS=Y29sbGVjdHN0YXRpYy1vbmx5LW5vdC1hLXNlY3JldCE= \
    ALLOWED_HOSTS=localhost DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput \
    && rm -f /tmp/build.sqlite3 \
    && mkdir -p /var/lib/aicmo/media /var/lib/aicmo/prometheus \
    && chown -R aicmo:aicmo /var/lib/aicmo

USER aicmo
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
CMD ["gunicorn", "-c", "gunicorn.conf.py", "aicmo.wsgi"]
