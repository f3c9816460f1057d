"""Runners: TFX's LocalDagRunner (Beam DirectRunner) for development, Kubeflow Pipelines 2.x."""
