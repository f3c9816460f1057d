"""Issue 8's goals, checked against one run's results, each as a measured ratio.

A goal whose figures the run did not measure (a scenario, server or model left out) is
"skipped", never passed.
"""

from __future__ import annotations

from typing import Any

from benchmarks.config import BenchConfig

PASS, FAIL, SKIP, INFO = "pass", "FAIL", "skipped", "info"


def _goal(name: str, target: str, measured: str, ok: bool | None) -> dict[str, Any]:
    return {
        "goal": name,
        "target": target,
        "measured": measured,
        "status": SKIP if ok is None else PASS if ok else FAIL,
    }


def _point(
    points: list[dict[str, Any]],
    server: str,
    model: str,
    concurrency: int,
    protocol: str = "rest",
    instances: int = 1,
) -> dict[str, Any] | None:
    for p in points:
        if (p["server"], p["model"], p["concurrency"], p["protocol"], p["instances"]) == (
            server,
            model,
            concurrency,
            protocol,
            instances,
        ):
            return p
    return None


def _throughput_goals(results: dict[str, Any], config: BenchConfig) -> list[dict[str, Any]]:
    throughput = results.get("throughput", {})
    points = throughput.get("points", [])
    out = []
    for model in config.models:
        ours, kserve = _point(points, "tfrelay", model, 64), _point(points, "kserve", model, 64)
        if ours and kserve and kserve["rps"]:
            ratio = ours["rps"] / kserve["rps"]
            out.append(
                _goal(
                    # KServe calls the model through the prepared session callable
                    # (peers/tfmodel.py), its strongest honest form (issue 14).
                    f"REST 64 conns, {model}: >= 3x KServe req/s, p99 <= 30 ms",
                    "ratio >= 3.0, p99 <= 30 ms",
                    f"{ratio:.2f}x ({ours['rps']:.0f} vs {kserve['rps']:.0f} req/s), "
                    f"p99 {ours['p99_ms']:.1f} ms",
                    ratio >= 3.0 and ours["p99_ms"] <= 30.0 and ours["failed"] == 0,
                )
            )
        else:
            out.append(_goal(f"REST 64 conns, {model}: >= 3x KServe", "ratio >= 3.0", "-", None))
        ours, kserve = _point(points, "tfrelay", model, 1), _point(points, "kserve", model, 1)
        if ours and kserve and kserve["p50_ms"]:
            ratio = ours["p50_ms"] / kserve["p50_ms"]
            out.append(
                _goal(
                    f"REST 1 conn, {model}: p50 <= 0.5x KServe's",
                    "ratio <= 0.5",
                    f"{ratio:.2f}x ({ours['p50_ms']:.3f} vs {kserve['p50_ms']:.3f} ms)",
                    ratio <= 0.5,
                )
            )
        else:
            out.append(_goal(f"REST 1 conn, {model}: p50 <= 0.5x KServe's", "<= 0.5", "-", None))
        same_client = throughput.get("rest_same_client_as_grpc", [])
        for concurrency in config.concurrency:
            rest_wrk = _point(points, "tfrelay", model, concurrency)
            rest = _point(same_client, "tfrelay", model, concurrency) or rest_wrk
            grpc = _point(points, "tfrelay", model, concurrency, "grpc")
            name = f"gRPC >= REST, {model}, {concurrency} conns (req/s, same load generator)"
            if rest and grpc and rest["rps"]:
                ratio = grpc["rps"] / rest["rps"]
                # Both from the same run, REST by the same load generator as gRPC (h2load) unless
                # only wrk's figure exists; p99s given beside (issue 14: the goal is req/s).
                measured = f"{ratio:.2f}x ({grpc['rps']:.0f} vs {rest['rps']:.0f} req/s"
                measured += f", p99 {grpc['p99_ms']:.2f} vs {rest['p99_ms']:.2f} ms"
                measured += f", both {rest['tool']}" if rest["tool"] == "h2load" else ""
                if rest_wrk and rest_wrk is not rest and rest_wrk["rps"]:
                    measured += f"; {grpc['rps'] / rest_wrk['rps']:.2f}x REST by wrk"
                out.append(
                    _goal(
                        name, "ratio >= 1.0", measured + ")", ratio >= 1.0 and grpc["failed"] == 0
                    )
                )
            else:
                out.append(_goal(name, "ratio >= 1.0", "-", None))
        ceiling = throughput.get("ceiling", {}).get(model)
        batched = [
            p
            for p in points
            if p["server"] == "tfrelay"
            and p["model"] == model
            and p["protocol"] == "rest"
            and p["instances"] == config.batch_instances
        ]
        name = (
            f"{config.batch_instances}-instance requests, {model}: >= 50% of the in-process "
            "batch ceiling (predictions/s)"
        )
        if ceiling and batched:
            best = max(batched, key=lambda p: p["predictions_per_s"])
            # The strong ceiling (issue 14): the prepared session callable, the fastest way
            # Python can call the model, on the server's own stack; the eager signature's
            # figure (`signature_batch`, 3.6x lower for half_plus_two on TF 2.21) was the
            # ceiling before and is named beside it.
            top = ceiling["session_batch"]["predictions_per_s"]
            eager = ceiling.get("signature_batch", {}).get("predictions_per_s")
            ratio = best["predictions_per_s"] / top
            # Batching is on by default; only an explicit "false" turns it off.
            batching = "--enable_batching=false" not in config.tfrelay_flags
            measured = (
                f"{ratio:.2f}x ({best['predictions_per_s']:.0f} vs {top:.0f}/s, "
                f"{best['concurrency']} conns, batching {'on' if batching else 'off'}"
            )
            if eager:
                measured += f"; {best['predictions_per_s'] / eager:.2f}x the eager signature's"
            out.append(
                _goal(name, "ratio >= 0.5", measured + ")", ratio >= 0.5 and best["failed"] == 0)
            )
        else:
            out.append(_goal(name, "ratio >= 0.5", "-", None))
        out.append(_one_call_goal(points, ceiling, model))
    return out


