# Everything a newcomer needs, from a machine with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test bench migrate clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	# setuptools and wheel first: the editable install below builds in this venv (no isolation), and
	# without them pip prints "invalid command 'bdist_wheel'" before falling back.
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=68" wheel
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

run: install  ## migrate and start every process; Ctrl-C stops them (mail links open the hosted pages)
	WEB_PUBLIC_URL=$${WEB_PUBLIC_URL:-http://127.0.0.1:$${WEB_PORT:-8000}} $(PY) -m services.run

.PHONY: lint test-fast
lint: install  ## ruff and mypy, as configured in pyproject.toml
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# One more test process than cores: much of the suite waits on servers, brokers and browsers, not the CPU.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 2) + 1 )))

test: install lint  ## the whole suite (PostgreSQL and RabbitMQ too where they answer; required with CI=true)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-fast: install  ## the quick loop: SQLite only, no broker, no server or other process
	$(PY) -m pytest -n auto --dist loadfile -m "not postgres and not rabbitmq and not slow and not live" $(PYTEST_ARGS)

bench: install  ## against fastapi-users and oidc-provider (installed into var/bench-peers/), < 10 min; writes docs/performance.md
	$(PY) -m bench

migrate: install
	$(PY) -m services.identity migrate && $(PY) -m services.tenancy migrate && $(PY) -m services.notifier migrate && $(PY) -m services.web migrate

clean:
	rm -rf $(VENV) var
