# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the project (with its dev extras) when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PO     := $(BIN)/planner-operator
DEMO_STATE := .planner/demo

.PHONY: demo demo-mastra test test-all check schema readme bench bench-smoke venv clean fmt fuzz fuzz-smoke

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	@bash scripts/demo.sh

# The same job path with chats and workflows on a real Mastra server (Node from the venv).
demo-mastra: $(STAMP)
	@bash scripts/demo_mastra.sh

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

test-all: $(STAMP)
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layer contracts in pyproject.toml [tool.importlinter]
	$(BIN)/python scripts/readme_settings.py --check  # README's table = core/variables.py

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate schemas/ from the pydantic models; fails when the committed file was stale.
schema: $(STAMP)
	$(PO) schema --output schemas/agent.schema.json --check || \
	  ($(PO) schema --output schemas/agent.schema.json && echo "schemas/agent.schema.json was stale: regenerated, commit it" && exit 1)

# Regenerate README.md's configuration table from planner_operator/core/variables.py
# (tests/core/test_settings.py fails while it is stale).
readme: $(STAMP)
	$(BIN)/python scripts/readme_settings.py

# Every benchmark: rewrites BENCHMARKS.md, its charts (bench/charts/) and bench/figures.json.
bench: $(STAMP)
	$(BIN)/python -m bench.run

# Under a minute, not part of CI: the reconcile ratios and the scheduler's heap build, printed
# beside the last committed figures (bench/figures.json).
bench-smoke: $(STAMP)
	$(BIN)/python -m bench.run --smoke

# Coverage-guided fuzzing of the config loader (Atheris: the `fuzz` extra). The corpus it grows
# and any crash input stay outside the repository, in FUZZ_DIR; a crash goes into
# tests/fuzz_regressions/, where the test suite replays it.
FUZZ_SECONDS ?= 600
FUZZ_DIR     ?= $(or $(TMPDIR),/tmp)/planner-operator-fuzz
FUZZ_STAMP   := $(VENV)/.fuzz-installed
FUZZ_RUN     := $(BIN)/python -m fuzz.fuzz_config_loader -timeout=10 -dict=fuzz/agent.dict

$(FUZZ_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,fuzz]'
	@touch $(FUZZ_STAMP)

fuzz: $(FUZZ_STAMP)
	@mkdir -p $(FUZZ_DIR)/corpus
	$(FUZZ_RUN) -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_DIR)/ \
	  $(FUZZ_DIR)/corpus fuzz/corpus

# 60 s in CI; quiet unless it finds something, and it leaves no files behind when it doesn't.
fuzz-smoke: $(FUZZ_STAMP)
	@dir=$$(mktemp -d); \
	if $(FUZZ_RUN) -max_total_time=60 -artifact_prefix=$$dir/ $$dir fuzz/corpus \
	    > $$dir/fuzz.log 2>&1; then \
	  grep -E '^Done [0-9]+ runs' $$dir/fuzz.log; rm -rf $$dir; \
	else \
	  tail -n 60 $$dir/fuzz.log; \
	  echo "fuzz-smoke: crash; input and log kept in $$dir (copy the crash-* file to tests/fuzz_regressions/)"; \
	  exit 1; \
	fi

clean:
	rm -rf $(VENV) .planner .pytest_cache .mypy_cache .ruff_cache
