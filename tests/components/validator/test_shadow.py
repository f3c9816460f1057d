"""Shadow validation: logged requests replayed against the candidate and the serving version,
on real models, real TFRecord files of real PredictionLogs, and the real Validator executor."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
from collections.abc import Sequence

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    input_pb2,
    model_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)
from tfx.types import channel_utils, standard_artifacts
from tfx.utils import proto_utils

from support.training import train
from tfrelay.components import properties
from tfrelay.components.validator import evaluation, keys, shadow
from tfrelay.components.validator.component import Validator
from tfrelay.components.validator.executor import Executor
from tfrelay.components.validator.shadow_records import ReadLimits
from tfrelay.pipelines.datasets import penguins
from tfrelay.serving.request_log.tfrecord import frame  # TFRecord framing, CRCs right


def serving_input_dtypes(model_uri: str) -> dict[str, tf.DType]:
    """The `serving_default` inputs' dtypes, read from saved_model.pb."""
    path = os.path.join(model_uri, "Format-Serving", "saved_model.pb")
    proto = saved_model_pb2.SavedModel.FromString(pathlib.Path(path).read_bytes())
    inputs = proto.meta_graphs[0].signature_def["serving_default"].inputs
    return {name: tf.as_dtype(info.dtype) for name, info in inputs.items()}


def _values(example: tf.train.Example, name: str) -> list:
    feature = example.features.feature[name]
    return list(getattr(feature, feature.WhichOneof("kind")).value)


def predict_log(
    examples: Sequence[tf.train.Example], dtypes: dict[str, tf.DType], signature: str = ""
) -> prediction_log_pb2.PredictionLog:
    """A logged Predict of a batch of examples, features as named [batch] tensors."""
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(signature_name=signature))
    for name, dtype in dtypes.items():
        values = [_values(e, name)[0] for e in examples]
        array = np.array(values, dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array, dtype=dtype))
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )


def _input(examples: Sequence[tf.train.Example]) -> input_pb2.Input:
    return input_pb2.Input(example_list=input_pb2.ExampleList(examples=list(examples)))


def classify_log(
    examples: Sequence[tf.train.Example], signature: str = "classify"
) -> prediction_log_pb2.PredictionLog:
    """A logged Classify of tf.Examples."""
    request = classification_pb2.ClassificationRequest(
        model_spec=model_pb2.ModelSpec(signature_name=signature), input=_input(examples)
    )
    return prediction_log_pb2.PredictionLog(
        classify_log=prediction_log_pb2.ClassifyLog(request=request)
    )


def regress_log(
    examples: Sequence[tf.train.Example], signature: str = "regress"
) -> prediction_log_pb2.PredictionLog:
    """A logged Regress of tf.Examples."""
    request = regression_pb2.RegressionRequest(
        model_spec=model_pb2.ModelSpec(signature_name=signature), input=_input(examples)
    )
    return prediction_log_pb2.PredictionLog(
        regress_log=prediction_log_pb2.RegressLog(request=request)
    )


