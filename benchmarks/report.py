"""Results on disk: `<results_dir>/<timestamp>.json` and `.png`, copied to `latest.json` and
`latest.png`."""

from __future__ import annotations

import datetime
import json
import pathlib
import shutil
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SERIES = (  # (server, protocol, label, color)
    ("tfrelay", "rest", "tfrelay REST", "#1f77b4"),
    ("tfrelay", "grpc", "tfrelay gRPC", "#17becf"),
    ("kserve", "rest", "KServe", "#ff7f0e"),
    ("fastapi", "rest", "FastAPI", "#2ca02c"),
    ("bentoml", "rest", "BentoML", "#d62728"),
)


def write(
    results: dict[str, Any], results_dir: pathlib.Path, started: datetime.datetime
) -> tuple[pathlib.Path, pathlib.Path]:
    """Writes the JSON and the chart; returns their dated paths."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y-%m-%dT%H%M%S")
    json_path = results_dir / f"{stamp}.json"
    png_path = results_dir / f"{stamp}.png"
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    chart(results, png_path)
    shutil.copyfile(json_path, results_dir / "latest.json")
    shutil.copyfile(png_path, results_dir / "latest.png")
    return json_path, png_path


def _points(results: dict[str, Any]) -> list[dict[str, Any]]:
    return results.get("throughput", {}).get("points", [])


def _bars(ax, groups: list[str], series: list[tuple[str, str, list[float | None]]]) -> None:
    """Grouped bars: one group per label in `groups`, one bar per (label, color, values)."""
    width = 0.8 / max(1, len(series))
    for i, (label, color, values) in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [v or 0 for v in values], width, label=label, color=color)
    ax.set_xticks(range(len(groups)), groups)


def _throughput_panel(ax, results: dict[str, Any], model: str) -> None:
    points = [p for p in _points(results) if p["model"] == model and p["instances"] == 1]
    concurrencies = sorted({p["concurrency"] for p in points})
    series = []
    for server, protocol, label, color in SERIES:
        values = []
        for c in concurrencies:
            match = [
                p["rps"]
                for p in points
                if (p["server"], p["protocol"], p["concurrency"]) == (server, protocol, c)
            ]
            values.append(match[0] if match else None)
        if any(v is not None for v in values):
            series.append((label, color, values))
    _bars(ax, [f"{c} conn" for c in concurrencies], series)
    ceiling = results.get("throughput", {}).get("ceiling", {}).get(model)
    if ceiling:
        calls = ceiling["session_one"]["calls_per_s"]
        ax.axhline(calls, color="grey", linestyle="--", linewidth=1)
        ax.text(-0.45, calls, f" in-process, one call: {calls:,.0f}/s", va="bottom", fontsize=7)
    ax.set_title(f"{model}: req/s, 1 instance per request")
    ax.set_ylabel("requests/s")
    ax.legend(fontsize=7)


def _p99_panel(ax, results: dict[str, Any], models: list[str]) -> None:
    points = _points(results)
    top = max((p["concurrency"] for p in points), default=64)
    series = []
    for server, protocol, label, color in SERIES:
        values = []
        for model in models:
            match = [
                p["p99_ms"]
                for p in points
                if (p["server"], p["protocol"], p["model"], p["concurrency"], p["instances"])
                == (server, protocol, model, top, 1)
            ]
            values.append(match[0] if match else None)
        if any(v is not None for v in values):
            series.append((label, color, values))
    _bars(ax, models, series)
    ax.axhline(30, color="grey", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    ax.set_title(f"p99 latency at {top} connections (goal: 30 ms)")
    ax.set_ylabel("ms")
    ax.legend(fontsize=7)


def _batch_panel(ax, results: dict[str, Any], models: list[str]) -> None:
    points = [p for p in _points(results) if p["instances"] > 1]
    ceiling = results.get("throughput", {}).get("ceiling", {})
    series = [
        (
            "in-process ceiling (prepared callable)",
            "grey",
            [ceiling.get(m, {}).get("session_batch", {}).get("predictions_per_s") for m in models],
        )
    ]
    for server, protocol, label, color in SERIES:
        values = []
        for model in models:
            match = [
                p["predictions_per_s"]
                for p in points
                if (p["server"], p["protocol"], p["model"]) == (server, protocol, model)
            ]
            values.append(max(match) if match else None)
        if any(v is not None for v in values):
            series.append((label, color, values))
    _bars(ax, models, series)
    instances = points[0]["instances"] if points else 64
    ax.set_title(f"{instances}-instance requests: predictions/s (goal: 50% of the ceiling)")
    ax.set_ylabel("predictions/s")
    ax.legend(fontsize=7)


def _hotswap_panel(ax, results: dict[str, Any]) -> None:
    swap = results.get("hotswap")
    if not swap:
        ax.set_axis_off()
        return
    samples = swap.get("prober_samples", [])
    ax.plot([s[0] for s in samples], [s[1] for s in samples], ".", markersize=2, color="#1f77b4")
    for swap_event in swap.get("swaps", []):
        ax.axvline(swap_event["published_at_s"], color="#ff7f0e", linewidth=0.6)
    ax.axvline(swap.get("swaps_started_at_s", 0), color="black", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    ax.set_title(
        f"hot swap: prober latency; {swap['swaps_done']} publishes (orange), "
        f"{swap['failed']} failed of {swap['requests']}",
        fontsize=9,
    )
    ax.set_xlabel("s since load started")
    ax.set_ylabel("ms")


def _polling_panel(ax, results: dict[str, Any]) -> None:
    polling = results.get("polling")
    if not polling or not polling.get("models"):
        ax.set_axis_off()
        return
    models = sorted(polling["models"], key=lambda m: m["objects"])
    groups = [f"{m['versions']}v x {m['files_per_version']}f" for m in models]
    _bars(
        ax,
        groups,
        [
            ("listings/poll (server)", "#1f77b4", [m["listings_per_poll"] for m in models]),
            ("LIST/poll (moto log)", "#17becf", [m["s3_list_requests_per_poll"] for m in models]),
            (
                "other S3 requests/poll",
                "#d62728",
                [m["s3_other_requests_per_poll"] for m in models],
            ),
        ],
    )
    ax.tick_params(axis="x", labelsize=7)
    top = max(max(m["listings_per_poll"], m["s3_list_requests_per_poll"]) for m in models)
    ax.set_ylim(0, max(1.6, top * 1.3))  # room for the legend
    ax.set_title("polling cost on S3 per model per poll (goal: 1 listing)")
    ax.legend(fontsize=7)


def chart(results: dict[str, Any], path: pathlib.Path) -> None:
    """One PNG with every scenario's main figures."""
    models = list(dict.fromkeys(p["model"] for p in _points(results)))
    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    for ax, model in zip(axes[0][:2], models[:2], strict=False):
        _throughput_panel(ax, results, model)
    for ax in axes[0][len(models) : 2]:
        ax.set_axis_off()
    if models:
        _p99_panel(axes[0][2], results, models)
        _batch_panel(axes[1][0], results, models)
    else:
        axes[0][2].set_axis_off()
        axes[1][0].set_axis_off()
    _hotswap_panel(axes[1][1], results)
    _polling_panel(axes[1][2], results)
    meta = results.get("meta", {})
    flags = " ".join(meta.get("tfrelay_flags", [])) or "(defaults)"
    fig.suptitle(
        f"tfrelay benchmark {meta.get('started', '')} at {meta.get('git_commit', '')}; "
        f"server on CPU {meta.get('method', {}).get('server_cpu')}, load on CPU "
        f"{meta.get('method', {}).get('load_cpu')}; tfrelay flags: {flags}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
