# Convenience targets; each runs inside ./.venv (created by `make venv`).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv check test bench serve

venv:
	python3 -m venv $(VENV) && $(BIN)/pip install -q '.[test]'

# Style, types and layering: the pre-commit checks, in one command.
check:
	$(BIN)/ruff check localbox tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test:
	$(BIN)/python -m pytest

bench:
	$(BIN)/python -m bench

serve:
	$(BIN)/localbox serve
