"""Fixture SavedModels built by the tests themselves (a user's clone has no ../shared).

`write_half_plus_two` reproduces TF Serving's `saved_model_half_plus_two.py`: a TF1 graph whose
predict signature feeds `x:0` and whose classify/regress signatures parse serialized
tf.Examples, with an asset file. `write_tf2_half_plus` is the same function exported the TF2
way (`tf.saved_model.save`).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

import tensorflow as tf


def write_half_plus_two(
    export_dir: str | os.PathLike, a: float = 0.5, b: float = 2.0
) -> pathlib.Path:
    """Exports y = a*x + b as a TF1 graph SavedModel (`b=2`: half_plus_two; `b=3`: half_plus_three).

    Signatures: serving_default (x -> y), classify_x_to_y, regress_x_to_y, regress_x_to_y2
    (a*x + 3), regress_x2_to_y3 (x2 -> a*x2 + 3).

    Args:
      export_dir: the version directory to create (must not exist).
      a: slope.
      b: intercept.

    Returns:
      `export_dir` as a Path.
    """
    export_dir = pathlib.Path(export_dir)
    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as session:
        serialized = v1.placeholder(tf.string, name="tf_example")
        features = tf.io.parse_example(
            serialized,
            {
                "x": tf.io.FixedLenFeature([1], tf.float32),
                "x2": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0]),
            },
        )
        # Static shape [-1, 1], as in TF Serving's export (parse_example on an unknown-rank
        # input would leave the rank unknown).
        x = tf.identity(tf.reshape(features["x"], [-1, 1]), name="x")
        x2 = tf.identity(tf.reshape(features["x2"], [-1, 1]), name="x2")
        var_a = v1.Variable(a, name="a")
        var_b = v1.Variable(b, name="b")
        var_c = v1.Variable(3.0, name="c")
        y = tf.add(tf.multiply(var_a, x), var_b, name="y")
        y2 = tf.add(tf.multiply(var_a, x), var_c, name="y2")
        y3 = tf.add(tf.multiply(var_a, x2), var_c, name="y3")

        asset_source = pathlib.Path(tempfile.mkdtemp()) / "foo.txt"
        asset_source.write_text("asset-file-contents")
        asset = tf.constant(str(asset_source), name="filename_tensor")
        v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, asset)

        session.run(v1.global_variables_initializer())
        info = v1.saved_model.utils.build_tensor_info
        build = v1.saved_model.signature_def_utils.build_signature_def
        predict = "tensorflow/serving/predict"
        classify = "tensorflow/serving/classify"
        regress = "tensorflow/serving/regress"
        signatures = {
            "serving_default": build({"x": info(x)}, {"y": info(y)}, predict),
            "classify_x_to_y": build({"inputs": info(serialized)}, {"scores": info(y)}, classify),
            "regress_x_to_y": build({"inputs": info(serialized)}, {"outputs": info(y)}, regress),
            "regress_x_to_y2": build({"inputs": info(serialized)}, {"outputs": info(y2)}, regress),
            "regress_x2_to_y3": build({"inputs": info(x2)}, {"outputs": info(y3)}, regress),
        }
        builder = v1.saved_model.builder.SavedModelBuilder(str(export_dir))
        builder.add_meta_graph_and_variables(
            session,
            [v1.saved_model.tag_constants.SERVING],
            signature_def_map=signatures,
            assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS),
            main_op=v1.tables_initializer(),
            strip_default_attrs=True,
        )
        builder.save()
    shutil.rmtree(asset_source.parent)
    return export_dir


class _HalfPlus(tf.Module):
    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.a = tf.Variable(a)
        self.b = tf.Variable(b)

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
    def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": self.a * x + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(self, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        x = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]
        return {"outputs": self.a * x + self.b}


def write_tf2_half_plus(
    export_dir: str | os.PathLike, a: float = 0.5, b: float = 2.0
) -> pathlib.Path:
    """Exports y = a*x + b the TF2 way (serving_default and a regress-shaped signature)."""
    module = _HalfPlus(a, b)
    tf.saved_model.save(
        module,
        str(export_dir),
        signatures={"serving_default": module.predict, "regress_x_to_y": module.regress},
    )
    return pathlib.Path(export_dir)


def copy_version(
    source: str | os.PathLike, base_path: str | os.PathLike, version: int
) -> pathlib.Path:
    """Publishes a SavedModel as `<base_path>/<version>` the way the bucket contract says:
    every other file first, `saved_model.pb` last."""
    source = pathlib.Path(source)
    target = pathlib.Path(base_path) / str(version)
    staging_marker = None
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_dir():
            (target / relative).mkdir(parents=True, exist_ok=True)
        elif relative.as_posix() == "saved_model.pb":
            staging_marker = path
        else:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)
    if staging_marker is not None:
        shutil.copy2(staging_marker, target / "saved_model.pb")
    return target
