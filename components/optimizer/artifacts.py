"""The Optimizer's report artifact: `report.json` and `report.png` in its URI.

Its headline figures are custom properties: the Kubeflow V2 compiler only knows property schemas
for TFX's standard artifact types, and rejects declared PROPERTIES on custom ones.
"""

from tfx.types import artifact


class OptimizationReport(artifact.Artifact):
    """Size, latency and accuracy of a model before and after optimization."""

    TYPE_NAME = "tfrelay.OptimizationReport"