def _one_call_goal(
    points: list[dict[str, Any]], ceiling: dict[str, Any] | None, model: str
) -> dict[str, Any]:
    """Reported, not a target of issue 8: tfrelay's best one-instance req/s against the
    in-process one-call ceiling (prepared callable), which no server can exceed on one core
    (every request also pays HTTP, parsing and scheduling).

    Args:
      points: the throughput points.
      ceiling: the model's ceiling on the serving stack, or None.
      model: the model.

    Returns:
      The row, status "info" (a figure, not a requirement) or "skipped".
    """
    name = f"1-instance requests, {model}: best tfrelay req/s vs the one-call ceiling (figure)"
    ours = [
        p
        for p in points
        if p["server"] == "tfrelay" and p["model"] == model and p["instances"] == 1
    ]
    if not ceiling or not ours:
        return _goal(name, "reported", "-", None)
    best = max(ours, key=lambda p: p["rps"])
    top = ceiling["session_one"]["calls_per_s"]
    row = _goal(
        name,
        "reported",
        f"{best['rps'] / top:.2f}x ({best['rps']:.0f} req/s, {best['protocol']} "
        f"{best['concurrency']} conns, vs {top:.0f} calls/s)",
        True,
    )
    row["status"] = INFO
    return row


def _hotswap_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    swap = results.get("hotswap")
    if not swap:
        return [
            _goal(f"hot swap: {name}", target, "-", None)
            for name, target in (
                ("0 failed requests", "0"),
                ("p99 during swaps <= 1.5x steady", "<= 1.5"),
                ("RSS after last swap within 10% of after the first", "|change| <= 10%"),
            )
        ]
    swaps = swap["swaps_done"]
    p99_ratio = (
        swap["during"]["p99_ms"] / swap["steady"]["p99_ms"] if swap["steady"]["p99_ms"] else 0
    )
    rss_change = swap["rss_change"]
    return [
        _goal(
            f"hot swap: 0 failed requests over {swaps} swaps",
            "0",
            f"{swap['failed']} of {swap['requests']}",
            swap["failed"] == 0 and swaps == swap["swaps_requested"],
        ),
        _goal(
            "hot swap: p99 during swaps <= 1.5x steady",
            "ratio <= 1.5",
            f"{p99_ratio:.2f}x ({swap['during']['p99_ms']:.1f} vs {swap['steady']['p99_ms']:.1f} ms)",
            p99_ratio <= 1.5,
        ),
        _goal(
            f"hot swap: RSS after swap {swaps} within 10% of after swap 1",
            "|change| <= 10%",
            f"{rss_change * 100:+.1f}% ({swap['rss_after_first_mb']:.0f} -> "
            f"{swap['rss_after_last_mb']:.0f} MB)",
            abs(rss_change) <= 0.10,
        ),
    ]


