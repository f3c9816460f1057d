"""Server-side request batching (`--enable_batching`)."""
