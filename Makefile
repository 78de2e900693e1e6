# mountops.fleet — every entry point sets itself up first (scripts/setup.sh is idempotent).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

N ?= 5
SCENARIOS ?=
PYTEST_ARGS ?=

.PHONY: setup audit test unit lint ruff ansible-lint sanity bench lab-up lab-down demo clean

setup:
	@bash scripts/setup.sh

## Audit this host (no inventory needed): facts, JSON report and a short summary under reports/.
audit: setup
	@$(BIN)/ansible-playbook playbooks/audit.yml
	@echo; cat reports/localhost.txt 2>/dev/null || true; echo "full report: $(CURDIR)/reports/localhost.json"

## All tests, lint included. CI runs exactly this.
test: setup lint
	@$(PY) -m pytest $(PYTEST_ARGS)

unit: setup
	@$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: setup ruff ansible-lint sanity

ruff:
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check --diff plugins tests bench scripts 2>/dev/null || \
	  { echo "ruff format: run '$(BIN)/ruff format plugins tests bench scripts'"; exit 1; }

ansible-lint:
	@$(BIN)/ansible-lint --profile production --offline -q roles playbooks

sanity:
	@bash scripts/sanity.sh

## Benchmarks: ratios against a baseline measured in the same run (see docs/benchmarks.md).
bench: setup
	@failed=""; for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || failed="$$failed $$b"; echo; done; \
	  if [ -n "$$failed" ]; then echo "targets missed or errors in:$$failed"; exit 1; fi

lab-up: setup
	@$(PY) -m tests.lab up --hosts $(N) $(if $(SCENARIOS),--scenarios $(SCENARIOS))

lab-down: setup
	@$(PY) -m tests.lab down

demo: setup
	@$(PY) -m tests.lab demo --hosts $(N)

clean:
	rm -rf reports/* .pytest_cache .ruff_cache