def write_logs(path: pathlib.Path, records: Sequence[prediction_log_pb2.PredictionLog | bytes]):
    """Writes a TFRecord file with tf.io.TFRecordWriter (PredictionLogs, or raw bytes as-is)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record if isinstance(record, bytes) else record.SerializeToString())
    return path


def _publish(model, base_path, version: int) -> str:
    target = base_path / str(version)
    shutil.copytree(os.path.join(model.uri, "Format-Serving"), target)
    return str(target)


def _validate(examples, model, tmp_path, base_path, config, **shadow_properties):
    evaluation_artifact = standard_artifacts.ModelEvaluation()
    evaluation_artifact.uri = str(tmp_path / "evaluation")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    Executor().Do(
        {"examples": [examples], "model": [model]},
        {"evaluation": [evaluation_artifact], "blessing": [blessing]},
        {
            keys.EVAL_CONFIG_KEY: proto_utils.proto_to_json(config),
            keys.BASELINE_BASE_PATH_KEY: str(base_path),
            keys.EXAMPLE_SPLITS_KEY: None,
            keys.CHECK_SERVING_CONTRACT_KEY: 1,
            **shadow_properties,
        },
    )
    return blessing, evaluation_artifact


def _report(blessing) -> dict:
    return json.loads(blessing.get_string_custom_property(keys.SHADOW_REPORT_PROPERTY))


def _failed(blessing) -> list[str]:
    return json.loads(blessing.get_string_custom_property(properties.FAILED_CHECKS))


def _traffic(examples, model_uri, count: int = 16) -> list[prediction_log_pb2.PredictionLog]:
    """Logged traffic as clients send it: single-example Classify calls and Predict batches."""
    dtypes = serving_input_dtypes(model_uri)
    logs = [classify_log([e]) for e in examples[:count]]
    logs += [predict_log(examples[i : i + 4], dtypes) for i in range(0, count, 4)]
    return logs


CLASSIFICATION = evaluation.build_eval_config("species", "classification", lower_bound=0.5)


def test_candidate_identical_to_the_serving_version_changes_nothing_and_is_blessed(
    penguin_examples, penguin_model, penguin_eval_examples, tmp_path
):
    bucket = tmp_path / "bucket" / "penguins"
    _publish(penguin_model, bucket, 1)
    logs = write_logs(
        tmp_path / "logs" / "requests-00000", _traffic(penguin_eval_examples, penguin_model.uri)
    )
    blessing, evaluation_artifact = _validate(
        penguin_examples,
        penguin_model,
        tmp_path,
        bucket,
        CLASSIFICATION,
        **{
            keys.SHADOW_REQUESTS_KEY: str(tmp_path / "logs" / "requests-"),  # a prefix
            keys.MAX_PREDICTION_CHANGE_KEY: 0.0,
        },
    )
    assert blessing.get_int_custom_property(properties.BLESSED) == 1, _failed(blessing)
    report = _report(blessing)
    # 16 Classify records of one example, 4 Predict records of four: 32 predictions.
    assert report["records_read"] == 20 and report["compared"] == 20
    assert report["classified_predictions"] == 32
    assert report["class_changes"] == 0 and report["prediction_change"] == 0.0
    assert report["baseline_version"] == 1
    assert report["candidate_errors"] == report["corrupt"] == report["unservable"] == 0
    metrics = json.loads(blessing.get_string_custom_property(properties.METRICS))
    assert metrics["shadow_prediction_change"] == 0.0
    # The report is also beside TFMA's results in the evaluation, and beside BLESSED.
    for artifact in (blessing, evaluation_artifact):
        with open(os.path.join(artifact.uri, keys.SHADOW_REPORT_FILE)) as f:
            assert json.load(f)["compared"] == 20
    assert logs.exists()
    # No warmup_from_logs: no warmup file, and the property says so.
    assert blessing.get_int_custom_property(keys.WARMUP_REQUESTS_PROPERTY) == 0


def test_candidate_whose_predictions_change_past_the_threshold_is_not_blessed(
    penguin_examples, penguin_model, penguin_eval_examples, tmp_path
):
    bucket = tmp_path / "bucket" / "penguins"
    _publish(penguin_model, bucket, 7)
    # Other weights: one epoch at a tiny learning rate predicts little better than chance.
    candidate = train(
        penguin_examples, tmp_path / "candidate", epochs=1, learning_rate=0.0005, hidden_units="[4]"
    )
    write_logs(tmp_path / "logs" / "a.tfrecord", _traffic(penguin_eval_examples, candidate.uri))
    blessing, _ = _validate(
        penguin_examples,
        candidate,
        tmp_path,
        bucket,
        evaluation.build_eval_config("species", "classification", lower_bound=0.0),
        **{
            keys.SHADOW_REQUESTS_KEY: str(tmp_path / "logs"),  # a directory
            keys.MAX_PREDICTION_CHANGE_KEY: 0.05,
        },
    )
    report = _report(blessing)
    assert blessing.get_int_custom_property(properties.BLESSED) == 0, json.dumps(report)
    assert report["class_changes"] > 0.05 * report["classified_predictions"]
    (reason,) = [f for f in _failed(blessing) if f.startswith("shadow traffic")]
    assert f"({report['class_changes']}) change their top class vs version 7" in reason
    assert "required <= 5.00%" in reason and "over by" in reason
    assert os.path.exists(os.path.join(blessing.uri, "NOT_BLESSED"))


def _direct_regressions(model_uri: str, examples) -> np.ndarray:
    """The model's `regress` outputs for each example, called through TensorFlow directly."""
    loaded = tf.saved_model.load(os.path.join(model_uri, "Format-Serving"))
    serialized = tf.constant([e.SerializeToString() for e in examples])
    return loaded.signatures["regress"](inputs=serialized)["outputs"].numpy().reshape(-1)


