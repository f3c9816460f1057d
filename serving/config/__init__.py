"""Server configuration files: model config (and, later, batching, monitoring, SSL)."""
