"""The umbrella `tfrelay` command.

Each sub-command lives with the package that owns it; this module only dispatches, importing the
owner lazily so that `tfrelay serve` works in an image that installed only `tfrelay[serving]`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tfrelay.version import __version__

PIPELINE_PYTHON = (3, 10)

# sub-command -> ("module:function" taking argv, one-line help, extra that provides it)
_SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": (
        "tfrelay.pipelines.demo:main",
        "train, push and serve version 1, retrain and swap in version 2, on this machine",
        "pipeline",
    ),
    "pipeline": (
        "tfrelay.pipelines.cli:main",
        "run the pipeline locally, or compile/submit it for Kubeflow Pipelines",
        "pipeline",
    ),
    "retrain": (
        "tfrelay.pipelines.cli:retrain_main",
        "add new CSV data and run the pipeline (what a data scientist types)",
        "pipeline",
    ),
    "push": (
        "tfrelay.components.pusher.cli:main",
        "publish a SavedModel directory as the next version under a base path (no TFX needed)",
        "serving",
    ),
    "models": (
        "tfrelay.serving.admin.models_cli:main",
        "list, roll back and label model versions in the bucket (every replica follows)",
        "serving",
    ),
    "serve": (
        "tfrelay.serving.cli:main",
        "run the TF-Serving-compatible model server (same flags as tensorflow_model_server)",
        "serving",
    ),
}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrelay",
        description="Train, validate and push TensorFlow models to a bucket; serve them from it.",
    )
    parser.add_argument("--version", action="version", version=f"tfrelay {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text, _) in _SUBCOMMANDS.items():
        # The sub-command parses its own flags: hand it everything after its name untouched.
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `tfrelay COMMAND ...`.

    Args:
      argv: command-line arguments without the program name; defaults to `sys.argv[1:]`.

    Returns:
      The process exit code.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    if not args or args[0] not in _SUBCOMMANDS:
        parser.parse_args(args)  # prints --help / --version / "invalid choice" and exits
        parser.print_help()
        return 2
    target, _, extra = _SUBCOMMANDS[args[0]]
    if extra == "pipeline" and sys.version_info[:2] != PIPELINE_PYTHON:
        # TFX 1.16 has wheels for 3.9-3.10 only (issue 14, README "Two stacks"); say so before
        # an import deep inside the command fails.
        print(
            f"tfrelay {args[0]}: the pipeline runs on Python 3.10 (TFX 1.16), and this is "
            f"Python {sys.version_info[0]}.{sys.version_info[1]}. Use the pipeline's environment "
            "(after `make setup`: .venv/bin/tfrelay) or pip install 'tfrelay[pipeline]' on "
            "Python 3.10.",
            file=sys.stderr,
        )
        return 2
    module_name, function_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        print(
            f"tfrelay {args[0]}: missing dependency {err.name!r}. "
            f"Install it with: pip install 'tfrelay[{extra}]'",
            file=sys.stderr,
        )
        return 2
    return int(getattr(module, function_name)(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