def test_regressor_reports_the_distribution_of_its_differences(
    penguin_examples, penguin_eval_examples, tmp_path
):
    # The year of the observation: the one numeric column no penguin lacks (TFMA needs labels).
    features = json.dumps(penguins.FEATURE_KEYS)
    regression = {"task": "regression", "label_key": "year", "feature_keys": features}
    serving = train(penguin_examples, tmp_path / "serving", epochs=3, **regression)
    candidate = train(penguin_examples, tmp_path / "candidate", epochs=6, **regression)
    bucket = tmp_path / "bucket" / "mass"
    _publish(serving, bucket, 2)
    examples = penguin_eval_examples[:40]
    write_logs(tmp_path / "logs.tfrecord", [regress_log([e]) for e in examples])
    blessing, _ = _validate(
        penguin_examples,
        candidate,
        tmp_path,
        bucket,
        evaluation.build_eval_config("year", "regression", upper_bound=1e12),
        **{
            keys.SHADOW_REQUESTS_KEY: str(tmp_path / "logs.tfrecord"),  # a file
            keys.MAX_REGRESSION_DIFFERENCE_KEY: 1e-3,
        },
    )
    report = _report(blessing)
    assert report["compared"] == 40 and report["valued_predictions"] == 40
    # The same numbers as the two models' own outputs, compared here with numpy.
    expected = np.abs(
        _direct_regressions(candidate.uri, examples) - _direct_regressions(serving.uri, examples)
    )
    stats = report["abs_difference"]
    assert stats["mean"] == pytest.approx(expected.mean(), rel=1e-4)
    for p in (50, 90, 99):
        assert stats[f"p{p}"] == pytest.approx(np.percentile(expected, p), rel=1e-4)
    assert stats["max"] == pytest.approx(expected.max(), rel=1e-4)
    assert stats["p50"] <= stats["p90"] <= stats["p99"] <= stats["max"]
    assert blessing.get_int_custom_property(properties.BLESSED) == 0
    (reason,) = [f for f in _failed(blessing) if f.startswith("shadow traffic")]
    assert re.search(r"p99 absolute difference vs version 2 is [\d.]+ over 40 predictions", reason)
    assert "required <= 0.0010" in reason


def _without_signature(model, name: str, root) -> str:
    """A copy of the model's SavedModel with one signature removed from saved_model.pb."""
    target = root / "candidate"
    shutil.copytree(os.path.join(model.uri, "Format-Serving"), target)
    proto = saved_model_pb2.SavedModel.FromString((target / "saved_model.pb").read_bytes())
    del proto.meta_graphs[0].signature_def[name]
    (target / "saved_model.pb").write_bytes(proto.SerializeToString())
    return str(target)


