# EventHub: `make run` starts the app, `make test` runs the whole suite.
# Only Python 3.11+ and make are needed; everything else is installed here.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: install dev run test test-postgres test-kafka lint bench browser redis postgresql java in-order screenshots clean help

help:
	@echo "make run      start EventHub at http://$(HOST):$(PORT) with demo data and live traffic"
	@echo "make test     install what the tests need, start Redis and a broker per worker, run every test"
	@echo "make test-postgres  the database tests again, on a private PostgreSQL"
	@echo "make test-kafka     the bus-facing tests again, on Apache Kafka 4 (Java 17+ and Maven)"
	@echo "make install  only build $(VENV)"
	@echo "make lint     ruff"
	@echo "make bench    benchmarks (ratios against the raw clients) -> var/bench.json"

# Packages go in with uv (pinned, itself installed by pip): it downloads in parallel, three
# times faster than pip on a fresh machine; bytecode is compiled at install, as pip does.
UV_VERSION := 0.13.8
UV := $(PY) -m uv pip install --quiet --python $(PY) --compile-bytecode

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "EventHub needs Python 3.11 or newer (found %s)" % sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m uv --version >/dev/null 2>&1 || $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(UV) -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

run: install redis
	$(PY) -m eventhub.launcher

# What the tests need from Debian is installed when missing: as root with apt-get,
# otherwise the one command to run is printed. $(call apt,TEST,PACKAGES,WHAT FOR)
# The package lists are refreshed once per half hour (var/apt-updated), not once per package.
define apt
@$(1) || { \
  if [ "$$(id -u)" = 0 ]; then \
    echo "installing $(2) for $(3)"; \
    { [ -n "$$(find var/apt-updated -mmin -30 2>/dev/null)" ] || { apt-get update -qq && mkdir -p var && touch var/apt-updated; }; } && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null || exit 1; \
  else \
    echo "missing $(2), for $(3): sudo apt-get install -y $(2)"; exit 1; \
  fi; }
endef

# $(call prepare,VENV TARGET,OTHER TARGETS): the venv builds while the other targets are made
# one after the other (apt-get holds a lock; mvn needs java): about 10 s less on a fresh machine.
define prepare
@$(MAKE) --no-print-directory -j2 $(1) in-order IN_ORDER="$(2)"
endef

in-order:
	@for target in $(IN_ORDER); do $(MAKE) --no-print-directory $$target || exit 1; done

# Browser tests drive Debian's Chromium through Playwright (never `playwright install`).
browser:
	$(call apt,test -x /usr/bin/chromium,chromium chromium-driver,the browser tests)

redis:
	$(call apt,command -v redis-server >/dev/null,redis-server,Celery and live updates and the tests)

postgresql:
	$(call apt,ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1,postgresql,make test-postgres)

java:
	$(call apt,command -v java >/dev/null && command -v mvn >/dev/null,openjdk-17-jre-headless maven,make test-kafka)

# Workers of their own (pytest-xdist) with a Redis database and a broker each; most of the
# suite waits on brokers, sockets and browsers, so five share two cores well (four left
# a fifth of the two cores idle). Whole files go to one worker: their module fixtures
# (a live app, a browser) are set up once.
TEST_WORKERS ?= 5
XDIST := -n $(TEST_WORKERS) --dist loadfile
# The suite starts many Python processes (apps, workers, loops): let them reuse compiled
# bytecode even where the environment says not to write it (PYTHONDONTWRITEBYTECODE=1).
PYTEST := PYTHONDONTWRITEBYTECODE= $(PY) -m pytest

# The API sweep (tests/security/) sends every operation as every role in both. In depth it
# runs light here (10 drawn examples each) and full in test-postgres (the coverage phase's
# boundary and wrong-type cases, then 50 drawn examples), where the database refuses more
# (integers out of range, over-long text, NUL) and a 5xx is likelier: about 60 CPU-s of
# `make test`'s 600 less. EVENTHUB_FUZZ_DEPTH=full make test, or EVENTHUB_FUZZ_EXAMPLES, when set, win.
FUZZ_LIGHT := EVENTHUB_FUZZ_DEPTH=$${EVENTHUB_FUZZ_DEPTH:-light}

test:
	$(call prepare,dev,browser redis)
	$(FUZZ_LIGHT) $(PYTEST) $(XDIST) $(PYTEST_ARGS)

# The database tests again, on a private PostgreSQL cluster the harness makes with initdb
# (or on DATABASE_URL when set); browser, fault and scale-out tests ran in `make test`
# and are not database-specific.
test-postgres:
	$(call prepare,dev,redis postgresql)
	EVENTHUB_TEST_DATABASE=postgres $(PYTEST) $(XDIST) -m "not browser and not fault and not scaleout" $(PYTEST_ARGS)

# The bus-facing tests again, on Apache Kafka 4 (one KRaft broker per worker, jars from
# Maven Central through apache-kafka/pom.xml): the contract suite, the SDK, the collector,
# dead letters, redrive, fault and scale-out tests, and tests/kafka (a Java client's groups).
# Redis-only tests ran in `make test`.
KAFKA_TESTS := tests/bus tests/sdk tests/monitor tests/deadletters tests/eventstore tests/fault tests/scaleout tests/kafka
test-kafka:
	$(call prepare,dev,redis java var/apache-kafka.classpath)
	EVENTHUB_BROKER=apache-kafka $(PYTEST) $(XDIST) -k "not redis" $(KAFKA_TESTS) $(PYTEST_ARGS)

var/apache-kafka.classpath: apache-kafka/pom.xml
	@mkdir -p var
	mvn -q -B -f apache-kafka/pom.xml dependency:build-classpath -Dmdep.outputFile=$(CURDIR)/$@.tmp
	@mv $@.tmp $@

# The README's pictures, redrawn by the browser tests that take them.
screenshots: dev browser redis
	EVENTHUB_UPDATE_SCREENSHOTS=1 $(PYTEST) $(XDIST) -k "screenshot or catalog_search_compare or demo_shop_on_the_graph" tests/browser tests/e2e

lint: dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# BROKER=apache-kafka measures on Apache Kafka instead of the embedded Tansu.
BROKER ?= tansu
bench: dev redis $(if $(filter apache-kafka,$(BROKER)),java var/apache-kafka.classpath)
	EVENTHUB_BROKER=$(BROKER) $(PY) -m bench

clean:
	rm -rf $(VENV) var
