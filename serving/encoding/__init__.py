"""The response protos, shared by every front end and the request log: the one TensorProto dtype
table and the one wire encoder (issue 15), and the Classify/Regress/MultiInference response
builders. Below `api/`, `grpc/` and `rest/`, which it does not import."""
