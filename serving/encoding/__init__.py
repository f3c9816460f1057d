"""Protobuf wire encoding shared by every front end and the request log: the one TensorProto
dtype table and the one encoder (issue 15). Below `api/`, `grpc/` and `rest/`; imports none."""
