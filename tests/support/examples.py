"""Real TFX Examples artifacts, built in a temp dir the way ExampleGen lays them out."""

from __future__ import annotations

import csv
import os
import pathlib
from collections.abc import Sequence

import tensorflow as tf
from tfx.types import standard_artifacts

SPLITS = ("train", "eval")


def _column_kinds(rows: Sequence[dict[str, str]]) -> dict[str, str]:
    """CsvExampleGen's per-column typing: int if every value is an integer, else float if every
    value is a number, else bytes (empty cells are missing values)."""
    kinds: dict[str, str] = {}
    for key in rows[0] if rows else {}:
        values = [r[key] for r in rows if r.get(key, "") != ""]
        kind = "int"
        for value in values:
            try:
                int(value)
                continue
            except ValueError:
                pass
            try:
                float(value)
                kind = "float"
            except ValueError:
                kind = "bytes"
                break
        kinds[key] = kind
    return kinds


def _example(row: dict[str, str], kinds: dict[str, str]) -> tf.train.Example:
    example = tf.train.Example()
    for key, value in row.items():
        if value == "":
            continue  # missing, as CsvExampleGen leaves it
        feature = example.features.feature[key]
        if kinds[key] == "int":
            feature.int64_list.value.append(int(value))
        elif kinds[key] == "float":
            feature.float_list.value.append(float(value))
        else:
            feature.bytes_list.value.append(value.encode())
    return example


def write_examples(
    uri: str | os.PathLike, splits: dict[str, Sequence[dict[str, str]]]
) -> standard_artifacts.Examples:
    """Writes GZIP TFRecords per split (`Split-<name>/data_tfrecord-00000-of-00001.gz`)."""
    examples = standard_artifacts.Examples()
    examples.uri = str(uri)
    examples.split_names = "[" + ",".join(f'"{s}"' for s in splits) + "]"
    kinds = _column_kinds([row for rows in splits.values() for row in rows])
    for split, rows in splits.items():
        directory = pathlib.Path(uri) / f"Split-{split}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "data_tfrecord-00000-of-00001.gz"
        with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
            for row in rows:
                writer.write(_example(row, kinds).SerializeToString())
    return examples


def examples_from_csv(
    csv_path: str | os.PathLike, uri: str | os.PathLike, eval_every: int = 3
) -> standard_artifacts.Examples:
    """A CSV as train/eval Examples (every `eval_every`-th row to eval, like ExampleGen's 2:1)."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    train = [r for i, r in enumerate(rows) if i % eval_every]
    evaluation = [r for i, r in enumerate(rows) if not i % eval_every]
    return write_examples(uri, {"train": train, "eval": evaluation})


__all__ = ["examples_from_csv", "write_examples"]
