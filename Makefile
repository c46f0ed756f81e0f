# nova-audit: every install step the project needs lives here.
# `make demo` and `make test` work on a fresh machine and are idempotent.

SHELL      := /bin/bash
PYTHON     ?= python3
VENV       := .venv
TOOLS_VENV := .tools-venv
UV         := $(PYTHON) -m uv
NOVA_VERSION      := 34.0.0
PLACEMENT_VERSION := 16.0.0
CINDER_VERSION    := 29.0.0
PYTEST_ARGS ?=

export NOVA_AUDIT_TOOLS_VENV := $(CURDIR)/$(TOOLS_VENV)

.PHONY: demo demo-down test lint install tools sysdeps mariadb rabbitmq postgres-redis chromium clean uv bench-map-instances bench-heal-allocations bench-archive bench-scale bench-replica-guard faults

# A running Airflow and test bed with drift found and healed (README "Quick start").
demo: install tools mariadb rabbitmq postgres-redis
	$(VENV)/bin/python -m testbed.demo

demo-down: install
	$(VENV)/bin/python -m testbed.demo down

# Three pytest processes side by side (tests/split_run.py); `pytest` alone runs the same suite.
test: install tools mariadb rabbitmq postgres-redis chromium
	$(VENV)/bin/python -m tests.split_run $(PYTEST_ARGS)

# Side-by-side benchmarks against nova-manage (see benchmarks/README.md); not part of `make test`.
bench-map-instances: install tools mariadb
	$(VENV)/bin/python -m benchmarks.map_instances --instances 100000

bench-archive: install tools mariadb
	$(VENV)/bin/python -m benchmarks.archive

bench-heal-allocations: install tools mariadb
	$(VENV)/bin/python -m benchmarks.heal_allocations

bench-replica-guard: install
	$(VENV)/bin/python -m benchmarks.replica_guard

# Growth curves of every task, 10k-300k instances over 10 and 30 cells (hours at full size;
# BENCH_SCALE_ARGS="--sizes 10000,30000 --cells 10 --skip-nova-manage" for a quick run).
BENCH_SCALE_ARGS ?=
bench-scale: install tools mariadb
	$(VENV)/bin/python -m benchmarks.scale $(BENCH_SCALE_ARGS)

# The fault matrix (fault kind x writing task) with its figures; the assertions are in `make test`.
faults: install tools mariadb rabbitmq
	$(VENV)/bin/python -m benchmarks.faults

lint: install
	$(VENV)/bin/ruff check nova_audit_ops dags testbed tests benchmarks
	$(VENV)/bin/ruff format --check nova_audit_ops dags testbed tests benchmarks
	$(VENV)/bin/mypy

install: $(VENV)/.installed
tools: $(TOOLS_VENV)/.installed

# Debian packages mysqlclient needs to compile (no Linux wheels exist).
sysdeps: .sysdeps.stamp
.sysdeps.stamp:
	@if ! dpkg -s pkg-config libmariadb-dev build-essential >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    build-essential pkg-config libmariadb-dev mariadb-client; fi
	@touch $@

# tests/dags/test_scheduler.py (the nova-audit page): Debian's headless browser and its WebDriver (selenium drives them).
chromium:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

uv:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv

# Byte-compiled once: the environment sets PYTHONDONTWRITEBYTECODE, and without .pyc files
# every `airflow` process (tests and demo start hundreds) recompiles Airflow: 6.7 s against 2.8 s
# for `airflow version`; the full suite took 17.5 min without them, 13.6 min with them.
$(VENV)/.installed: pyproject.toml .sysdeps.stamp | uv
	test -x $(VENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(VENV)/bin/python -e '.[dev]'
	env -u PYTHONDONTWRITEBYTECODE $(VENV)/bin/python -m compileall -q -j0 $(VENV)/lib >/dev/null 2>&1 || true
	@touch $@

# Nova and Placement themselves, in their own virtualenv: the test bed runs their
# migrations, their WSGI app and nova-manage from here, never from the project's venv.
# gunicorn serves the WSGI apps (Placement, nova-api, cinder-api); cinder-volume runs the
# fake driver shipped in cinder.tests, which needs `fixtures`; the tool venv is byte-compiled once because
# the environment sets PYTHONDONTWRITEBYTECODE (each nova-manage would recompile Nova).
# `--python` pins the target: `python -m uv` otherwise prefers the interpreter running it.
$(TOOLS_VENV)/.installed: Makefile | uv
	test -x $(TOOLS_VENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(TOOLS_VENV)
	VIRTUAL_ENV=$(CURDIR)/$(TOOLS_VENV) $(UV) pip install --quiet --python $(TOOLS_VENV)/bin/python \
	  nova==$(NOVA_VERSION) openstack-placement==$(PLACEMENT_VERSION) cinder==$(CINDER_VERSION) \
	  fixtures PyMySQL gunicorn
	env -u PYTHONDONTWRITEBYTECODE $(TOOLS_VENV)/bin/python -m compileall -q -j0 $(TOOLS_VENV)/lib >/dev/null 2>&1 || true
	@touch $(TOOLS_VENV)/.testbed-compiled $@

# The test suite's Nova databases live in MariaDB on 127.0.0.1:3306.
mariadb:
	@if ! mariadb-admin --protocol=tcp -h127.0.0.1 -uroot ping >/dev/null 2>&1; then \
	  command -v mariadbd >/dev/null || command -v /usr/sbin/mariadbd >/dev/null || \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server); \
	  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd; \
	  for i in $$(seq 60); do mariadb-admin --protocol=tcp -h127.0.0.1 -uroot ping >/dev/null 2>&1 && break; sleep 1; done; \
	fi
	@mariadb-admin --protocol=tcp -h127.0.0.1 -uroot ping

# The test bed's cinder-volume talks to cinder-api over RabbitMQ (oslo.messaging RPC).
rabbitmq:
	@if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then \
	  command -v rabbitmq-server >/dev/null || \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server); \
	  service rabbitmq-server start >/dev/null 2>&1 || rabbitmq-server -detached >/dev/null 2>&1 || true; \
	  for i in $$(seq 90); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 1; done; \
	fi
	@(exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null || \
	  (echo "RabbitMQ does not answer on 127.0.0.1:5672; the test bed's cinder-volume needs it"; exit 1)

# tests/dags/test_celery.py: Airflow's production shape, PostgreSQL metadata DB + Redis broker.
postgres-redis:
	@(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null || service postgresql start >/dev/null 2>&1 || true
	@(exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null || service redis-server start >/dev/null 2>&1 || true
	@for i in $$(seq 60); do (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && \
	  (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 1; done
	@(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null || \
	  (echo "PostgreSQL does not answer on 127.0.0.1:5432 (tests/dags/test_celery.py)"; exit 1)
	@(exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null || \
	  (echo "Redis does not answer on 127.0.0.1:6379 (tests/dags/test_celery.py)"; exit 1)

clean:
	rm -rf $(VENV) $(TOOLS_VENV) .sysdeps.stamp
