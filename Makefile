# GridCoin: install, run, test, benchmark.  `make help` lists the targets.
#
# .venv/ is the project's virtualenv.  `make run` needs no services; `make up` needs
# DATABASE_URL and REDIS_URL; `make test` uses whatever services the environment points at.

SHELL := /bin/bash

VENV   := .venv
PY     := $(VENV)/bin/python
PYTHON ?= $(shell command -v python3.11 || command -v python3)

# The stamp is keyed on the contents of requirements.txt, so a changed file reinstalls and
# an unchanged one costs nothing (mtimes change on every clone and checkout; contents do not).
REQ_HASH := $(shell sha256sum requirements.txt | cut -c1-16)
STAMP    := $(VENV)/.requirements-$(REQ_HASH)

RUN_ADDR          ?= 127.0.0.1:8000
PYTEST_ARGS       ?=
TEST_WORKERS      ?= 2
BENCH_ARGS        ?=
BENCH_DATABASE_URL = postgres://postgres@127.0.0.1:5432/gridcoin_bench

# The embedded default must not pick up a full-stack configuration from the caller's shell.
EMBEDDED := env -u DATABASE_URL -u REDIS_URL -u MQTT_URL

.DEFAULT_GOAL := help
.PHONY: help install run up test bench lint messages audit

help:
	@echo "make install   create .venv and install requirements.txt (skipped when up to date)"
	@echo "make run       embedded default: SQLite, no services, demo data, http://$(RUN_ADDR)"
	@echo "make up        full stack from the Procfile (needs DATABASE_URL and REDIS_URL)"
	@echo "make test      pytest in TEST_WORKERS (2) processes (extra arguments in PYTEST_ARGS)"
	@echo "make bench     benchmarks against PostgreSQL (DATABASE_URL, default $(BENCH_DATABASE_URL))"
	@echo "make lint      ruff check and mypy (django-stubs) on ledger/"
	@echo "make messages  refresh locale/{hi,es} from the marked texts and compile them (needs GNU gettext)"
	@echo "make audit     Lighthouse (mobile, system Chromium) on the demo: home, devices, a device, wallet"

install: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --disable-pip-version-check --quiet -r requirements.txt
	@rm -f $(VENV)/.requirements-*
	@touch $@

run: install
	$(EMBEDDED) GRIDCOIN_BACKGROUND_SEALER=0 GRIDCOIN_BACKGROUND_SCHEDULER=0 $(PY) manage.py migrate --noinput
	$(EMBEDDED) GRIDCOIN_BACKGROUND_SEALER=0 GRIDCOIN_BACKGROUND_SCHEDULER=0 $(PY) manage.py seed_demo --billing-days
	@echo "GridCoin on http://$(RUN_ADDR)/ (demo logins are listed on the home page; Ctrl-C stops)"
	$(EMBEDDED) GRIDCOIN_BACKGROUND_SEALER=1 GRIDCOIN_BACKGROUND_SCHEDULER=1 GRIDCOIN_BACKGROUND_WITNESSES=1 \
		GRIDCOIN_WITNESS_API=http://$(RUN_ADDR)/api/v1/ledger/ GRIDCOIN_WITNESS_QUORUM=$${GRIDCOIN_WITNESS_QUORUM:-2} \
		$(PY) manage.py runserver --noreload $(RUN_ADDR)

# honcho gives each process PORT = base + 100 * index; web is first in the Procfile, so it
# gets the base port: $PORT, or 8000.
up: install
	@test -n "$$DATABASE_URL" || { echo "make up: set DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/gridcoin" >&2; exit 1; }
	@test -n "$$REDIS_URL" || { echo "make up: set REDIS_URL, e.g. redis://127.0.0.1:6379/0" >&2; exit 1; }
	GRIDCOIN_BACKGROUND_SEALER=0 $(PY) manage.py migrate --noinput
	GRIDCOIN_BACKGROUND_SEALER=0 $(PY) manage.py collectstatic --noinput --verbosity 0
	@mkdir -p var
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PYTHONUNBUFFERED=1 GRIDCOIN_BACKGROUND_SEALER=0 \
		GRIDCOIN_WITNESS_API="$${GRIDCOIN_WITNESS_API:-http://127.0.0.1:$${PORT:-8000}/api/v1/ledger/}" \
		$(VENV)/bin/honcho start -f Procfile -p "$${PORT:-8000}"

# TEST_WORKERS parallel pytest processes (pytest-xdist); each has its own test database, Redis
# database and data directory (gridcoin/settings.py), and tests on the MQTT broker share one.
test: install
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The benchmark drops and recreates the database it is given, so it refuses any database whose
# name does not say "bench": an exported DATABASE_URL from `make up` must never be wiped.
bench: install
	@url="$${DATABASE_URL:-$(BENCH_DATABASE_URL)}"; \
	case "$${url##*/}" in \
	  *bench*) ;; \
	  *) echo "make bench drops and recreates its database; $$url is not named *bench*." >&2; \
	     echo "Unset DATABASE_URL (default $(BENCH_DATABASE_URL)) or point it at a bench database." >&2; \
	     exit 1 ;; \
	esac; \
	echo "benchmarks on $$url"; \
	DATABASE_URL="$$url" BENCH_REDIS_URL="$${BENCH_REDIS_URL-$${REDIS_URL:-}}" $(PY) bench/run.py $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The catalogues (locale/<lang>/LC_MESSAGES/django.po) and their compiled .mo files are committed,
# so running and testing need no gettext; after changing texts, run this, translate the new
# empty msgstrs, and run it again to compile.
messages: install
	@command -v msgfmt >/dev/null || { echo "make messages needs GNU gettext (apt-get install gettext)" >&2; exit 1; }
	$(EMBEDDED) $(PY) manage.py makemessages -l hi -l es --no-location --no-obsolete \
		--ignore=.venv --ignore=tests --ignore=bench --ignore=demo --ignore=staticfiles --ignore=node_modules
	$(EMBEDDED) $(PY) manage.py compilemessages -l hi -l es --ignore=.venv

# Lighthouse from the committed package-lock.json (npm ci, keyed on the lock file's contents like
# the virtualenv) against a demo server on a spare port (AUDIT_PORT to choose one); not part of
# `make test`. Needs Node 18.16+ and npm; Chromium from CHROME_PATH, default /usr/bin/chromium.
NODE_STAMP = node_modules/.lock-$(shell sha256sum package-lock.json | cut -c1-16)

$(NODE_STAMP): package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

audit: install $(NODE_STAMP)
	CHROME_PATH="$${CHROME_PATH:-/usr/bin/chromium}" $(PY) bench/lighthouse_audit.py
