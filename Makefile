# EventHub: `make run` starts the app, `make test` runs the whole suite.
# Only Python 3.11+ and make are needed; everything else is installed here.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: install dev run test test-fast test-postgres lint bench browser screenshots clean help

help:
	@echo "make run      start EventHub at http://$(HOST):$(PORT) with demo data and live traffic"
	@echo "make test     install test dependencies, start/reuse Redis and the broker, run every test"
	@echo "make install  only build $(VENV)"
	@echo "make lint     ruff"
	@echo "make bench    benchmarks (ratios against the raw clients) -> var/bench.json"

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "EventHub needs Python 3.11 or newer (found %s)" % sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

run: install
	$(PY) -m eventhub.launcher

# Browser tests drive Debian's Chromium through Playwright (never `playwright install`).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "browser tests need /usr/bin/chromium: sudo apt-get install chromium chromium-driver"; exit 1; \
	  fi; }

# Workers of their own (pytest-xdist) with a Redis database and a broker each; most of the
# suite waits on brokers, sockets and browsers, so four share two cores well. Whole files go
# to one worker: their module fixtures (a live app, a browser) are set up once.
TEST_WORKERS ?= 4
XDIST := -n $(TEST_WORKERS) --dist loadfile

test: dev browser
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

# The database tests again, on PostgreSQL (DATABASE_URL must point at a server);
# browser, fault and scale-out tests ran in `make test` and are not database-specific.
test-postgres: dev
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} $(PY) -m pytest $(XDIST) -m "not browser and not fault and not scaleout" $(PYTEST_ARGS)

# The README's pictures, redrawn by the browser tests that take them.
screenshots: dev browser
	EVENTHUB_UPDATE_SCREENSHOTS=1 $(PY) -m pytest $(XDIST) -k "screenshot or catalog_search_compare or demo_shop_on_the_graph" tests/browser tests/e2e

lint: dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: dev
	$(PY) -m bench

clean:
	rm -rf $(VENV) var
