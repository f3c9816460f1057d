"""The Optimizer's report: `report.json` (every figure, before and after) and `report.png` (the
same figures as a chart a person reads at a glance).

Rows ("models") are the original first, then the model after each technique, the last one
being what the Optimizer outputs. "result" compares the last with the first.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence

import tensorflow as tf

from tfrelay.components.optimizer.measure import Measurement

REPORT_JSON = "report.json"
REPORT_PNG = "report.png"


def _ratio(before: float, after: float) -> float | None:
    return round(before / after, 3) if after else None


def summarize(
    models: Sequence[Measurement],
    techniques: Sequence[Mapping],
    max_accuracy_drop: float,
    blessed: bool,
    failed_checks: Sequence[str],
    model_uri: str,
    optimized_uri: str,
    description: str,
) -> dict:
    """The report's content (JSON-ready)."""
    original, final = models[0], models[-1]
    drop = original.accuracy - final.accuracy
    return {
        "model_uri": model_uri,
        "optimized_model_uri": optimized_uri,
        "techniques": [dict(t) for t in techniques],
        "description": description,
        "max_accuracy_drop": max_accuracy_drop,
        "blessed": blessed,
        "failed_checks": list(failed_checks),
        "models": [m.to_json() for m in models],
        "result": {
            "accuracy_before": round(original.accuracy, 6),
            "accuracy_after": round(final.accuracy, 6),
            "accuracy_drop": round(drop, 6),
            "agreement": round(final.agreement, 6),
            "size_ratio": _ratio(original.size_bytes, final.size_bytes),
            "gzipped_size_ratio": _ratio(original.gzipped_bytes, final.gzipped_bytes),
            "latency_single_speedup": _ratio(original.latency_single_ms, final.latency_single_ms),
            "latency_batch_speedup": _ratio(original.latency_batch_ms, final.latency_batch_ms),
        },
        "method": {
            "size": "bytes of the SavedModel (saved_model.pb, variables, assets; not "
            "assets.extra) or of model.tflite; gzipped: the same bytes (tarred) at gzip level 9",
            "latency": "median of in-process calls of serving_default on raw features, after "
            "warm-up calls; SavedModels through tf.saved_model.load, TFLite through "
            "tf.lite.Interpreter with one thread",
            "weights": "a SavedModel's variables/ directory, the part pruning and clustering "
            "change (the graph does not shrink)",
            "accuracy": "share of eval examples whose predicted class is the label",
            "agreement": "share of eval examples given the same class as the original model",
        },
    }


def skipped(reason: str, model_uri: str, techniques: Sequence[Mapping]) -> dict:
    """The report when nothing was optimized (the input model was not blessed)."""
    return {
        "model_uri": model_uri,
        "techniques": [dict(t) for t in techniques],
        "blessed": False,
        "failed_checks": [reason],
        "skipped": reason,
        "models": [],
    }


def _kb(size: float) -> str:
    return f"{size / 1000:.0f} kB" if size >= 10_000 else f"{size / 1000:.1f} kB"


