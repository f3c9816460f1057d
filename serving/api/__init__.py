"""Protocol-independent request semantics (TF Serving's predict_util, classifier, regressor),
shared by the REST and gRPC front ends."""