def _polling_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    polling = results.get("polling")
    name = "polling: one listing per model per poll, whatever the bucket holds"
    if not polling or not polling.get("models"):
        return [_goal(name, "1.0", "-", None)]
    per_poll = [m["listings_per_poll"] for m in polling["models"]]
    counted = [m["s3_list_requests_per_poll"] for m in polling["models"]]
    worst = max(per_poll)
    return [
        _goal(
            name,
            "1 (server metrics and moto's log, rounded)",
            f"max {worst:.2f} (server metrics), max {max(counted):.2f} (moto's log), "
            f"over {len(per_poll)} buckets of {min(m['objects'] for m in polling['models'])}-"
            f"{max(m['objects'] for m in polling['models'])} objects",
            # A poll in flight at either end of the window shifts a count by one: round.
            all(0.5 <= v < 1.5 for v in per_poll + counted),
        )
    ]


def _slices(features: dict[str, Any], key: str) -> str:
    """The per-slice ratios, for the report ("?" in results from before they were kept)."""
    ratios = features.get(key)
    return "slices " + (" ".join(f"{r:.2f}" for r in ratios) if ratios else "?")


def _feature_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    features = results.get("features")
    logging_name = "request log at sampling rate 1.0: REST throughput >= 0.9x without"
    cache_name = "response cache on a repeated-request load: throughput >= 1.0x without"
    if not features:
        return [_goal(logging_name, ">= 0.9", "-", None), _goal(cache_name, ">= 1.0", "-", None)]
    rps = features["rps"]
    return [
        _goal(
            logging_name,
            "ratio >= 0.9 (issue 16; median of paired slices)",
            f"{features['logging_ratio']:.2f}x ({_slices(features, 'logging_ratios')}; "
            f"{rps['request_log']:.0f} vs {rps['off']:.0f} req/s, c={features['concurrency']}, "
            f"{features['log_dropped']:.0f} records dropped)",
            features["logging_ratio"] >= 0.9 and features["failed"] == 0,
        ),
        _goal(
            cache_name,
            "ratio >= 1.0 (median of paired slices)",
            f"{features['cache_ratio']:.2f}x ({_slices(features, 'cache_ratios')}; "
            f"{rps['response_cache']:.0f} vs {rps['off']:.0f} req/s)",
            features["cache_ratio"] >= 1.0 and features["failed"] == 0,
        ),
    ]


def evaluate(results: dict[str, Any], config: BenchConfig) -> list[dict[str, Any]]:
    """Every goal with its measured figure and pass / FAIL / skipped."""
    return [
        *_throughput_goals(results, config),
        *_hotswap_goals(results),
        *_polling_goals(results),
        *_feature_goals(results),
    ]


def noise(results: dict[str, Any], threshold: float = 0.1) -> list[str]:
    """Points where other work took more than `threshold` of the server core (a busy machine):
    their figures are lower than the server can do."""
    warnings = []
    for p in results.get("throughput", {}).get("points", []):
        other = p.get("server_core_busy", 0.0) - p.get("server_cpu", 0.0)
        if other > threshold:
            warnings.append(
                f"{p['server']} {p['protocol']} {p['model']} c={p['concurrency']} "
                f"x{p['instances']}: other work took {other:.0%} of the server core"
            )
    return warnings


def summary(goals: list[dict[str, Any]]) -> str:
    """The goals as a plain-text table."""
    width = max(len(g["goal"]) for g in goals)
    lines = ["", "Issue 8 goals (this run, ratios measured side by side):"]
    for g in goals:
        lines.append(f"  {g['status']:7}  {g['goal']:{width}}  {g['measured']}")
    passed = sum(g["status"] == PASS for g in goals)
    failed = sum(g["status"] == FAIL for g in goals)
    skipped = sum(g["status"] == SKIP for g in goals)
    counted = sum(g["status"] != INFO for g in goals)
    lines.append(f"  {passed} of {counted} goals passed ({failed} failed, {skipped} skipped)")
    return "\n".join(lines)
