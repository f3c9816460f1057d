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
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def inference_threads(self) -> int:
        """Threads running inference for both front ends (TF Serving's REST thread pool)."""
        return self.rest_api_num_threads or (os.cpu_count() or 1)

    @property
    def intra_op_threads(self) -> int:
        return self.tensorflow_intra_op_parallelism or self.tensorflow_session_parallelism

    @property
    def inter_op_threads(self) -> int:
        return self.tensorflow_inter_op_parallelism or self.tensorflow_session_parallelism
