"""Throughput scenario: every server, both models, REST (and tfrelay's gRPC), at each
concurrency, plus the in-process ceiling and the "64-instance requests" case, all in one run.

For each model: the ceiling first (a child on the server core), then each server in turn, alone
on the server core: start it, check its answers against the ceiling's (REST, and gRPC through
the real stubs), then for each point a warm-up run and a measured run of the load generator on
the other core. For tfrelay the server's own request counts by status are read around every
point, so a gRPC error that h2load would count as a success (HTTP 200) is still seen.
"""

from __future__ import annotations

import json
import math
import pathlib
import subprocess
from typing import Any

from benchmarks import grpc_predict, loadgen
from benchmarks.config import BenchConfig
from benchmarks.models import ModelCase
from benchmarks.procs import (
    LOOPBACK,
    PROJECT_BIN,
    REPO,
    SERVING_BIN,
    core_busy_seconds,
    http_json,
    tree_cpu_seconds,
)
from benchmarks.servers import (
    START_TIMEOUT,
    Server,
    failed_requests,
    start_peer,
    start_tfrelay,
    wait_available,
)


def same_answer(got: Any, want: Any, rel: float = 1e-5) -> bool:
    """Predictions equal up to float rounding (tfrelay prints float32 with 6-9 digits)."""
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(same_answer(got[k], want[k], rel) for k in want)
        )
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(same_answer(g, w, rel) for g, w in zip(got, want, strict=True))
        )
    if isinstance(want, float) or isinstance(got, float):
        return isinstance(got, int | float) and math.isclose(got, want, rel_tol=rel, abs_tol=1e-9)
    return got == want


