# AICMO: `make run` (local demo) and `make test` (everything CI checks). Needs only python3 >= 3.11.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.aicmo-installed
REDIS_PORT ?= 6379
WEB_ADDR ?= 127.0.0.1:8000
PYTEST_WORKERS ?= 2
CHROMIUM := $(or $(AICMO_CHROMIUM),$(wildcard /usr/bin/chromium),$(shell command -v chromium 2>/dev/null))

# pytest exits 5 when no test was collected: like any non-zero exit it fails the target.
# Tests never inherit a developer's database or Redis (from the environment or a .env file): SQLite in
# memory (tests/pgrun.py overrides DATABASE_URL for the PostgreSQL run), and a Redis URL nothing listens
# on, so code that should use the `redis_client` fixture fails the same way everywhere instead of quietly
# writing into a local `make run` Redis. The CELERY_* URLs are removed, not set: Celery prefers them
# over its configuration, and the test settings already use an in-memory broker.
TEST_ENV := env -u CELERY_BROKER_URL -u CELERY_RESULT_BACKEND -u CELERY_BROKER_READ_URL -u CELERY_BROKER_WRITE_URL \
	AICMO_ENV=test DATABASE_URL=sqlite://:memory: REDIS_URL=redis://127.0.0.1:1/0
PYTEST := $(TEST_ENV) $(BIN)/pytest

.PHONY: help venv run migrate seed test lint fmt check test-sqlite test-postgres test-browser bench audit clean clean-data
.NOTPARALLEL:
.DEFAULT_GOAL := help

help:
	@echo "make run     - set up .venv, migrate, seed the demo, start redis + celery worker + beat + web on http://$(WEB_ADDR)/"
	@echo "make test    - ruff, manage.py check, migrations check, tests on SQLite, on PostgreSQL, then browser tests"
	@echo "make audit   - pip-audit of requirements.txt (needs the network; a loud skip when offline)"
	@echo "make lint | fmt | check | test-sqlite | test-postgres | test-browser | bench | clean | clean-data"

# ---------------------------------------------------------------------------------------- environment
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "AICMO needs Python 3.11+; run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "venv failed (Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }

# Reinstall only when a requirements file changed (the stamp is newer than both otherwise).
$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $@

venv: $(STAMP)

# ------------------------------------------------------------------------------------------------ run
run: export AICMO_ENV := dev
run: export AICMO_REDIS_PORT := $(REDIS_PORT)
run: export REDIS_URL ?= redis://127.0.0.1:$(REDIS_PORT)/0
run: export AICMO_WEB_ADDR := $(WEB_ADDR)
run: export PYTHONUNBUFFERED := 1
# The demo workspace's SMTP account points at the local demo mail catcher (Procfile.dev `mail`); the
# gateway refuses loopback addresses unless allowed, so only this profile allows that one port.
run: export AICMO_GATEWAY_LOOPBACK_ALLOW := 127.0.0.1:1025
run: venv
	@mkdir -p var/redis
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo ">>> starting redis, the demo mail catcher, celery worker, celery beat and the web server on http://$(WEB_ADDR)/ (Ctrl-C stops all)"
	@echo ">>> caught mail: http://$(WEB_ADDR)/publishing/demo-outbox/ (staff)"
	$(BIN)/honcho -f Procfile.dev start || [ $$? -eq 130 ]  # 130: stopped with Ctrl-C

migrate: export AICMO_ENV := dev
migrate: venv
	$(BIN)/python manage.py migrate --noinput

seed: export AICMO_ENV := dev
seed: export AICMO_GATEWAY_LOOPBACK_ALLOW := 127.0.0.1:1025
seed: migrate
	$(BIN)/python manage.py seed_demo

# ----------------------------------------------------------------------------------------------- test
test: lint check test-sqlite test-postgres test-browser
	@echo ">>> make test: all phases passed"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: venv
	$(TEST_ENV) $(BIN)/python manage.py check --fail-level WARNING
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run

test-sqlite: venv
	@echo ">>> tests on SQLite"
	$(PYTEST) -n $(PYTEST_WORKERS) -m "not browser"

# The PostgreSQL phase runs the tests that reach a database (a test that reaches none gave its answer in
# the SQLite phase), and the `faults` tests (workers killed, Redis and PostgreSQL restarted), which run only
# here: their guarantees are stated for the production database. See tests/conftest.py.
test-postgres: venv
	@echo ">>> tests on PostgreSQL"
	$(TEST_ENV) $(BIN)/python tests/pgrun.py -- $(BIN)/pytest -n $(PYTEST_WORKERS) -m "not browser" --database-tests-only

test-browser: venv
ifeq ($(CHROMIUM),)
	@echo "##########################################################################################"
	@echo "##  BROWSER TESTS NOT RUN: no Chromium found (/usr/bin/chromium or chromium on PATH).     ##"
	@echo "##  Install it (Debian: apt-get install chromium) or set AICMO_CHROMIUM=/path/to/chromium. ##"
	@echo "##########################################################################################"
else
	@echo ">>> browser tests with $(CHROMIUM)"
	AICMO_CHROMIUM=$(CHROMIUM) $(PYTEST) -p no:xdist -m browser
endif

# ------------------------------------------------------------------------------------------- the rest
# Each script sets up its own throw-away database and services (see its docstring).
bench: venv
	@set -e; found=0; for f in bench/*.py; do [ -e "$$f" ] || continue; found=1; echo ">>> $$f"; $(BIN)/python "$$f"; done; \
	if [ $$found = 0 ]; then echo "no benchmarks in bench/"; fi

# Known vulnerabilities in the pinned runtime dependencies. Not part of `make test` (which never uses the
# network): fails on a finding not explained in docs/RELIABILITY.md, prints "NOT AUDITED" (exit 0) when the
# advisory service cannot be reached.
audit: venv
	$(TEST_ENV) $(BIN)/python manage.py audit_dependencies --requirements requirements.txt

# Build and tool artefacts only (and test databases a killed test run left in var/): keeps .venv and your
# local data in var/ (see clean-data).
clean:
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -print -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache staticfiles
	rm -f var/test-db-*.sqlite3*

clean-data:
	rm -rf var/
