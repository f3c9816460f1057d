"""Connection-level pieces that both front ends share (the REST server in `serving/rest/` and the
HTTP/2 gRPC server in `serving/grpc/`), so that neither imports the other (issue 15)."""
