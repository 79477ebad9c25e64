# qcluster developer commands. `make run` starts one peer on ./storage; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-slow lint typecheck bench bench-quick chaos chaos-quick install clean qdrant-suite

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/qcluster serve

lint: $(STAMP)
	$(BIN)/ruff check qcluster tests bench chaos
	$(BIN)/ruff format --check qcluster tests bench chaos

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/pytest -m slow -q

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

bench-quick: $(STAMP)
	$(BIN)/python bench/run_all.py --quick

# Qdrant's REST suite against a fresh peer: make qdrant-suite QDRANT_TESTS=/path/to/qdrant (see README)
SUITE_VENV := .venv-suite
$(SUITE_VENV)/.installed: pyproject.toml
	test -x $(SUITE_VENV)/bin/python || $(PYTHON) -m venv $(SUITE_VENV)
	$(SUITE_VENV)/bin/python -m pip install -q --upgrade pip
	$(SUITE_VENV)/bin/python -m pip install -q -e '.[suite]'
	touch $(SUITE_VENV)/.installed

qdrant-suite: $(SUITE_VENV)/.installed
	@test -n "$(QDRANT_TESTS)" || { echo "usage: make qdrant-suite QDRANT_TESTS=/path/to/qdrant/checkout [SUITE_ARGS=...]"; exit 2; }
	QC_SUITE_PYTHON=$(SUITE_VENV)/bin/python scripts/qdrant_suite.sh "$(QDRANT_TESTS)" $(SUITE_ARGS)

# Chaos campaigns against peers in network namespaces (root; see chaos/). Results: CHAOS.md.
# `make chaos CHAOS_ARGS="metadata --duration 120 --seed 7"` runs one campaign.
CHAOS_ARGS ?=
chaos: $(STAMP)
	$(BIN)/python -m chaos run $(CHAOS_ARGS)

chaos-quick: $(STAMP)
	$(BIN)/python -m chaos run --quick $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) $(SUITE_VENV) .pytest_cache .mypy_cache .ruff_cache
