"""scikit-learn's bundled digits (1797 8x8 grey-level images of the digits 0-9, no download) as
CSV for CsvExampleGen, and a small CNN core for the Trainer.

Each row is one image: 64 integer pixel columns `pixel_00` ... `pixel_63` (row-major, values
0-16) and the `label` (0-9). The zero-padded names sort in pixel order, so the Trainer's
default feature order (sorted names) is already the image's; `FEATURE_KEYS` spells it out.

Train the CNN with the Trainer's `core_model_fn`, and distill it into `MLP_STUDENT` with the
Optimizer (`Distill(student=digits.MLP_STUDENT, epochs=40)`):

```python
Trainer(examples=..., label_key=digits.LABEL_KEY, feature_keys=digits.FEATURE_KEYS,
        core_model_fn=digits.CORE_MODEL_FN, epochs=12, learning_rate=0.001)
```
"""

from __future__ import annotations

import csv
import os
import pathlib
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tf_keras as keras

LABEL_KEY = "label"
SIDE = 8
FEATURE_KEYS = [f"pixel_{index:02d}" for index in range(SIDE * SIDE)]
CORE_MODEL_FN = "tfrelay.pipelines.datasets.digits:build_cnn"
# A student without convolutions for the Optimizer's Distill (issue 18): 2.3x faster than the CNN
# for 128 examples in process, where the CNN's width-0.25 variant reaches 1.7x.
MLP_STUDENT = "tfrelay.pipelines.datasets.digits:mlp_student"
_SHUFFLE_SEED = 20240607


def read_rows(shuffle: bool = True) -> list[dict[str, str]]:
    """Every image as {column: value} (shuffled with a fixed seed: the bundled data is ordered
    by writer, and CsvExampleGen splits by hash anyway)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    rows = []
    for image, label in zip(bunch.data, bunch.target, strict=True):
        row = {name: str(int(value)) for name, value in zip(FEATURE_KEYS, image, strict=True)}
        row[LABEL_KEY] = str(int(label))
        rows.append(row)
    if shuffle:
        random.Random(_SHUFFLE_SEED).shuffle(rows)
    return rows


def write_all(data_root: str | os.PathLike) -> pathlib.Path:
    """Every image in one file: `<data_root>/digits.csv` (directories created)."""
    path = pathlib.Path(data_root) / "digits.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[LABEL_KEY, *FEATURE_KEYS])
        writer.writeheader()
        writer.writerows(read_rows())
    return path


def build_cnn(input_width: int, num_outputs: int, config: object = None) -> keras.Model:
    """A small CNN over the 8x8 image (about 284k parameters), for the Trainer's core_model_fn.

    Two 3x3 convolutions (32 and 64 filters), 2x2 max pooling, a 256-unit dense layer with
    dropout, and a softmax over the classes. Every layer is one tensorflow-model-optimization
    prunes, clusters and quantizes.

    Args:
      input_width: the preprocessed feature vector's width; must be 64 (the pixels, in order).
      num_outputs: the number of classes.
      config: the Trainer's TabularConfig (unused).

    Raises:
      ValueError: the input is not the 64 pixels.
    """
    import tf_keras as keras  # here, so writing the CSV does not load TensorFlow

    if input_width != SIDE * SIDE:
        raise ValueError(
            f"The digits CNN reads the {SIDE * SIDE} pixel columns as an {SIDE}x{SIDE} image; the "
            f"model's input has {input_width} values. Train with feature_keys=digits.FEATURE_KEYS."
        )
    inputs = keras.Input(shape=(input_width,), name="features")
    x = keras.layers.Reshape((SIDE, SIDE, 1), name="image")(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv_1")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv_2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(256, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(0.25, name="dropout")(x)
    outputs = keras.layers.Dense(num_outputs, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="digits_cnn")


def mlp_student(input_width: int, num_outputs: int, config: object = None) -> keras.Model:
    """A distillation student for the digits CNN, in the Trainer's core_model_fn form: the 64
    pixels, one 128-unit hidden layer, a softmax over the classes (9.6k parameters).

    Args:
      input_width: the preprocessed feature vector's width (the 64 pixels).
      num_outputs: the number of classes.
      config: the TabularConfig the Optimizer passes (unused).

    Returns:
      The untrained student.
    """
    import tf_keras as keras

    inputs = keras.Input(shape=(input_width,), name="features")
    hidden = keras.layers.Dense(128, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(num_outputs, activation="softmax", name="output")(hidden)
    return keras.Model(inputs, outputs, name="digits_mlp_student")
