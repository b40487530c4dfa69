# The two commands: `make demo` and `make test`. Both set themselves up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
SCENARIO ?= scenarios/sample.json
OUT ?= demo-out
PYTEST_ARGS ?=
WAVE_ARGS ?=

.PHONY: setup test lint types pytest demo bench bench-waves clean

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

setup: $(STAMP) $(NODE_STAMP) $(CHECKOV_STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(STAMP)
	$(VENV)/bin/mypy .

pytest: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test: setup lint types pytest

demo: $(STAMP) $(NODE_STAMP)
	$(PY) -m devhost.demo --scenario $(SCENARIO) --out $(OUT)

bench: setup
	$(PY) -m pytest benchmarks --benchmark-only -o python_files="bench_*.py" -o testpaths=benchmarks

# Generated waves of 200 and 1,000 deployments through the demo (minutes; docs/performance.md, issue 10).
bench-waves: $(STAMP) $(NODE_STAMP)
	$(PY) -m benchmarks.wave_bench $(WAVE_ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules demo-out .mypy_cache .ruff_cache
