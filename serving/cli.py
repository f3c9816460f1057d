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
        "response_cache_mb",
        int,
        "tfrelay: memory (MB) for answers to repeated identical predict, classify and regress "
        "requests to the same model version; 0 (default) turns the cache off.",
    ),
    (
        "request_log_max_queued_bytes",
        int,
        "tfrelay: memory the request log's queue may hold; past it records are dropped "
        "(counted in :tfrelay:serving:request_log_dropped), requests never wait.",
    ),
    (
        "request_log_file_max_bytes",
        int,
        "tfrelay: a request log file is closed and published once it holds this many bytes.",
    ),
    (
        "request_log_file_max_seconds",
        float,
        "tfrelay: a request log file is closed and published this long after it was opened.",
    ),
    (
        "request_log_spool_dir",
        str,
        "tfrelay: local directory for request logs bound for a bucket before their upload.",
    ),
    (
        "storage_timeout_seconds",
        float,
        "tfrelay: deadline of one storage LIST, HEAD or small read (copies: plus 1 s per 4 MiB); "
        "slow or failing calls are logged. Loads that fail on storage are retried every poll "
        "without using up --max_num_load_retries.",
    ),
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
    ("grpc_socket_path", str, "Also serve gRPC on this UNIX domain socket."),
    (
        "grpc_channel_arguments",
        str,
        "Comma-separated gRPC channel arguments, e.g. grpc.max_connection_age_ms=2000.",
    ),
    (
        "grpc_max_threads",
        int,
        "Cap on concurrently handled gRPC calls (the asyncio server needs no handler threads; "
        "0: no cap). Calls beyond the cap get RESOURCE_EXHAUSTED.",
    ),
    (
        "grpc_implementation",
        str,
        "tfrelay: 'tfrelay' (default; its own HTTP/2 front end, several times cheaper per call) "
        "or 'grpcio' (grpc.aio: every channel argument applies). TLS always uses grpcio.",
    ),
    (
        "enable_serialization_as_tensor_content",
        bool,
        "Serialize Predict response tensors as tensor_content instead of typed fields.",
    ),
    (
        "enable_batching",
        bool,
        "Merge concurrent requests to the same model into batches. tfrelay: on unless set to "
        "false (a lone request runs at once; a request over max_batch_size runs alone unless "
        "batching was asked for explicitly).",
    ),
    (
        "batching_parameters_file",
        str,
        "BatchingParameters text proto (needs --enable_batching); TF Serving's defaults if unset.",
    ),
    (
        "enable_model_warmup",
        bool,
        "Replay assets.extra/tf_serving_warmup_requests before a version becomes AVAILABLE.",
    ),
    (
        "num_request_iterations_for_warmup",
        int,
        "Times each warmup record is replayed (0 means 1).",
    ),
    (
        "monitoring_config_file",
        str,
        "MonitoringConfig text proto; prometheus_config exposes metrics on the REST port.",
    ),
    (
        "ssl_config_file",
        str,
        "SSLConfig text proto: TLS (and with client_verify, mutual TLS) for gRPC and REST.",
    ),
    ("prefer_tflite_model", bool, "Serve model.tflite instead of saved_model.pb when present."),
    ("num_tflite_pools", int, "TFLite interpreter pools per version (0: number of CPUs)."),
    ("num_tflite_interpreters_per_pool", int, "TFLite interpreters per pool."),
    (
        "tensorflow_session_config_file",
        str,
        "ConfigProto text proto for SavedModel sessions (thread settings flags override it).",
    ),
    (
        "auth_token_file",
        str,
        "tfrelay: file of bearer tokens (one per line) every REST and gRPC request must carry; "
        "/healthz and /readyz stay open.",
    ),
    (
        "max_request_size_bytes",
        int,
        "tfrelay: largest request body (REST answers 413) or gRPC message (RESOURCE_EXHAUSTED).",
    ),
    (
        "rest_api_max_header_bytes",
        int,
        "tfrelay: largest REST request line plus headers (431 beyond; one header: 16 KiB, "
        "the URL: 16 KiB, 100 headers).",
    ),
    (
        "rest_api_header_timeout_seconds",
        float,
        "tfrelay: seconds a REST client has to send a whole request head (408, then closed).",
    ),
    (
        "rest_api_body_timeout_seconds",
        float,
        "tfrelay: seconds allowed between two reads of a REST request body (408, then closed).",
    ),
    (
        "rest_api_send_timeout_seconds",
        float,
        "tfrelay: seconds a REST client may leave its responses unread before it is disconnected.",
    ),
    (
        "rest_api_idle_timeout_seconds",
        float,
        "tfrelay: seconds an idle REST keep-alive connection stays open.",
    ),
    *[
        (name, kind, "Accepted for TF Serving compatibility; has no effect in tfrelay.")
        for name, kind in (
            ("enable_profiler", bool),
            ("flush_filesystem_caches", bool),
            ("per_process_gpu_memory_fraction", float),
            ("xla_cpu_compilation_enabled", bool),
            ("xla_gpu_compilation_enabled", bool),
            ("remove_unused_fields_from_bundle_metagraph", bool),
            ("enable_signature_method_name_check", bool),
            ("enable_per_model_batching_parameters", bool),
            ("rest_api_enable_cors_support", bool),
            ("mixed_precision", str),
            ("skip_initialize_tpu", bool),
            ("thread_pool_factory_config_file", str),
        )
    ],
    ("use_alts_credentials", bool, "Not supported by tfrelay (setting it true is an error)."),
    ("platform_config_file", str, "Not supported by tfrelay (setting it is an error)."),
    (
        "enable_grpc_healthcheck_service",
        bool,
        "Not supported by tfrelay (setting it true is an error; probe /healthz instead).",
    ),
]

