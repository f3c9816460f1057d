"""`tfrelay-model-server` (also `tfrelay serve`): tensorflow_model_server's command line.

Flags, defaults and syntax follow tensorflow_model_server (`--flag=value` or `--flag value`;
booleans also as `--flag` / `--noflag`), so a Deployment written for TF Serving runs unchanged.
An unknown flag or a bad value exits with status 2 and a message naming it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from tfrelay.serving.options import ServerOptions

_DEFAULTS = ServerOptions()

# (flag, type, help). Defaults come from ServerOptions so there is one source of truth.
_FLAGS: list[tuple[str, type, str]] = [
    ("port", int, "Port to listen on for gRPC API."),
    ("rest_api_port", int, "Port to listen on for HTTP/REST API. 0 disables REST."),
    ("host", str, "tfrelay: interface to bind both ports to (TF Serving binds all)."),
    ("model_name", str, "Name of model (ignored if --model_config_file is set)."),
    (
        "model_base_path",
        str,
        "Path to export (local path, file://, s3:// or gs://); excludes the version directory. "
        "Ignored if --model_config_file is set.",
    ),
    ("model_config_file", str, "ModelServerConfig text proto; overrides the two flags above."),
    (
        "model_config_file_poll_wait_seconds",
        float,
        "Interval between reads of --model_config_file; 0 reads it once.",
    ),
    (
        "file_system_poll_wait_seconds",
        float,
        "Interval between polls for new model versions; 0 polls once. Each poll is one LIST "
        "request per model on object stores.",
    ),
    (
        "allow_version_labels_for_unavailable_models",
        bool,
        "Allow a new version label to point at a version that is not loaded yet.",
    ),
    ("num_load_threads", int, "Threads loading models (0 means one)."),
    ("num_unload_threads", int, "Threads unloading models (0 means one)."),
    ("max_num_load_retries", int, "Retries after a failed load."),
    (
        "load_retry_interval_micros",
        int,
        "Wait before the first retry of a failed load; doubles per retry, up to 8x.",
    ),
    ("saved_model_tags", str, "Comma-separated MetaGraph tags to load."),
    ("rest_api_timeout_in_ms", int, "Timeout of one model run."),
    ("rest_api_num_threads", int, "Threads running inference (default: number of CPUs)."),
    ("tensorflow_session_parallelism", int, "Intra- and inter-op threads (0: TensorFlow decides)."),
    ("tensorflow_intra_op_parallelism", int, "Intra-op threads (0: TensorFlow decides)."),
    ("tensorflow_inter_op_parallelism", int, "Inter-op threads (0: TensorFlow decides)."),
    ("model_cache_dir", str, "tfrelay: local directory remote versions are copied to."),
    (
        "incomplete_version_timeout_seconds",
        float,
        "tfrelay: report a version as failed after it stayed incomplete and unchanged this long.",
    ),
    (
        "max_ended_versions_in_status",
        int,
        "tfrelay: unloaded or failed versions kept in the status per model.",
    ),
]


def parse_bool(text: str) -> bool:
    """gflags' boolean spellings."""
    lowered = text.strip().lower()
    if lowered in ("true", "t", "yes", "y", "1"):
        return True
    if lowered in ("false", "f", "no", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value: {text!r} (use true or false)")


def _non_negative(kind: type):
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        return value

    convert.__name__ = kind.__name__
    return convert


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrelay-model-server",
        description=(
            "A drop-in for tensorflow_model_server: serves SavedModels from local disk, s3:// "
            "or gs://, picks up new versions by polling, and swaps them in without dropping "
            "requests."
        ),
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="store_true", help="Print version and exit.")
    for name, kind, help_text in _FLAGS:
        default = getattr(_DEFAULTS, name)
        if kind is bool:
            parser.add_argument(
                f"--{name}",
                nargs="?",
                const=True,
                default=default,
                type=parse_bool,
                metavar="BOOL",
                help=f"{help_text} (default: {str(default).lower()})",
            )
            parser.add_argument(
                f"--no{name}", dest=name, action="store_false", help=argparse.SUPPRESS
            )
        else:
            parser.add_argument(
                f"--{name}",
                type=_non_negative(kind),
                default=default,
                metavar=kind.__name__.upper(),
                help=f"{help_text} (default: {default!r})",
            )
    return parser


def options_from_args(argv: Sequence[str]) -> ServerOptions:
    """Parses command-line flags into ServerOptions (exits with status 2 on a bad flag)."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.version:
        from tfrelay.serving.server import version_banner

        print(version_banner())
        raise SystemExit(0)
    values: dict[str, Any] = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(ServerOptions)
        if hasattr(args, f.name)
    }
    options = ServerOptions(**values)
    for name in ("port", "rest_api_port"):
        if not 0 <= getattr(options, name) <= 65535:
            parser.error(f"argument --{name}: {getattr(options, name)} is not a valid port")
    if not options.model_config_file and not options.model_base_path:
        parser.error(
            "Both server_model_config_file and model_base_path are empty! Pass "
            "--model_base_path=/path/to/versions (or s3://, gs://) or --model_config_file"
        )
    return options


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("TFRELAY_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s.%(msecs)03d %(levelname).1s %(name)s] %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    # TensorFlow's Python logger repeats deprecation notices for the TF1 loader on every load.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the model server until SIGINT/SIGTERM.

    Args:
      argv: flags without the program name; defaults to `sys.argv[1:]`.

    Returns:
      The exit code: 0 after a clean stop, 1 for a config that cannot be served.
    """
    # TensorFlow's C++ start-up chatter (CUDA probing on CPU machines, logged as errors) hides
    # the useful lines; load failures still surface through tfrelay's own log and status.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    options = options_from_args(sys.argv[1:] if argv is None else argv)
    configure_logging()
    from tfrelay.serving.config.model_config import ConfigError
    from tfrelay.serving.server import ModelServer

    server = ModelServer(options)
    try:
        server.run()
    except ConfigError as err:
        logging.getLogger("tfrelay.serving").error("%s", err)
        print(f"tfrelay-model-server: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
