"""tfrelay.components: custom TFX 1.16 components, imported as TFX's are:

```python
from tfrelay.components import BucketPusher, Optimizer, ServingDeployer, Trainer, Validator
```

Each component is a sub-package with `component.py` (spec and construction-time validation),
`keys.py` (its channel and parameter keys, as TFX's `standard_component_specs`), `executor.py`
(thin TFX glue) and pure helpers beside them; each sub-package exports its component too
(`from tfrelay.components.trainer import Trainer`).

The components are imported lazily (PEP 562), when first asked for: importing this package, a
sub-package or a TFX-free module (`tfrelay.components.pusher.push`,
`tfrelay.components.deployer.server_command`, the `keys` modules) loads neither TFX nor
TensorFlow, so the serving stack, which has no TFX, imports them (issue 15).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfrelay.components.lazy_exports import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from tfrelay.components.deployer import ServingDeployer
    from tfrelay.components.optimizer import Optimizer
    from tfrelay.components.pusher import BucketPusher
    from tfrelay.components.trainer import Trainer
    from tfrelay.components.validator import Validator

__all__ = ["BucketPusher", "Optimizer", "ServingDeployer", "Trainer", "Validator"]

# Where each component lives: its sub-package, which imports it (and TFX) on first use.
_EXPORTS = {
    "BucketPusher": "tfrelay.components.pusher",
    "Optimizer": "tfrelay.components.optimizer",
    "ServingDeployer": "tfrelay.components.deployer",
    "Trainer": "tfrelay.components.trainer",
    "Validator": "tfrelay.components.validator",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
