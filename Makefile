# The README's commands. Each does its own set-up first (scripts/setup.sh is a no-op when the
# environment is current), so `make test` or `make demo` alone works on a fresh machine.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup test lint format demo lock clean

setup:
	@bash scripts/setup.sh

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: setup
	$(BIN)/tfrelay demo

# Issue 8's benchmark (benchmarks/README.md): tfrelay against KServe, FastAPI and BentoML, the
# in-process ceiling, hot swaps under load and the polling cost on S3. Installs wrk/h2load and
# the peers' venvs when missing. Options go in BENCH_ARGS, e.g. BENCH_ARGS=--quick.
.PHONY: bench
bench: setup
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# Issue 12's fuzzing (tests/fuzz, hypothesis): FUZZ_SECONDS shared by the targets, then the
# executions and findings per target (also as JSON in FUZZ_REPORT). `make test` runs the same
# targets as a bounded smoke run.
FUZZ_SECONDS ?= 600
FUZZ_REPORT ?= build/fuzz-report.json
.PHONY: fuzz
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_REPORT=$(FUZZ_REPORT) $(BIN)/python -m pytest tests/fuzz \
		-p no:cacheprovider -q --timeout=0 $(PYTEST_ARGS)

# Re-resolve constraints.txt after changing dependencies in pyproject.toml or constraints.in.
lock:
	@bash scripts/lock.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
