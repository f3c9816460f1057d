"""The ServingDeployer's output artifact: where a model version serves."""

from tfx.types import artifact

ENDPOINT = "endpoint"
MODEL_NAME = "model_name"
SERVING_VERSION = "serving_version"
TARGET = "target"


class ServingEndpoint(artifact.Artifact):
    """A model server endpoint and the version of the model it serves."""

    TYPE_NAME = "tfrelay.ServingEndpoint"
    PROPERTIES = {
        ENDPOINT: artifact.Property(type=artifact.PropertyType.STRING),
        MODEL_NAME: artifact.Property(type=artifact.PropertyType.STRING),
        SERVING_VERSION: artifact.Property(type=artifact.PropertyType.INT),
        TARGET: artifact.Property(type=artifact.PropertyType.STRING),
    }
