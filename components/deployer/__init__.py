"""The ServingDeployer: makes sure a model server polls the bucket, then waits until the pushed
version serves.

`component.py` holds the ComponentSpec and the component, `keys.py` their channel and
parameter keys, `executor.py` the TFX glue, `local_server.py` and `kubernetes_*.py` the
targets, `readiness.py` the wait, `server_command.py` which server the local target starts.

The component is imported lazily (PEP 562), when one of `__all__` is first asked for, so
importing the package or one of its TFX-free modules does not load TFX and TensorFlow (issue 15):
the serving stack, which has no TFX, imports `tfrelay.components.deployer.server_command`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfrelay.components.lazy_exports import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from tfrelay.components.deployer.artifacts import ServingEndpoint
    from tfrelay.components.deployer.component import ServingDeployer, ServingDeployerSpec

__all__ = ["ServingDeployer", "ServingDeployerSpec", "ServingEndpoint"]

# Where each public name lives. Those modules import TFX (seconds, and absent from the serving
# stack), so they are imported when a name is first asked for, not with the package (issue 15).
_EXPORTS = {
    "ServingDeployer": "tfrelay.components.deployer.component",
    "ServingDeployerSpec": "tfrelay.components.deployer.component",
    "ServingEndpoint": "tfrelay.components.deployer.artifacts",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
