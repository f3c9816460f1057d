"""The harness's settings (from the command line, see cli.py), shared by every scenario."""

from __future__ import annotations

import dataclasses
import pathlib


@dataclasses.dataclass
class BenchConfig:
    """What to run and how long.

    Attributes:
      scenarios: "throughput", "hotswap", "polling".
      servers: "tfrelay" and peers ("kserve", "fastapi", "bentoml").
      models: "half_plus_two", "penguins".
      protocols: "rest", "grpc" (gRPC for tfrelay only: the peers have no TF Serving gRPC).
      concurrency: connections per throughput point.
      batch_instances: instances per request in the "64-instance requests" case (0: skip).
      batch_concurrency: connections for that case.
      duration: measured seconds per point.
      warmup: seconds of load before each measured run (not recorded).
      ceiling_seconds: seconds per in-process ceiling measurement.
      tfrelay_flags: extra TF Serving flags for tfrelay-model-server.
      rest_loadgen: "wrk" or "h2load" (HTTP/1.1) for the throughput scenario's REST points.
      grpc_streams: concurrent streams per h2load connection (1: one request per connection,
        as wrk).
      swaps: new versions published in the hot-swap scenario.
      swap_concurrency: wrk connections during the hot-swap scenario.
      swap_poll_seconds: tfrelay's --file_system_poll_wait_seconds in the hot-swap scenario.
      poll_seconds: the same in the polling-cost scenario.
      polling_versions: versions per model in the polling-cost scenario.
      polling_files: extra files per version in the polling-cost scenario.
      polling_window: measured seconds of polling.
      server_cpu: the core servers are pinned to.
      load_cpu: the core load generators (and the harness) are pinned to.
      work_dir: models, logs, scratch files (git-ignored).
      results_dir: where JSON and PNG results go.
      setup: install missing load generators and peer venvs first.
    """

    scenarios: list[str]
    servers: list[str]
    models: list[str]
    protocols: list[str]
    concurrency: list[int]
    batch_instances: int
    batch_concurrency: list[int]
    duration: float
    warmup: float
    ceiling_seconds: float
    tfrelay_flags: list[str]
    rest_loadgen: str
    grpc_streams: int
    swaps: int
    swap_concurrency: int
    swap_poll_seconds: float
    poll_seconds: float
    polling_versions: list[int]
    polling_files: list[int]
    polling_window: float
    server_cpu: int
    load_cpu: int
    work_dir: pathlib.Path
    results_dir: pathlib.Path
    setup: bool

    @property
    def log_dir(self) -> pathlib.Path:
        return self.work_dir / "logs"
