# hookshield developer commands. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUNTIME := $(VENV)/.runtime
# The suite also runs on the other supported Django LTS, in a virtualenv of its own.
VENV42  ?= .venv-django42
STAMP42 := $(VENV42)/.installed

.PHONY: install test lint typecheck unit unit-postgresql unit-django42 demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install hookshield with its dev extras

$(STAMP42): pyproject.toml
	test -x $(VENV42)/bin/python || $(PYTHON) -m venv $(VENV42)
	$(VENV42)/bin/python -m pip install --quiet --upgrade pip
	$(VENV42)/bin/python -m pip install --quiet -e '.[dev]' 'django>=4.2.30,<5'
	touch $(STAMP42)

lint: install  ## ruff, and no function in src/ above cyclomatic complexity 12 (radon)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/python tools/complexity.py src --max 12

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

unit-postgresql: install  ## the database tests again, on the real PostgreSQL (127.0.0.1:5432)
	HOOKSHIELD_TEST_DATABASE=postgresql $(BIN)/pytest -q -m django_db

unit-django42: $(STAMP42)
	$(VENV42)/bin/pytest -q

test: lint typecheck unit unit-postgresql unit-django42  ## lint, type checks, the suite on Django 5.2 (SQLite, PostgreSQL) and 4.2

$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[cli]'
	touch $(RUNTIME)

demo: $(RUNTIME)  ## throwaway PKI, mTLS server, the naive and the shielded webhook scanned
	$(BIN)/hookshield demo

bench: install  ## in-process overhead, then throughput through nginx + gunicorn (needs nginx, Redis)
	$(BIN)/python bench/guard_overhead.py
	$(BIN)/python bench/redis_round_trips.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/scan_speed.py

clean:
	rm -rf $(VENV) $(VENV42) .mypy_cache .ruff_cache .pytest_cache .hypothesis build src/*.egg-info
