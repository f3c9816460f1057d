"""The gRPC front end: TF Serving's PredictionService and ModelService on grpc.aio."""
