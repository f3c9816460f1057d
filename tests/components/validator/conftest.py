"""The penguin eval examples the shadow validation tests build their logged requests from."""

from __future__ import annotations

import glob
import os
import random

import pytest
import tensorflow as tf

from tfrelay.pipelines.datasets import penguins


def eval_examples(examples_artifact, limit: int = 64) -> list[tf.train.Example]:
    """The first `limit` eval examples that have every feature (so Predict can send them)."""
    files = sorted(glob.glob(os.path.join(examples_artifact.uri, "Split-eval", "*")))
    found = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        example = tf.train.Example.FromString(record)
        if all(k in example.features.feature for k in penguins.FEATURE_KEYS):
            found.append(example)
        if len(found) == limit:
            break
    return found


@pytest.fixture(scope="session")
def penguin_eval_examples(penguin_examples) -> list[tf.train.Example]:
    # Shuffled (seeded): the examples come sorted by species, and traffic holds all three.
    examples = eval_examples(penguin_examples, limit=1000)
    random.Random(16).shuffle(examples)
    return examples
