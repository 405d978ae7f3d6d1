# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= python3
CLIENT := clients/python
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bench lint typecheck install dev clean screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The server depends on pendingtx-client: both are installed from this checkout in one pip call,
# so that the local client is the one that satisfies that dependency.
$(STAMP_RUN): pyproject.toml $(CLIENT)/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e $(CLIENT) -e .
	touch $@

$(STAMP_DEV): pyproject.toml $(CLIENT)/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e $(CLIENT) -e '.[dev]'
	touch $@ $(STAMP_RUN)

install: $(STAMP_RUN)
dev: $(STAMP_DEV)

run: $(STAMP_RUN)
	$(BIN)/pendingtx serve --host $(HOST) --port $(PORT)

test: $(STAMP_DEV)
	$(BIN)/python -m pytest

# Benchmarks are never part of `make test`: they need wrk (apt-get install wrk) and about 10 minutes (B7 loads a million jobs).
bench: $(STAMP_RUN)
	$(BIN)/python -m bench.run

# README's pictures of the dashboard (needs chromium: apt-get install chromium).
screenshots: $(STAMP_DEV)
	PENDINGTX_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/browser/test_dashboard.py -k screenshots

lint: $(STAMP_DEV)
	$(BIN)/ruff check src $(CLIENT)/src tests
	$(BIN)/ruff format --check src $(CLIENT)/src tests

typecheck: $(STAMP_DEV)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
