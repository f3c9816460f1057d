"""The cost of issue 16's request-path features, measured side by side on one server core:

- request logging (`logging_config`, sampling rate 1.0, a local directory): REST throughput
  with it against without it (goal: at least 0.9x);
- the response cache (`--response_cache_mb`): a repeated-request load (the same body every
  time, as every throughput point sends) with the cache against without it.

Each arm is a fresh server on the same model. A round runs every arm once, in the order off,
request log, cache, and the next round in the reverse order, so the request log always runs next
to an "off" run. A feature's ratio is the median over the rounds of its run against that round's
"off" run: the machine's drift (this VM's throughput moves by 5-10% from one minute to the next,
and by 20% now and then) falls on both runs of a pair, and the median drops the pair it split.
"""

from __future__ import annotations

import pathlib
import shutil
import statistics
from typing import Any

from benchmarks import loadgen, models
from benchmarks.config import BenchConfig
from benchmarks.servers import Server, metric_sum, scrape, start_tfrelay, wait_available

MODEL = "half_plus_two"
ROUNDS = 5
START_TIMEOUT = 120.0


def _model_config(path: pathlib.Path, base_path: pathlib.Path, logging: str = "") -> pathlib.Path:
    block = f"logging_config {{ {logging} }}" if logging else ""
    path.write_text(
        f'model_config_list {{ config {{ name: "{MODEL}" base_path: "{base_path}" '
        f'model_platform: "tensorflow" {block} }} }}\n'
    )
    return path


def _measure(server: Server, body: pathlib.Path, config: BenchConfig, concurrency: int) -> dict:
    def run(seconds: float) -> loadgen.LoadResult:
        url = server.predict_url(MODEL)
        if config.rest_loadgen == "wrk":
            return loadgen.wrk(url, body, concurrency, seconds, config.load_cpu)
        return loadgen.h2load(
            url,
            body,
            concurrency,
            seconds,
            config.load_cpu,
            headers=loadgen.JSON_HEADERS,
            http1=True,
        )

    if config.warmup > 0:
        run(config.warmup)
    return run(config.duration).as_dict()


def _arm(
    name: str, flags: list[str], body: pathlib.Path, config: BenchConfig, concurrency: int
) -> dict[str, Any]:
    log = config.log_dir / f"features-{name}.log"
    with start_tfrelay(flags, log, config.server_cpu, config.work_dir) as server:
        wait_available(server, MODEL, None, START_TIMEOUT)
        point = _measure(server, body, config, concurrency)
        samples = scrape(server)
        point["logged"] = metric_sum(samples, ":tfrelay:serving:request_log_records")
        point["log_dropped"] = metric_sum(samples, ":tfrelay:serving:request_log_dropped")
        point["cache_hits"] = metric_sum(samples, ":tfrelay:serving:response_cache_hits")
    print(
        f"  features {name:13} c={concurrency:<3} {point['rps']:9.1f} req/s  "
        f"p50 {point['p50_ms']:6.2f} ms  p99 {point['p99_ms']:6.2f} ms  failed {point['failed']}"
        f"  logged {point['logged']:.0f} dropped {point['log_dropped']:.0f}"
        f"  cache hits {point['cache_hits']:.0f}",
        flush=True,
    )
    return point


def _mean(points: list[dict[str, Any]], key: str) -> float:
    return sum(p[key] for p in points) / len(points)


def _paired_ratio(points: dict[str, list[dict[str, Any]]], arm: str) -> tuple[float, list[float]]:
    """The median over rounds of arm's throughput against the same round's "off" run, and the
    per-round ratios."""
    ratios = [
        on["rps"] / off["rps"] if off["rps"] else 0.0
        for on, off in zip(points[arm], points["off"], strict=True)
    ]
    return statistics.median(ratios), ratios


def run(config: BenchConfig) -> dict[str, Any]:
    """Runs the scenario.

    Returns:
      {"concurrency", "arms": {arm: [points]}, "rps": {arm: mean}, "logging_ratio",
      "cache_ratio" (medians of the per-round ratios), "logging_ratios", "cache_ratios",
      "failed"}.
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
    points: dict[str, list[dict[str, Any]]] = {name: [] for name in arms}
    print(f"features: request log and response cache, {ROUNDS} rounds", flush=True)
    for round_index in range(ROUNDS):
        order = list(arms) if round_index % 2 == 0 else list(reversed(arms))
        for name in order:
            points[name].append(_arm(name, arms[name], body, config, concurrency))
    rps = {name: _mean(p, "rps") for name, p in points.items()}
    logging_ratio, logging_ratios = _paired_ratio(points, "request_log")
    cache_ratio, cache_ratios = _paired_ratio(points, "response_cache")
    print(
        "  features request log "
        + " ".join(f"{r:.2f}" for r in logging_ratios)
        + f" (median {logging_ratio:.2f}); response cache "
        + " ".join(f"{r:.2f}" for r in cache_ratios)
        + f" (median {cache_ratio:.2f})",
        flush=True,
    )
    return {
        "model": MODEL,
        "concurrency": concurrency,
        "rounds": ROUNDS,
        "arms": points,
        "rps": rps,
        "logging_ratio": logging_ratio,
        "logging_ratios": logging_ratios,
        "cache_ratio": cache_ratio,
        "cache_ratios": cache_ratios,
        "failed": sum(p["failed"] for arm in points.values() for p in arm),
        "log_dropped": sum(p["log_dropped"] for p in points["request_log"]),
    }