def test_corrupt_oversized_unservable_and_unanswerable_records_are_counted_never_raised(
    penguin_model, penguin_eval_examples, tmp_path
):
    examples = penguin_eval_examples
    dtypes = serving_input_dtypes(penguin_model.uri)
    good = [classify_log([e]) for e in examples[:6]]
    unservable = [
        regress_log([examples[0]]),  # a classifier has no regress signature
        predict_log(examples[:2], dtypes, signature="no_such_signature"),
        prediction_log_pb2.PredictionLog(),  # no request at all
    ]
    big = classify_log(examples * 20)  # over the 20 KiB record limit below
    assert big.ByteSize() > 20_000
    logs = tmp_path / "logs"
    write_logs(logs / "0-good", good + unservable + [big])
    data_crc = bytearray(frame(good[0].SerializeToString()))
    data_crc[20] ^= 0xFF  # a flipped byte in the data: that record is lost, the next one read
    (logs / "1-flipped").write_bytes(
        bytes(data_crc) + frame(b"\xff\xff\xff") + frame(good[1].SerializeToString())
    )
    header = bytearray(frame(good[2].SerializeToString()))
    header[3] ^= 0x01  # a broken length: the rest of that file cannot be found again
    (logs / "2-header").write_bytes(bytes(header) + frame(good[3].SerializeToString()))
    (logs / "3-truncated").write_bytes(frame(good[4].SerializeToString())[:-10])
    (logs / "_SUCCESS").write_bytes(b"")  # a marker, no log
    candidate = _without_signature(penguin_model, "classify", tmp_path)
    baseline = os.path.join(penguin_model.uri, "Format-Serving")

    report = shadow.shadow_validate(
        str(logs), candidate, baseline, 3, ReadLimits(max_record_bytes=20_000)
    ).to_json()

    assert report["files"] == 4
    assert report["oversized"] == 1
    # A flipped data byte, bytes that are no PredictionLog, a broken header, a truncated record.
    assert report["corrupt"] == 4
    assert report["unservable"] == 3
    # The candidate lost `classify`: every Classify the serving version answers fails on it.
    assert report["candidate_errors"] == 7 and report["compared"] == 0
    assert report["records_read"] == 6 + 3 + 1 + 3 + 1 + 1
    assert any("record data CRC mismatch" in m for m in report["messages"])
    failures = shadow.failures(
        shadow.shadow_validate(str(logs / "0-good"), candidate, baseline, 3), shadow.Thresholds()
    )
    (reason,) = failures
    # (The 7th is the big record: under the default 4 MiB limit.)
    assert "the candidate fails 7 of 7 logged requests that version 3 answers" in reason
    assert "(first: classify_log: No signature was found with the name: classify)" in reason

    # Bounded: at most max_records records are examined, whatever the files hold.
    capped = shadow.shadow_validate(str(logs), baseline, baseline, 3, ReadLimits(max_records=4))
    assert capped.reading.records == 4 and capped.compared == 4
    # A file budget leaves the rest of a file unread.
    cut = shadow.shadow_validate(
        str(logs / "0-good"), baseline, baseline, 3, ReadLimits(max_file_bytes=400)
    )
    assert cut.reading.truncated_files == 1 and 0 < cut.reading.records < 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"max_prediction_change": 0.1},
            "need\\(s\\) logged requests to replay: set shadow_requests",
        ),
        ({"warmup_from_logs": True}, "warmup_from_logs need"),
        ({"shadow_requests": "ftp://x/y"}, "shadow_requests 'ftp://x/y': use a local path"),
        ({"shadow_requests": "/logs", "max_prediction_change": 5}, "in \\[0, 1\\]"),
        ({"shadow_requests": "/logs", "max_regression_difference": -1}, "a number >= 0"),
        ({"shadow_requests": "/logs", "shadow_max_records": 0}, "shadow_max_records must be in"),
        ({"shadow_requests": "/logs", "warmup_max_records": 5000}, "TF Serving reads at most 1000"),
    ],
)
def test_component_rejects_shadow_settings_that_cannot_work(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Validator(
            examples=channel_utils.as_channel([standard_artifacts.Examples()]),
            model=channel_utils.as_channel([standard_artifacts.Model()]),
            label_key="species",
            lower_bound=0.5,
            **kwargs,
        )


def test_component_passes_the_shadow_settings_to_its_executor():
    validator = Validator(
        examples=channel_utils.as_channel([standard_artifacts.Examples()]),
        model=channel_utils.as_channel([standard_artifacts.Model()]),
        label_key="species",
        lower_bound=0.5,
        shadow_requests="s3://logs/penguins/requests-",
        max_prediction_change=0,  # an int, as `--set max_prediction_change=0` gives it
        warmup_from_logs=True,
    )
    parameters = validator.exec_properties
    assert parameters[keys.SHADOW_REQUESTS_KEY] == "s3://logs/penguins/requests-"
    assert parameters[keys.MAX_PREDICTION_CHANGE_KEY] == 0.0
    assert isinstance(parameters[keys.MAX_PREDICTION_CHANGE_KEY], float)
    assert parameters[keys.SHADOW_MAX_RECORDS_KEY] == 1000
    assert parameters[keys.WARMUP_FROM_LOGS_KEY] == 1
    assert parameters[keys.WARMUP_MAX_RECORDS_KEY] == 100


def _read_warmup(path) -> list[prediction_log_pb2.PredictionLog]:
    return [
        prediction_log_pb2.PredictionLog.FromString(r)
        for r in tf.data.TFRecordDataset([str(path)]).as_numpy_iterator()
    ]


def _warmup_count(url: str, version_dir: str) -> float:
    """The server's own metric: warmups of `version_dir` that ended OK."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/monitoring/prometheus/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        if family.name == ":tensorflow:serving:model_warmup_latency":
            for sample in family.samples:
                labels = sample.labels
                if (
                    sample.name.endswith("_count")
                    and labels.get("model_path") == version_dir
                    and labels.get("status") == "OK"
                ):
                    return sample.value
    return 0.0


def test_logged_requests_become_the_pushed_versions_warmup_and_the_server_replays_them(
    penguin_examples, penguin_model, penguin_eval_examples, tmp_path
):
    from support.servers import ModelServerProcess, wait_for_version
    from tfrelay.components.pusher import executor as pusher_executor
    from tfrelay.components.pusher import keys as pusher_keys

    bucket = tmp_path / "bucket" / "penguins"
    _publish(penguin_model, bucket, 1)
    traffic = _traffic(penguin_eval_examples, penguin_model.uri)
    # A regress_log the classifier cannot serve is never made a warmup record: it would fail
    # the load, as in TF Serving.
    write_logs(tmp_path / "logs" / "requests-1.tfrecord", [regress_log(penguin_eval_examples[:1])])
    write_logs(tmp_path / "logs" / "requests-2.tfrecord", traffic)
    blessing, _ = _validate(
        penguin_examples,
        penguin_model,
        tmp_path,
        bucket,
        CLASSIFICATION,
        **{
            keys.SHADOW_REQUESTS_KEY: str(tmp_path / "logs" / "requests-"),
            keys.WARMUP_FROM_LOGS_KEY: 1,
            keys.WARMUP_MAX_RECORDS_KEY: 12,
        },
    )
    assert blessing.get_int_custom_property(properties.BLESSED) == 1, _failed(blessing)
    assert _report(blessing)["unservable"] == 1 and _report(blessing)["warmup_records"] == 12
    assert blessing.get_int_custom_property(keys.WARMUP_REQUESTS_PROPERTY) == 12
    sample = _read_warmup(os.path.join(blessing.uri, keys.WARMUP_REQUESTS_FILE))
    # The first 12 answered records, requests only (responses are not replayed).
    assert [s.SerializeToString() for s in sample] == [t.SerializeToString() for t in traffic[:12]]
    model_warmup = os.path.join(penguin_model.uri, "Format-Serving", "assets.extra")
    assert len(_read_warmup(os.path.join(model_warmup, "tf_serving_warmup_requests"))) == 2

    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    pusher_executor.Executor().Do(
        {pusher_keys.MODEL_KEY: [penguin_model], pusher_keys.MODEL_BLESSING_KEY: [blessing]},
        {pusher_keys.PUSHED_MODEL_KEY: [pushed]},
        {pusher_keys.BASE_PATH_KEY: str(bucket)},
    )
    assert pushed.get_string_custom_property(properties.PUSHED_VERSION) == "2"
    version = bucket / "2"
    assert _read_warmup(version / "assets.extra" / "tf_serving_warmup_requests") == sample
    # The Model artifact itself is untouched: it keeps the Trainer's two warmup records.
    assert len(_read_warmup(os.path.join(model_warmup, "tf_serving_warmup_requests"))) == 2

    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text(
        'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }'
    )
    flags = [
        "--model_name=penguins",
        f"--model_base_path={bucket}",
        f"--monitoring_config_file={monitoring}",
    ]
    with ModelServerProcess(flags, tmp_path / "server.log") as server:
        wait_for_version(server.url, "penguins", 2)
        assert "Warmed up penguins version 2 with 12 records" in server.log()
        assert _warmup_count(server.url, str(version)) == 1


def test_the_pipeline_passes_its_shadow_settings_to_the_validator():
    from tfrelay.pipelines.pipeline import PipelineConfig, create_components

    config = PipelineConfig(
        shadow_requests="s3://bucket/logs/penguins/requests-",
        max_prediction_change=0.05,
        warmup_from_logs=True,
        deploy=False,
    )
    (validator,) = [c for c in create_components(config) if isinstance(c, Validator)]
    assert validator.exec_properties[keys.SHADOW_REQUESTS_KEY] == config.shadow_requests
    assert validator.exec_properties[keys.MAX_PREDICTION_CHANGE_KEY] == 0.05
    assert validator.exec_properties[keys.MAX_REGRESSION_DIFFERENCE_KEY] is None
    assert validator.exec_properties[keys.WARMUP_FROM_LOGS_KEY] == 1
    (default,) = [c for c in create_components(PipelineConfig()) if isinstance(c, Validator)]
    assert default.exec_properties[keys.SHADOW_REQUESTS_KEY] is None


def test_logs_are_read_from_an_s3_prefix_as_from_a_local_one(penguin_eval_examples, tmp_path):
    from support.servers import moto_s3, s3_client
    from tfrelay.components.validator.shadow_records import ReadCounts, read_prediction_logs

    logs = [classify_log([e]) for e in penguin_eval_examples[:5]]
    local = write_logs(tmp_path / "requests-00001.tfrecord", logs)
    oversized = write_logs(tmp_path / "big", [classify_log(penguin_eval_examples * 4)])
    with moto_s3(tmp_path) as env:
        client = s3_client(env)
        client.create_bucket(Bucket="logs")
        client.upload_file(str(local), "logs", "penguins/requests-00001.tfrecord")
        client.upload_file(str(oversized), "logs", "penguins/requests-00002.tfrecord")
        client.upload_file(str(local), "logs", "penguins/other-00001.tfrecord")  # not the prefix
        counts = ReadCounts()
        read = list(
            read_prediction_logs(
                "s3://logs/penguins/requests-", ReadLimits(max_record_bytes=5000), counts, env
            )
        )
    assert [r.SerializeToString() for r in read] == [r.SerializeToString() for r in logs]
    # The big record was skipped on its header (seeked over, never parsed).
    assert (counts.files, counts.records, counts.parsed, counts.oversized) == (2, 6, 5, 1)


def test_thresholds_with_nothing_to_compare_withhold_the_blessing():
    from tfrelay.components.validator.shadow import ShadowReport, Thresholds, failures

    report = ShadowReport(location="s3://bucket/logs/typo", baseline_version=3)
    (reason,) = failures(report, Thresholds(max_prediction_change=0.05))
    assert "none of the 0 logged requests read from s3://bucket/logs/typo" in reason
    assert "check shadow_requests" in reason
    assert failures(report, Thresholds()) == []  # no threshold: the report alone
    first_push = ShadowReport(location="s3://bucket/logs", baseline_version=None)
    assert failures(first_push, Thresholds(max_prediction_change=0.05)) == []