def plot(report: Mapping) -> bytes:
    """Draws the report as PNG bytes: size (gzipped and on disk), latency (one example and a
    batch) and accuracy, one bar per model, with each model's gain or loss written on it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    models = report.get("models") or []
    if not models:
        fig, ax = plt.subplots(figsize=(8, 2))
        ax.axis("off")
        ax.text(
            0.5,
            0.5,
            f"Nothing optimized:\n{report.get('skipped', '')}",
            ha="center",
            va="center",
            wrap=True,
        )
        return _png(fig, plt)
    names = [m["name"] for m in models]
    blessed = report["blessed"]
    final_color = "#2e7d32" if blessed else "#c62828"
    colors = ["#9e9e9e"] + ["#90caf9"] * (len(models) - 2) + [final_color]
    if len(models) == 1:
        colors = [final_color]
    panels = [
        ("Size, gzipped (kB)", [m["gzipped_bytes"] / 1000 for m in models], "smaller", True),
        ("Size on disk (kB)", [m["size_bytes"] / 1000 for m in models], "smaller", True),
        ("Latency, 1 example (ms)", [m["latency_single_ms"] for m in models], "faster", True),
        (
            f"Latency, batch of {models[0]['batch_size']} (ms)",
            [m["latency_batch_ms"] for m in models],
            "faster",
            True,
        ),
        ("Accuracy (%)", [m["accuracy"] * 100 for m in models], "", False),
    ]
    # Four inches a panel fit five bars and their labels; more bars widen it (0.75 in. each) and
    # tilt their names further.
    crowded = len(models) > 5
    panel_width = max(4.0, 0.75 * len(models))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(panel_width * len(panels), 5.2 if crowded else 4.6)
    )
    for ax, (title, values, better, lower_is_better) in zip(axes, panels, strict=True):
        bars = ax.bar(range(len(values)), values, color=colors)
        ax.set_title(title, fontsize=11)
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels(names, rotation=35 if crowded else 20, ha="right", fontsize=9)
        top = max(values) if values else 1
        ax.set_ylim(0, top * 1.25 if top else 1)
        for index, (bar, value) in enumerate(zip(bars, values, strict=True)):
            label = (
                f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:.0f}"
            )
            if index and lower_is_better and value:
                factor = values[0] / value
                label += (
                    f"\n{factor:.1f}x {better}" if factor >= 1 else f"\n{1 / factor:.1f}x worse"
                )
            elif index and not lower_is_better:
                label += f"\n{value - values[0]:+.1f} pt"
            ax.text(
                bar.get_x() + bar.get_width() / 2,
                bar.get_height(),
                label,
                ha="center",
                va="bottom",
                fontsize=8,
            )
        if not lower_is_better:
            low = min(values)
            ax.set_ylim(max(0.0, low - 10), 100.5)
        ax.spines[["top", "right"]].set_visible(False)
    result = report["result"]
    verdict = "BLESSED" if blessed else "NOT BLESSED"
    change = -result["accuracy_drop"] * 100
    fig.suptitle(
        f"Optimizer: {report['description']} — {verdict}: accuracy "
        f"{'+' if change >= 0 else '-'}{abs(change):.2f} pt (limit "
        f"-{report['max_accuracy_drop'] * 100:.2f} pt), gzipped "
        f"{result['gzipped_size_ratio']:.1f}x smaller; {models[-1]['eval_examples']} eval "
        "examples, latency in-process",
        fontsize=12,
        color=final_color,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return _png(fig, plt)


def _png(fig, plt) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write(report: Mapping, directory: str) -> tuple[str, str]:
    """Writes report.json and report.png into `directory` (local, gs://...); returns their
    paths."""
    tf.io.gfile.makedirs(directory)
    json_path = os.path.join(directory, REPORT_JSON)
    with tf.io.gfile.GFile(json_path, "w") as f:
        f.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    png_path = os.path.join(directory, REPORT_PNG)
    with tf.io.gfile.GFile(png_path, "wb") as f:
        f.write(plot(report))
    return json_path, png_path


def table(report: Mapping) -> str:
    """The report's models as a Markdown table (for logs and the README)."""
    rows = [
        "| model | format | size | gzipped | weights gzipped | latency 1 ex. | latency batch "
        "| accuracy |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    models = report.get("models") or []
    for m in models:
        base = models[0]
        gz = f"{_kb(m['gzipped_bytes'])}"
        if m is not base:
            gz += f" ({base['gzipped_bytes'] / m['gzipped_bytes']:.1f}x smaller)"
        weights = "-"
        if m.get("weights_gzipped_bytes"):
            weights = _kb(m["weights_gzipped_bytes"])
            if m is not base and base.get("weights_gzipped_bytes"):
                factor = base["weights_gzipped_bytes"] / m["weights_gzipped_bytes"]
                weights += f" ({factor:.1f}x smaller)"
        rows.append(
            f"| {m['name']} | {m['format']} | {_kb(m['size_bytes'])} | {gz} | {weights} | "
            f"{m['latency_single_ms']:.2f} ms | {m['latency_batch_ms']:.2f} ms "
            f"({m['batch_size']}) | {m['accuracy'] * 100:.2f}% |"
        )
    return "\n".join(rows)