# TF Serving flags tfrelay accepts but ignores: a manifest passing them still runs.
NO_EFFECT_FLAGS = (
    "enable_profiler",
    "flush_filesystem_caches",
    "per_process_gpu_memory_fraction",
    "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled",
    "remove_unused_fields_from_bundle_metagraph",
    "enable_signature_method_name_check",
    "enable_per_model_batching_parameters",
    "rest_api_enable_cors_support",
    "mixed_precision",
    "skip_initialize_tpu",
    "thread_pool_factory_config_file",
)
# TF Serving flags whose meaning tfrelay cannot keep, with what to do instead.
UNSUPPORTED_FLAGS = {
    "use_alts_credentials": "ALTS is only available on Google Cloud; use --ssl_config_file",
    "platform_config_file": (
        "platform configs are not supported; use --enable_batching and --batching_parameters_file"
    ),
    "enable_grpc_healthcheck_service": (
        "the grpc.health.v1 service is not available; probe GET /healthz (liveness) or "
        "/readyz (readiness) on the REST port"
    ),
}


GRPC_IMPLEMENTATIONS = ("tfrelay", "grpcio")


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
    for name, advice in UNSUPPORTED_FLAGS.items():
        if getattr(options, name) != getattr(_DEFAULTS, name):
            parser.error(f"argument --{name}: not supported by tfrelay: {advice}")
    if options.batching_parameters_file and options.enable_batching is False:
        parser.error(
            "argument --batching_parameters_file: requires --enable_batching (as "
            "tensorflow_model_server)"
        )
    for name in (
        "grpc_max_threads",
        "num_request_iterations_for_warmup",
        "num_tflite_pools",
        "max_request_size_bytes",
    ):
        if getattr(options, name) < 0:
            parser.error(f"argument --{name}: must not be negative")
    if options.max_request_size_bytes == 0:
        parser.error("argument --max_request_size_bytes: must be positive")
    for name in (
        "rest_api_max_header_bytes",
        "rest_api_header_timeout_seconds",
        "rest_api_body_timeout_seconds",
        "rest_api_send_timeout_seconds",
        "rest_api_idle_timeout_seconds",
    ):
        if getattr(options, name) <= 0:
            parser.error(f"argument --{name}: must be positive")
    if options.grpc_implementation not in GRPC_IMPLEMENTATIONS:
        parser.error(
            f"argument --grpc_implementation: {options.grpc_implementation!r} is not one of "
            + ", ".join(GRPC_IMPLEMENTATIONS)
        )
    if options.grpc_channel_arguments:
        from tfrelay.serving.config.model_config import ConfigError
        from tfrelay.serving.grpc.server import parse_channel_arguments

        try:
            parse_channel_arguments(options.grpc_channel_arguments)
        except ConfigError as err:
            parser.error(f"argument {err}")
    if not options.model_config_file and not options.model_base_path:
        parser.error(
            "Both server_model_config_file and model_base_path are empty! Pass "
            "--model_base_path=/path/to/versions (or s3://, gs://) or --model_config_file"
        )
    return options


def warn_about_ignored_flags(options: ServerOptions) -> list[str]:
    """Logs one warning per TF Serving flag that was set but has no effect in tfrelay.

    Returns:
      The names of those flags.
    """
    ignored = [
        name for name in NO_EFFECT_FLAGS if getattr(options, name) != getattr(_DEFAULTS, name)
    ]
    for name in ignored:
        logging.getLogger("tfrelay.serving").warning(
            "--%s=%s is accepted for TF Serving compatibility but has no effect in tfrelay",
            name,
            str(getattr(options, name)).lower(),
        )
    return ignored


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
    warn_about_ignored_flags(options)
    from tfrelay.serving.config.model_config import ConfigError
    from tfrelay.serving.server import ModelServer

    try:
        server = ModelServer(options)
        server.run()
    except ConfigError as err:
        logging.getLogger("tfrelay.serving").error("%s", err)
        print(f"tfrelay-model-server: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
