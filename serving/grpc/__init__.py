"""The gRPC front end: TF Serving's PredictionService and ModelService, served by tfrelay's own
HTTP/2 server for unary calls (`unary_server.py` on `http2.py`) or by grpc.aio (`server.py`)."""
