# hookshield developer commands. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUNTIME := $(VENV)/.runtime
# The suite also runs on the other supported Django LTS, and on Django 6.0 and 6.1 (which the
# requirement admits and which need Python 3.12+), each in a virtualenv of its own.
VENV42  ?= .venv-django42
STAMP42 := $(VENV42)/.installed
DJANGO6 := 60 61
STAMPS6 := $(foreach v,$(DJANGO6),.venv-django$(v)/.installed)

.PHONY: install test lint typecheck unit unit-postgresql unit-django42 $(DJANGO6:%=unit-django%) demo bench clean

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

# .venv-django60 holds Django 6.0.x, .venv-django61 Django 6.1.x.
$(STAMPS6): .venv-django6%/.installed: pyproject.toml
	test -x $(@D)/bin/python || { py=$$(tools/python312) \
	    || { echo "Django 6 needs Python 3.12 or newer, and none was found" >&2; exit 1; }; \
	    "$$py" -m venv $(@D); }
	$(@D)/bin/python -m pip install --quiet --upgrade pip
	$(@D)/bin/python -m pip install --quiet -e '.[dev]' "django>=6.$*,<6.$$(($*+1))"
	touch $@

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

# Without a Python 3.12+ the Django 6 runs are skipped, saying so; CI (HOOKSHIELD_REQUIRE_SERVICES=1)
# fails instead. (The suite runs on a line of its own, which `make -n` only prints: a line with
# $(MAKE) in it runs even then.)
$(DJANGO6:%=unit-django%): unit-django6%:
	@if tools/python312 >/dev/null; then \
	    $(MAKE) --no-print-directory .venv-django6$*/.installed; \
	elif [ "$${HOOKSHIELD_REQUIRE_SERVICES:-}" = 1 ]; then \
	    echo "$@: Django 6.$* needs Python 3.12 or newer, and none was found" >&2; exit 1; \
	else \
	    echo "$@ SKIPPED: Django 6.$* needs Python 3.12 or newer, and none was found"; \
	fi
	@if tools/python312 >/dev/null; then .venv-django6$*/bin/pytest -q; fi

test: lint typecheck unit unit-postgresql unit-django42 $(DJANGO6:%=unit-django%)  ## lint, type checks, the suite on Django 5.2 (SQLite, PostgreSQL), 4.2, 6.0 and 6.1

$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[cli]'
	touch $(RUNTIME)

demo: $(RUNTIME)  ## throwaway PKI, mTLS server, the naive and the shielded webhook scanned
	$(BIN)/hookshield demo

bench: install  ## in-process overhead, the memory window, Redis round trips, throughput through nginx + gunicorn, a full scan (needs nginx, Redis)
	$(BIN)/python bench/guard_overhead.py
	$(BIN)/python bench/memory_window.py
	$(BIN)/python bench/redis_round_trips.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/scan_speed.py

clean:
	rm -rf $(VENV) $(VENV42) $(DJANGO6:%=.venv-django%) .mypy_cache .ruff_cache .pytest_cache .hypothesis build src/*.egg-info
