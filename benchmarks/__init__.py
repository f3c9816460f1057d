"""tfrelay's benchmark harness: tfrelay-model-server against KServe, FastAPI and BentoML serving
the same SavedModels, plus the in-process ceiling, hot swaps under load and the polling cost on
S3. `make bench` (or `.venv/bin/python -m benchmarks --help`); see benchmarks/README.md."""
