"""The REST front end: TF Serving's `/v1` API on a lean HTTP/1.1 server (httptools, asyncio)."""
