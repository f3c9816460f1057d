"""Storage: fsspec file systems configured the way TF Serving users configure TensorFlow's, and
the bucket contract shared by the server and the pusher."""
