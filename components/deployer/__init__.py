"""The ServingDeployer: makes sure a model server polls the bucket, then waits until the pushed
version serves."""
