"""Optimizer: prunes, clusters and quantizes a trained model, measures size, latency and accuracy
before and after, and blesses the result only if accuracy holds.

`component.py` holds the ComponentSpec and the component, `executor.py` the TFX glue,
`optimize.py` the run (no TFX types), `techniques.py` TFMOT and the TFLite converter,
`measure.py` the figures, `report.py` the JSON and the chart, `settings.py` the technique
settings.
"""

from tfrelay.components.optimizer.artifacts import OptimizationReport
from tfrelay.components.optimizer.component import Optimizer, OptimizerSpec
from tfrelay.components.optimizer.settings import Cluster, Prune, Quantize

__all__ = ["Cluster", "OptimizationReport", "Optimizer", "OptimizerSpec", "Prune", "Quantize"]
