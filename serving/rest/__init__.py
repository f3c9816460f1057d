"""The REST front end: TF Serving's `/v1` API over a small ASGI app served by uvicorn."""
