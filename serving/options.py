"""Everything the model server can be told, in one place (filled from tensorflow_model_server's
flags by `tfrelay.serving.cli`, or directly by code that embeds the server)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class ServerOptions:
    """Model server settings. Names and defaults follow tensorflow_model_server's flags.

    tfrelay additions are marked; everything else means what TF Serving's flag of the same name
    means (see `tfrelay-model-server --help`).
    """

    port: int = 8500
    rest_api_port: int = 0
    # tfrelay: the interface both ports bind (TF Serving always binds every interface).
    host: str = "0.0.0.0"
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: float = 0
    file_system_poll_wait_seconds: float = 1
    allow_version_labels_for_unavailable_models: bool = False
    num_load_threads: int = 0
    num_unload_threads: int = 0
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    saved_model_tags: str = "serve"
    rest_api_timeout_in_ms: int = 30_000
    rest_api_num_threads: int = 0
    tensorflow_session_parallelism: int = 0
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    # tfrelay: where remote versions are copied before loading (a private temp dir if empty).
    model_cache_dir: str = ""
    # tfrelay: how long a version may stay incomplete and unchanged before the status shows it
    # as failed (it is still never served while incomplete).
    incomplete_version_timeout_seconds: float = 300
    # tfrelay: END versions kept in the status per model (TF Serving keeps all: #1488).
    max_ended_versions_in_status: int = 10
    # tfrelay: deadline of one storage LIST/HEAD/small read; copies get this plus 1 s per 4 MiB.
    storage_timeout_seconds: float = 60
    # gRPC.
    grpc_socket_path: str = ""
    grpc_channel_arguments: str = ""
    # A cap on concurrently handled RPCs; 0 means no cap.
    grpc_max_threads: int = 0
    # tfrelay: "tfrelay" (its own HTTP/2 front end for unary calls) or "grpcio" (grpc.aio).
    # TLS always uses grpcio.
    grpc_implementation: str = "tfrelay"
    enable_serialization_as_tensor_content: bool = False
    # Batching, warmup, monitoring, TFLite, TLS.
    # None (not given): batching on, but a request over max_batch_size runs alone instead of
    # failing, since the user never asked for batching (tfrelay default; TF Serving's is off).
    enable_batching: bool | None = None
    batching_parameters_file: str = ""
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 0
    monitoring_config_file: str = ""
    ssl_config_file: str = ""
    prefer_tflite_model: bool = False
    num_tflite_pools: int = 0
    num_tflite_interpreters_per_pool: int = 1
    tensorflow_session_config_file: str = ""
    # tfrelay: a file of bearer tokens both front ends require (health endpoints stay open).
    auth_token_file: str = ""
    # tfrelay: largest accepted request body (REST: 413) or message (gRPC: RESOURCE_EXHAUSTED).
    max_request_size_bytes: int = 256 * 1024 * 1024
    # tfrelay: HTTP/1.1 limits of the REST port (issue 12; defaults and sources in
    # tfrelay.serving.rest.limits): request line + headers (431), time to send a whole head
    # and between two body reads (408), time a peer may leave responses unread, idle keep-alive.
    rest_api_max_header_bytes: int = 64 * 1024
    rest_api_header_timeout_seconds: float = 60.0
    rest_api_body_timeout_seconds: float = 60.0
    rest_api_send_timeout_seconds: float = 60.0
    rest_api_idle_timeout_seconds: float = 75.0
    # tfrelay: request logging (a model's `logging_config` in --model_config_file, issue 16):
    # memory the queue of records waiting for the writer may hold (past it records are dropped
    # and counted, never the request slowed), and when a log file is closed and published.
    request_log_max_queued_bytes: int = 64 * 1024 * 1024
    request_log_file_max_bytes: int = 64 * 1024 * 1024
    request_log_file_max_seconds: float = 300.0
    # tfrelay: where logs bound for a bucket are written before their upload (temp dir if empty).
    request_log_spool_dir: str = ""
    # tfrelay: memory for answers to repeated identical Predict/Classify/Regress requests, in
    # MB (0: no cache; issue 16).
    response_cache_mb: int = 0
    # TF Serving flags accepted so manifests run unchanged, without effect in tfrelay.
    enable_profiler: bool = True
    flush_filesystem_caches: bool = True
    per_process_gpu_memory_fraction: float = 0.0
    xla_cpu_compilation_enabled: bool = False
    xla_gpu_compilation_enabled: bool = False
    remove_unused_fields_from_bundle_metagraph: bool = True
    enable_signature_method_name_check: bool = False
    enable_per_model_batching_parameters: bool = False
    rest_api_enable_cors_support: bool = False
    mixed_precision: str = ""
    skip_initialize_tpu: bool = False
    thread_pool_factory_config_file: str = ""
    # TF Serving flags whose meaning tfrelay cannot keep: setting them is an error.
    use_alts_credentials: bool = False
    platform_config_file: str = ""
    enable_grpc_healthcheck_service: bool = False
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def inference_threads(self) -> int:
        """Threads running inference for both front ends (TF Serving's REST thread pool)."""
        return self.rest_api_num_threads or (os.cpu_count() or 1)

    @property
    def tflite_interpreters(self) -> int:
        """Interpreters per TFLite version (TF Serving: pools x interpreters per pool)."""
        pools = self.num_tflite_pools or (os.cpu_count() or 1)
        return max(1, pools) * max(1, self.num_tflite_interpreters_per_pool)

    @property
    def intra_op_threads(self) -> int:
        return self.tensorflow_intra_op_parallelism or self.tensorflow_session_parallelism

    @property
    def inter_op_threads(self) -> int:
        return self.tensorflow_inter_op_parallelism or self.tensorflow_session_parallelism
