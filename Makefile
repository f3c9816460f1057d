# The README's commands. Each does its own set-up first (scripts/setup.sh is a no-op when the
# environment is current), so `make test` or `make demo` alone works on a fresh machine.
#
# Two stacks (issue 14, README "Two stacks"): the pipeline in .venv (Python 3.10, TFX 1.16) and
# the model server in .venv-serving (Python 3.12+, TensorFlow 2.21, protobuf with upb).
VENV := .venv
BIN := $(VENV)/bin
SERVING_VENV := .venv-serving
SERVING_BIN := $(SERVING_VENV)/bin

.PHONY: setup test test-serving test-pipeline lint format demo lock clean

setup:
	@bash scripts/setup.sh

# The whole serving suite, the fuzz smoke and the operations assets (real Prometheus) run on the
# serving stack; then the pipeline stack:
# components, pipelines and e2e (the servers they start run on the serving stack, as the
# ServingDeployer starts them), and the serving tests the pipeline relies on (marker
# `both_stacks`: TF Serving's test models, TFLite, warmup, the bucket contract) with the
# pipeline stack's own server. Both halves run even when the first fails.
test: setup
	@status=0; \
	$(MAKE) --no-print-directory test-serving || status=1; \
	$(MAKE) --no-print-directory test-pipeline || status=1; \
	exit $$status

test-serving: setup
	$(SERVING_BIN)/python -m pytest tests/serving tests/fuzz tests/ops $(PYTEST_ARGS)

test-pipeline: setup
	$(BIN)/python -m pytest tests --ignore=tests/serving --ignore=tests/fuzz --ignore=tests/ops $(PYTEST_ARGS)
	TFRELAY_MODEL_SERVER=$(CURDIR)/$(BIN)/tfrelay-model-server \
		$(BIN)/python -m pytest tests/serving -m both_stacks $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	bash scripts/lint-imports.sh $(BIN)/python

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

# Re-resolve locks/pipeline.txt and locks/serving.txt after changing dependencies in
# pyproject.toml or locks/*.in.
lock:
	@bash scripts/lock.sh

clean:
	rm -rf $(VENV) $(SERVING_VENV) build *.egg-info .pytest_cache .ruff_cache