def run_ceiling(
    case: ModelCase, config: BenchConfig, bin_dir: pathlib.Path = SERVING_BIN
) -> dict[str, Any]:
    """The in-process ceiling of one model, measured in a child pinned to the server core.

    Args:
      case: the model.
      config: the run's settings.
      bin_dir: the venv whose Python and TensorFlow run it (the serving stack by default, the
        one tfrelay's server runs on; the pipeline stack's is measured beside it, issue 14).

    Returns:
      ceiling.py's JSON object.

    Raises:
      RuntimeError: the child failed.
    """
    argv = [
        "taskset", "-c", str(config.server_cpu), str(bin_dir / "python"),
        "-m", "benchmarks.ceiling", "--model-path", str(case.version_dir),
        "--instance", json.dumps(case.instance), "--seconds", str(config.ceiling_seconds),
        "--batch", str(config.batch_instances or 64),
    ]  # fmt: skip
    done = subprocess.run(
        argv,
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ceiling of {case.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class _Point:
    """Measures one (server, protocol, concurrency, instances) point."""

    def __init__(self, config: BenchConfig, case: ModelCase, server: Server, bodies: dict) -> None:
        self.config = config
        self.case = case
        self.server = server
        self.bodies = bodies

    def measure(
        self, protocol: str, concurrency: int, instances: int, rest_loadgen: str | None = None
    ) -> dict[str, Any]:
        config = self.config
        body = self.bodies[(protocol, instances)]
        if protocol == "rest":
            url = self.server.predict_url(self.case.name)
            tool = rest_loadgen or config.rest_loadgen

            def run(seconds: float) -> loadgen.LoadResult:
                return loadgen.rest(url, body, concurrency, seconds, config.load_cpu, tool)
        else:

            def run(seconds: float) -> loadgen.LoadResult:
                return loadgen.h2load(
                    self.server.grpc_url,
                    body,
                    concurrency,
                    seconds,
                    config.load_cpu,
                    streams=config.grpc_streams,
                )

        if config.warmup > 0:
            run(config.warmup)
        before = failed_requests(self.server, self.case.name) if self.server.metrics else None
        core_before = core_busy_seconds(config.server_cpu)
        server_before = tree_cpu_seconds(self.server.process.pid)
        result = run(config.duration)
        core_busy = core_busy_seconds(config.server_cpu) - core_before
        server_busy = tree_cpu_seconds(self.server.process.pid) - server_before
        point: dict[str, Any] = {
            "server": self.server.kind,
            "protocol": protocol,
            "model": self.case.name,
            "instances": instances,
            **result.as_dict(),
            "predictions_per_s": round(result.rps * instances, 1),
            # Shares of one core over the run: the server's own CPU time, and the server core's
            # busy time; a gap between them is other work on the server core (a noisy run).
            "server_cpu": round(server_busy / result.seconds, 2),
            "server_core_busy": round(core_busy / result.seconds, 2),
        }
        if before is not None:
            point["server_errors"] = int(failed_requests(self.server, self.case.name) - before)
            point["failed"] += point["server_errors"] if protocol == "grpc" else 0
        print(
            f"  {self.server.kind:8} {protocol:4} {self.case.name:13} c={concurrency:<3} "
            f"x{instances:<3} {result.rps:9.1f} req/s  p50 {result.p50_ms:7.2f} ms  "
            f"p99 {result.p99_ms:7.2f} ms  failed {point['failed']}  "
            f"server CPU {point['server_cpu']:.2f} (core {point['server_core_busy']:.2f})",
            flush=True,
        )
        return point


def _check_rest(server: Server, case: ModelCase, expected: Any, instances: int) -> None:
    status, body = http_json(server.predict_url(case.name), case.body(instances), timeout=30)
    want = expected * instances
    if (
        status != 200
        or not isinstance(body, dict)
        or not same_answer(body.get("predictions"), want)
    ):
        raise RuntimeError(
            f"{server.kind} answered {status} {str(body)[:300]} to {case.name}; expected {want}"
        )


def _start(kind: str, case: ModelCase, config: BenchConfig) -> Server:
    log = config.log_dir / f"{kind}-{case.name}.log"
    if kind == "tfrelay":
        flags = [
            f"--model_name={case.name}",
            f"--model_base_path={case.base_path}",
            *config.tfrelay_flags,
        ]
        server = start_tfrelay(flags, log, config.server_cpu, config.work_dir)
        try:
            wait_available(server, case.name, None, START_TIMEOUT)
        except BaseException:
            server.stop()
            raise
        return server
    return start_peer(kind, case.name, case.version_dir, log, config.server_cpu)


def _write_bodies(
    case: ModelCase, config: BenchConfig, dtypes: dict[str, str] | None
) -> dict[tuple[str, int], pathlib.Path]:
    """Request body files: ("rest"|"grpc", instances) -> path."""
    directory = config.work_dir / "bodies"
    directory.mkdir(parents=True, exist_ok=True)
    counts = [1] + ([config.batch_instances] if config.batch_instances > 1 else [])
    bodies = {}
    for count in counts:
        path = directory / f"{case.name}-{count}.json"
        path.write_bytes(case.body(count))
        bodies[("rest", count)] = path
        if dtypes is not None:
            request = grpc_predict.predict_request(case.name, case.instances(count), dtypes)
            path = directory / f"{case.name}-{count}.grpc"
            path.write_bytes(grpc_predict.frame(request))
            bodies[("grpc", count)] = path
    return bodies


def run(config: BenchConfig, cases: dict[str, ModelCase]) -> dict[str, Any]:
    """Runs the scenario; returns {"ceiling": {model: ... on the serving stack},
    "ceiling_pipeline_stack": {model: ... on TF 2.16}, "points": [...],
    "rest_same_client_as_grpc": [tfrelay's REST points measured with h2load, as gRPC is]}."""
    result: dict[str, Any] = {
        "ceiling": {},
        "ceiling_pipeline_stack": {},
        "points": [],
        "rest_same_client_as_grpc": [],
    }
    for case in cases.values():
        print(f"throughput: {case.name}: in-process ceiling (both stacks)", flush=True)
        ceiling = run_ceiling(case, config, SERVING_BIN)
        result["ceiling"][case.name] = ceiling
        result["ceiling_pipeline_stack"][case.name] = run_ceiling(case, config, PROJECT_BIN)
        expected = ceiling["expected"]
        bodies = _write_bodies(case, config, None)
        for kind in config.servers:
            print(f"throughput: {case.name}: starting {kind}", flush=True)
            with _start(kind, case, config) as server:
                protocols = ["rest"]
                if kind == "tfrelay" and "grpc" in config.protocols:
                    protocols.append("grpc")
                    dtypes = grpc_predict.input_dtypes(f"{LOOPBACK}:{server.grpc_port}", case.name)
                    bodies = _write_bodies(case, config, dtypes)
                    request = grpc_predict.predict_request(case.name, case.instances(1), dtypes)
                    answer = grpc_predict.call(f"{LOOPBACK}:{server.grpc_port}", request)
                    if not same_answer(answer, expected):
                        raise RuntimeError(f"tfrelay gRPC answered {answer}; expected {expected}")
                if "rest" not in config.protocols:
                    protocols.remove("rest")
                _check_rest(server, case, expected, 1)
                if config.batch_instances > 1:
                    _check_rest(server, case, expected, config.batch_instances)
                point = _Point(config, case, server, bodies)
                for protocol in protocols:
                    for concurrency in config.concurrency:
                        result["points"].append(point.measure(protocol, concurrency, 1))
                    if config.batch_instances > 1:
                        for concurrency in config.batch_concurrency:
                            result["points"].append(
                                point.measure(protocol, concurrency, config.batch_instances)
                            )
                if protocols == ["rest", "grpc"] and config.rest_loadgen == "wrk":
                    # gRPC's load generator is h2load; REST measured with h2load too (HTTP/1.1)
                    # compares the two protocols without the two clients' own costs.
                    for concurrency in config.concurrency:
                        same_client = point.measure("rest", concurrency, 1, rest_loadgen="h2load")
                        result["rest_same_client_as_grpc"].append(same_client)
    return result
