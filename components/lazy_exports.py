"""Lazy public names for the component packages (PEP 562), written once for all of them.

A component's module imports TFX, which takes seconds and which the serving stack does not have,
so `tfrelay.components` and each sub-package import a public name's module only when the name is
first asked for (issue 15). TFX-free modules (`pusher.push`, `deployer.server_command`, the `keys`
modules) then import without TFX.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any


def lazy_exports(
    package: str, namespace: MutableMapping[str, Any], exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level `__getattr__` and `__dir__` of a package with lazy public names.

    Args:
      package: the package's `__name__`, for error messages.
      namespace: the package's `globals()`: a name, once imported, is stored there, so later
        look-ups no longer call `__getattr__`.
      exports: {public name: the module that defines it}.

    Returns:
      (`__getattr__`, `__dir__`) to assign in the package.
    """

    def __getattr__(name: str) -> Any:
        # Raises AttributeError for any other name (then `from package import submodule` imports
        # the submodule, as the import system does for any package), and ModuleNotFoundError
        # when the name needs TFX and this environment has none (the serving-only install).
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
