"""What a pipeline run shows while it runs: each component starting and finishing, and
tfrelay's own progress lines (training epochs, the Validator's verdict, upload progress, the
deployer), without TensorFlow's and Beam's chatter (`--verbose` shows everything)."""

from __future__ import annotations

import logging
import os
import warnings

from absl import logging as absl_logging

_TFRELAY_PREFIXES = (
    "Component ",
    "Trainer:",
    "Validator:",
    "ServingDeployer:",
    "Optimizer:",
    "pushed",
    "already pushed",
    "not pushed",
)


class ProgressFilter(logging.Filter):
    """Keeps component lifecycle lines and tfrelay's messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("tfrelay"):
            return True
        if record.name != "absl":
            return False
        message = record.getMessage()
        return message.startswith(_TFRELAY_PREFIXES) or record.levelno >= logging.ERROR


def configure(verbose: bool = False) -> None:
    """Sets up logging for a command-line run. Call it before TensorFlow is imported: TensorFlow
    reads its C++ log level once, and Beam's worker processes inherit the environment set here."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        # TensorFlow's logger has its own handler; its notices (deprecations, "Restoring
        # parameters") are not progress.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    absl_logging.set_verbosity(absl_logging.INFO)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s  %(message)s", datefmt="%H:%M:%S"))
    if not verbose:
        handler.addFilter(ProgressFilter())
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    # absl installs its own handler on first use; ours replaces it.
    absl_logging.use_python_logging(quiet=True)
