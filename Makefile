# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the project (with its dev extras) when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PO     := $(BIN)/planner-operator
DEMO_STATE := .planner/demo

.PHONY: demo test test-all check schema bench venv clean fmt

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	@bash scripts/demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

test-all: $(STAMP)
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate schemas/ from the pydantic models; fails when the committed file was stale.
schema: $(STAMP)
	$(PO) schema --output schemas/agent.schema.json --check || \
	  ($(PO) schema --output schemas/agent.schema.json && echo "schemas/agent.schema.json was stale: regenerated, commit it" && exit 1)

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .planner .pytest_cache .mypy_cache .ruff_cache
