"""The ServingDeployer's output artifact: where a model version serves.

Its fields are custom properties: the Kubeflow V2 compiler only knows property schemas for TFX's
standard artifact types, and rejects declared PROPERTIES on custom ones.
"""

from tfx.types import artifact

ENDPOINT = "endpoint"
MODEL_NAME = "model_name"
SERVING_VERSION = "serving_version"
TARGET = "target"


class ServingEndpoint(artifact.Artifact):
    """A model server endpoint and the version of the model it serves."""

    TYPE_NAME = "tfrelay.ServingEndpoint"
