# covidnews developer entry points. `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= dev

.PHONY: setup system-deps demo test test-fast lint format bench lock clean

setup: $(STAMP)  ## create .venv with the covidnews command (quick when nothing changed)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 needed")'
	@echo "setting up $(VENV) (pip install -e '.[$(EXTRAS)]'; a few minutes the first time)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	@touch $(STAMP)

system-deps:  ## the distribution packages the demo and the tests need (scripts/install-system-deps)
	@scripts/install-system-deps test

demo:  ## offline, end to end: demo news site → crawl → NLP → archive + API on http://127.0.0.1:8000
	@scripts/install-system-deps demo
	@$(MAKE) --no-print-directory setup
	@$(BIN)/covidnews demo --serve --api-port $(or $(DEMO_PORT),8000)

lint: setup  ## ruff (lint + format check), mypy and the layer contracts (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test:  ## system packages, lint, then the whole suite (starts its own PostgreSQL/Redis if none runs)
	@scripts/install-system-deps test
	@$(MAKE) --no-print-directory lint
	COVIDNEWS_TEST_STRICT=1 $(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not slow"

bench: setup  ## every benchmark; each prints one JSON object
	@set -e; for script in bench/bench_*.py; do echo "# $$script" >&2; $(PY) $$script; done

lock:  ## re-pin constraints.txt from a clean resolve of pyproject.toml
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -e '.[dev]'
	{ echo "# Pinned versions for a reproducible install: pip install -c constraints.txt -e '.[dev]'"; \
	  echo "# Regenerate with 'make lock' after changing dependencies in pyproject.toml."; \
	  .venv-lock/bin/pip freeze --exclude-editable | grep -v '^-e'; } > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
