# klantwaarde — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# Python 3.12: python3.12 on PATH where it runs (a pyenv shim runs only where pyenv has 3.12
# selected), else pyenv's own 3.12, else python3 (the check below then says what is missing)
PYTHON ?= $(shell for p in python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12; do \
	$$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null \
	&& { command -v $$p; exit; }; done; command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo test test-all test-slow lint bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12) and "klantwaarde needs Python 3.12")'
	@start=$$(date +%s) && \
	$(PYTHON) -m venv $(VENV) && \
	$(BIN)/pip install --quiet --upgrade pip && \
	$(BIN)/pip install --quiet -e ".[dev]" && \
	echo "installed in $$(( $$(date +%s) - start )) s"
	@touch $@

demo: $(STAMP) ## Create .venv, install, and run the whole product on a simulated base in demo/
	$(BIN)/klantwaarde demo

test: $(STAMP) ## Create .venv, install, and run the test suite (slow suites excluded)
	$(BIN)/python -m pytest -m "not slow" -n 2 --dist loadfile

test-all: $(STAMP) ## Run every test, the slow suites included
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-slow: $(STAMP) ## Run the slow suites CI runs: the engines' parity, a training killed mid-way
	$(BIN)/python -m pytest -m slow tests/test_engines_parity.py tests/test_engines_spark.py \
		tests/test_engines_spark_score.py \
		tests/test_training_units.py::test_a_training_killed_in_its_alias_moves_or_before_moves_no_challenger \
		-n 2 --dist loadfile

lint: $(STAMP) ## Check the code style with ruff
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP) ## Run the benchmarks (generates large data under benchmarks/data/)
	$(BIN)/python benchmarks/validate.py
	$(BIN)/python benchmarks/simulate.py
	$(BIN)/python benchmarks/profitability.py
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/cdnow.py
	$(BIN)/python benchmarks/score.py
	$(BIN)/python benchmarks/shap_speed.py
	$(BIN)/python benchmarks/decisions.py
	$(BIN)/python benchmarks/loop.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/engines.py

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
