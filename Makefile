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

run: install  ## migrate and start every process; Ctrl-C stops them
	$(PY) -m services.run

test: install  ## the whole suite (PostgreSQL and RabbitMQ too where they answer; required with CI=true)
	$(PY) -m pytest -n auto --dist loadfile $(PYTEST_ARGS)

bench: install  ## benchmarks; figures go to docs/performance.md
	$(PY) -m bench

migrate: install
	$(PY) -m services.identity migrate && $(PY) -m services.tenancy migrate && $(PY) -m services.notifier migrate

clean:
	rm -rf $(VENV) var
