"""Request logging as TF Serving does it (issue 16): sampled PredictionLog records of requests and
their responses, written off the request path as rotated TFRecord files to a directory or a
bucket. `logger.py` is the entry point; see docs/architecture.md."""
