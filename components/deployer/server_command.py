"""Which `tfrelay-model-server` the `local` target starts (issue 14).

The server runs on its own stack (Python 3.12+, TensorFlow 2.21, protobuf with upb), while the
pipeline that starts it runs on TFX's (Python 3.10, TensorFlow 2.16). So the deployer does not
start the server beside its own interpreter unless nothing better is there. In order:

1. the `server_command` the ServingDeployer was given;
2. `$TFRELAY_MODEL_SERVER`;
3. the serving environment that `make setup` builds beside the checkout
   (`<checkout>/.venv-serving/bin/tfrelay-model-server`);
4. `tfrelay-model-server` beside this interpreter (an install with one stack only).
"""

from __future__ import annotations

import os
import pathlib
import sys

SERVER_COMMAND_ENV = "TFRELAY_MODEL_SERVER"
SERVING_VENV = ".venv-serving"
EXECUTABLE = "tfrelay-model-server"


def checkout_root() -> pathlib.Path:
    """The folder holding `components/` in a source checkout (the editable install's layout)."""
    return pathlib.Path(__file__).resolve().parents[2]


def resolve(explicit: str | None = None) -> str:
    """The path of the model server executable to start.

    Args:
      explicit: a path given by the user (the ServingDeployer's `server_command`), or None.

    Returns:
      An executable path.

    Raises:
      ValueError: the given (or `$TFRELAY_MODEL_SERVER`) path is not an executable file.
    """
    for source, value in (
        ("server_command", explicit),
        (f"${SERVER_COMMAND_ENV}", os.environ.get(SERVER_COMMAND_ENV)),
    ):
        if value:
            if not (os.path.isfile(value) and os.access(value, os.X_OK)):
                raise ValueError(
                    f"{source} is {value!r}, which is not an executable file. Point it at a "
                    f"{EXECUTABLE} (after `make setup`: {checkout_root() / SERVING_VENV}/bin/{EXECUTABLE})"
                )
            return value
    serving = checkout_root() / SERVING_VENV / "bin" / EXECUTABLE
    if os.access(serving, os.X_OK):
        return str(serving)
    return os.path.join(os.path.dirname(sys.executable), EXECUTABLE)
