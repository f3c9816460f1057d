"""`python -m benchmarks` (what `make bench` runs): set-up, the scenarios, results and goals.

Examples:
  python -m benchmarks                                  # everything, 10 s per point
  python -m benchmarks --quick                          # a smoke run (2 s per point, 5 swaps)
  python -m benchmarks --scenarios throughput --servers tfrelay,kserve --models half_plus_two
  python -m benchmarks --tfrelay-flags "--enable_batching --batching_parameters_file=b.config"
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import warnings
from collections.abc import Callable
from typing import Any

from benchmarks import goals, procs, report, tools
from benchmarks.config import BenchConfig
from benchmarks.procs import BENCH, REPO, pin_self
from benchmarks.servers import PEERS, SERVERS

SCENARIOS = ("throughput", "hotswap", "polling", "features")
MODELS = ("half_plus_two", "penguins")


def _list(kind: Callable[[str], Any], allowed: tuple[str, ...] | None = None):
    def parse(text: str) -> list[Any]:
        values = [kind(part) for part in text.split(",") if part.strip()]
        bad = [v for v in values if allowed is not None and v not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"{bad} not in {', '.join(allowed or ())}")
        return values

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = p.add_argument
    add("--scenarios", type=_list(str, SCENARIOS), default=list(SCENARIOS))
    add("--servers", type=_list(str, SERVERS), default=list(SERVERS))
    add("--models", type=_list(str, MODELS), default=list(MODELS))
    add("--protocols", type=_list(str, ("rest", "grpc")), default=["rest", "grpc"])
    add("--concurrency", type=_list(int), default=[1, 8, 64], help="connections per point")
    add("--batch-instances", type=int, default=64, help="instances per request (0: skip)")
    add("--batch-concurrency", type=_list(int), default=[64])
    add("--duration", type=float, help="measured seconds per point (default 10; --quick 2)")
    add("--warmup", type=float, help="warm-up seconds before each point (default 3; --quick 1)")
    add("--ceiling-seconds", type=float, help="seconds per ceiling figure (default 5; --quick 2)")
    add("--tfrelay-flags", default="", help="extra tfrelay-model-server flags, one string")
    add("--grpc-streams", type=int, default=1, help="streams per h2load connection")
    add(
        "--rest-loadgen",
        choices=("wrk", "h2load"),
        default="wrk",
        help="REST load generator of the throughput points (h2load: --h1, a second opinion)",
    )
    add("--swaps", type=int, help="versions published under load (default 20; --quick 5)")
    add("--swap-concurrency", type=int, default=64)
    add("--swap-poll-seconds", type=float, default=1.0)
    add("--poll-seconds", type=float, default=1.0, help="polling-cost scenario's poll interval")
    add("--polling-versions", type=_list(int), default=[1, 10, 100])
    add("--polling-files", type=_list(int), default=[0, 50], help="extra files per version")
    add("--polling-window", type=float, help="measured seconds of polling (default 10; --quick 4)")
    add("--server-cpu", type=int, default=1)
    add("--load-cpu", type=int, default=0)
    add("--work-dir", type=pathlib.Path, default=BENCH / ".work")
    add("--results-dir", type=pathlib.Path, default=BENCH / "results")
    add("--quick", action="store_true", help="a short smoke run")
    add("--no-setup", dest="setup", action="store_false", help="do not install anything")
    return p


def config_from(args: argparse.Namespace) -> BenchConfig:
    def pick(value: float | None, full: float, quick: float) -> float:
        return value if value is not None else (quick if args.quick else full)

    return BenchConfig(
        scenarios=args.scenarios,
        servers=args.servers,
        models=args.models,
        protocols=args.protocols,
        concurrency=args.concurrency,
        batch_instances=args.batch_instances,
        batch_concurrency=args.batch_concurrency,
        duration=pick(args.duration, 10, 2),
        warmup=pick(args.warmup, 3, 1),
        ceiling_seconds=pick(args.ceiling_seconds, 5, 2),
        tfrelay_flags=shlex.split(args.tfrelay_flags),
        rest_loadgen=args.rest_loadgen,
        grpc_streams=args.grpc_streams,
        swaps=int(pick(args.swaps, 20, 5)),
        swap_concurrency=args.swap_concurrency,
        swap_poll_seconds=args.swap_poll_seconds,
        poll_seconds=args.poll_seconds,
        polling_versions=args.polling_versions,
        polling_files=args.polling_files,
        polling_window=pick(args.polling_window, 10, 4),
        server_cpu=args.server_cpu,
        load_cpu=args.load_cpu,
        work_dir=args.work_dir.resolve(),
        results_dir=args.results_dir.resolve(),
        setup=args.setup,
    )


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "serving"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() + ("+dirty(serving/)" if dirty.stdout.strip() else "")


def meta(config: BenchConfig, started: datetime.datetime) -> dict[str, Any]:
    """What the results were measured with."""
    peers = [s for s in config.servers if s in PEERS]
    return {
        "started": started.isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "host": {
            "cpus": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "python": platform.python_version(),
            "load_average": open("/proc/loadavg").read().split()[:3],
        },
        "method": {
            "server_cpu": config.server_cpu,
            "load_cpu": config.load_cpu,
            "duration_s": config.duration,
            "warmup_s": config.warmup,
            "ceiling_s": config.ceiling_seconds,
            "rest_loadgen": config.rest_loadgen,
            "grpc_streams_per_connection": config.grpc_streams,
            "wrk": tools.tool_version(["wrk", "-v"]),
            "h2load": tools.tool_version(["h2load", "--version"]),
        },
        # What tfrelay's server ran on (issue 14) and what the harness itself runs on.
        "server_stack": procs.stack_of(procs.SERVING_BIN),
        "pipeline_stack": procs.stack_of(procs.PROJECT_BIN),
        "tfrelay_flags": config.tfrelay_flags,
        "peers": {peer: tools.peer_versions(peer) for peer in peers},
        "config": {
            key: (str(value) if isinstance(value, pathlib.Path) else value)
            for key, value in vars(config).items()
        },
    }


def _cpu_model() -> str:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # The harness imports TensorFlow (gRPC request protos): keep its start-up chatter out.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)
    config = config_from(args)
    started = datetime.datetime.now().astimezone()
    config.log_dir.mkdir(parents=True, exist_ok=True)
    if config.setup:
        tools.ensure_load_generators(["wrk", "h2load"])
        tools.ensure_peers(
            [s for s in config.servers if s in PEERS] if "throughput" in config.scenarios else []
        )
    pin_self(config.load_cpu)
    results: dict[str, Any] = {"meta": meta(config, started)}
    print(
        f"bench: servers on CPU {config.server_cpu}, load on CPU {config.load_cpu}; "
        f"logs in {config.log_dir}",
        flush=True,
    )
    if "throughput" in config.scenarios:
        from benchmarks import models, throughput

        cases = models.prepare(config.models, config.work_dir)
        results["throughput"] = throughput.run(config, cases)
    if "hotswap" in config.scenarios:
        from benchmarks import hotswap

        results["hotswap"] = hotswap.run(config)
    if "polling" in config.scenarios:
        from benchmarks import polling

        results["polling"] = polling.run(config)
    if "features" in config.scenarios:
        from benchmarks import features

        results["features"] = features.run(config)
    results["meta"]["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    results["goals"] = goals.evaluate(results, config)
    results["noise"] = goals.noise(results)
    json_path, png_path = report.write(results, config.results_dir, started)
    print(goals.summary(results["goals"]))
    if results["noise"]:
        print(f"\nbench: the server core was shared in {len(results['noise'])} point(s):")
        print("\n".join(f"  {line}" for line in results["noise"]))
    print(f"bench: results in {json_path} and {png_path} (also latest.json, latest.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
