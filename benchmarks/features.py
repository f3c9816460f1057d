"""The cost of issue 16's request-path features, measured side by side on one server core:

- request logging (`logging_config`, sampling rate 1.0, a local directory): REST throughput
  with it against without it (goal: at least 0.9x);
- the response cache (`--response_cache_mb`): a repeated-request load (the same body every
  time, as every throughput point sends) with the cache against without it.

One server per arm, all started first on the same core and the same model; then the load goes to
each in turn in short slices (off, request log, cache; the next slice in the reverse order), so
a slice of the request log always runs right next to one of "off". A feature's ratio is the
median over the slices of its throughput against that of the "off" slice beside it. Why slices:
this VM's throughput drifts by 5-10% from one half-minute to the next, and by 20% now and then;
whole runs of 18 s per arm split such drifts across a pair (medians of 0.89-0.94x over five
rounds for the same code), slices of a few seconds seldom do. An idle server costs the loaded
one nothing measurable (its pollers and the log's writer wake a few times a second).
"""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import statistics
from typing import Any

from benchmarks import loadgen, models
from benchmarks.config import BenchConfig
from benchmarks.servers import Server, metric_sum, scrape, start_tfrelay, wait_available

MODEL = "half_plus_two"
SLICES = 10
START_TIMEOUT = 120.0


def _model_config(path: pathlib.Path, base_path: pathlib.Path, logging: str = "") -> pathlib.Path:
    block = f"logging_config {{ {logging} }}" if logging else ""
    path.write_text(
        f'model_config_list {{ config {{ name: "{MODEL}" base_path: "{base_path}" '
        f'model_platform: "tensorflow" {block} }} }}\n'
    )
    return path


def _load(server: Server, body: pathlib.Path, config: BenchConfig, seconds: float) -> dict:
    return loadgen.rest(
        server.predict_url(MODEL),
        body,
        max(config.concurrency),
        seconds,
        config.load_cpu,
        config.rest_loadgen,
    ).as_dict()


def _counters(server: Server) -> dict[str, float]:
    samples = scrape(server)
    return {
        "logged": metric_sum(samples, ":tfrelay:serving:request_log_records"),
        "log_dropped": metric_sum(samples, ":tfrelay:serving:request_log_dropped"),
        "cache_hits": metric_sum(samples, ":tfrelay:serving:response_cache_hits"),
    }


def _mean(points: list[dict[str, Any]], key: str) -> float:
    return sum(p[key] for p in points) / len(points)


def _paired_ratio(points: dict[str, list[dict[str, Any]]], arm: str) -> tuple[float, list[float]]:
    """The median over slices of arm's throughput against the same slice's "off" run, and the
    per-slice ratios."""
    ratios = [
        on["rps"] / off["rps"] if off["rps"] else 0.0
        for on, off in zip(points[arm], points["off"], strict=True)
    ]
    return statistics.median(ratios), ratios


def run(config: BenchConfig) -> dict[str, Any]:
    """Runs the scenario.

    Returns:
      {"concurrency", "arms": {arm: [points]}, "rps": {arm: mean}, "logging_ratio",
      "cache_ratio" (medians of the per-slice ratios), "logging_ratios", "cache_ratios",
      "counters": {arm: {"logged", "log_dropped", "cache_hits"}}, "failed"}.
    """
    case = models.prepare([MODEL], config.work_dir)[MODEL]
    concurrency = max(config.concurrency)
    scratch = config.work_dir / "features"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    body = scratch / "body.json"
    body.write_bytes(case.body(1))
    plain = _model_config(scratch / "plain.config", case.base_path)
    logged = _model_config(
        scratch / "logged.config",
        case.base_path,
        f'log_collector_config {{ type: "tfrecord" filename_prefix: "{scratch}/logs/requests" }} '
        "sampling_config { sampling_rate: 1.0 }",
    )
    arms = {
        "off": [f"--model_config_file={plain}", *config.tfrelay_flags],
        "request_log": [f"--model_config_file={logged}", *config.tfrelay_flags],
        "response_cache": [
            f"--model_config_file={plain}",
            "--response_cache_mb=64",
            *config.tfrelay_flags,
        ],
    }
    slice_seconds = max(1.0, config.duration / 4)
    points: dict[str, list[dict[str, Any]]] = {name: [] for name in arms}
    print(
        f"features: request log and response cache, {SLICES} slices of {slice_seconds:.1f} s",
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        servers = {}
        for name, flags in arms.items():
            log = config.log_dir / f"features-{name}.log"
            servers[name] = stack.enter_context(
                start_tfrelay(flags, log, config.server_cpu, config.work_dir)
            )
        for server in servers.values():
            wait_available(server, MODEL, None, START_TIMEOUT)
            if config.warmup > 0:
                _load(server, body, config, config.warmup)
        for index in range(SLICES):
            order = list(arms) if index % 2 == 0 else list(reversed(arms))
            for name in order:
                points[name].append(_load(servers[name], body, config, slice_seconds))
            print(
                f"  features slice {index + 1:2}  "
                + "  ".join(f"{name} {points[name][-1]['rps']:8.1f}" for name in arms)
                + " req/s",
                flush=True,
            )
        counters = {name: _counters(server) for name, server in servers.items()}
    rps = {name: _mean(p, "rps") for name, p in points.items()}
    logging_ratio, logging_ratios = _paired_ratio(points, "request_log")
    cache_ratio, cache_ratios = _paired_ratio(points, "response_cache")
    print(
        "  features request log "
        + " ".join(f"{r:.2f}" for r in logging_ratios)
        + f" (median {logging_ratio:.2f}); response cache "
        + " ".join(f"{r:.2f}" for r in cache_ratios)
        + f" (median {cache_ratio:.2f}); logged {counters['request_log']['logged']:.0f}, "
        f"dropped {counters['request_log']['log_dropped']:.0f}, "
        f"cache hits {counters['response_cache']['cache_hits']:.0f}",
        flush=True,
    )
    return {
        "model": MODEL,
        "concurrency": concurrency,
        "slices": SLICES,
        "slice_seconds": slice_seconds,
        "arms": points,
        "rps": rps,
        "logging_ratio": logging_ratio,
        "logging_ratios": logging_ratios,
        "cache_ratio": cache_ratio,
        "cache_ratios": cache_ratios,
        "counters": counters,
        "failed": sum(p["failed"] for arm in points.values() for p in arm),
        "log_dropped": counters["request_log"]["log_dropped"],
    }
