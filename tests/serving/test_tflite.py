"""`--prefer_tflite_model`: model.tflite served through the TFLite interpreter, on TFLite models
the tests convert themselves and on TF Serving's saved_model_half_plus_two_tflite,
..._tflite_with_sigdef and parse_example_tflite (answers from TF Serving's own tests)."""

from __future__ import annotations

import base64
import concurrent.futures

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from support import grpc_clients as clients
from support.paths import TF_SERVING_TESTDATA
from support.servers import InProcessModelServer, wait_for_version
from support.tflite_models import write_tflite_half_plus, write_tflite_parse_then_affine
from support.warmup_files import predict_log, write_warmup_file
from tfrelay.serving.options import ServerOptions

# The pipeline relies on this code (the Validator and the pusher run it on the pipeline stack), so
# `make test` runs these tests on both stacks (issue 14).
pytestmark = pytest.mark.both_stacks


def _serve(base, name: str = "default", **settings) -> InProcessModelServer:
    return InProcessModelServer(
        ServerOptions(
            model_name=name,
            model_base_path=str(base),
            prefer_tflite_model=True,
            num_tflite_pools=2,
            **settings,
        )
    )


def _testdata(name: str):
    path = TF_SERVING_TESTDATA / name
    if not path.is_dir():
        pytest.skip(f"TF Serving test models not present at {TF_SERVING_TESTDATA}")
    return path


def _grpc_predict(server, request):
    with grpc.insecure_channel(f"127.0.0.1:{server.server.options.port}") as channel:
        prediction, _ = clients.stubs(channel)
        return prediction.Predict(request, 10)


def _signature_defs(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.server.options.port}") as channel:
        prediction, _ = clients.stubs(channel)
        response = prediction.GetModelMetadata(clients.metadata_request("default"), 10)
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_defs)
    return signature_defs.signature_def


@pytest.mark.parametrize(
    "source", ["fixture_signatures", "fixture_tensors", "tf_serving_plain", "tf_serving_sigdef"]
)
def test_half_plus_two_tflite_answers_as_tf_serving(source, tmp_path):
    if source.startswith("fixture"):
        base = tmp_path / "m"
        write_tflite_half_plus(base / "123", signatures=source == "fixture_signatures")
    elif source == "tf_serving_plain":
        base = _testdata("saved_model_half_plus_two_tflite")
    else:
        base = _testdata("saved_model_half_plus_two_tflite_with_sigdef")
    with _serve(base) as server:
        wait_for_version(server.url, "default", 123)
        signature = _signature_defs(server)["serving_default"]
        assert signature.method_name == "tensorflow/serving/predict"
        if source == "fixture_tensors":
            # No signature in the model: aliases are the tensor names without ":N", as in
            # TF Serving's generated signature.
            (x,) = signature.inputs
            (y,) = signature.outputs
            assert x == signature.inputs[x].name.split(":")[0] and ":" not in x
        else:
            x, y = "x", "y"
            assert set(signature.inputs) == {"x"} and set(signature.outputs) == {"y"}
        if source == "tf_serving_sigdef":
            # The legacy converter stripped ":0"; TF Serving reports the fixed name.
            assert signature.inputs["x"].name == "tflite_input"
        # TF Serving's testPredictOnTfLite / testPredictWithSignatureDefOnTfLite.
        request = clients.predict_request("default", [2.0])
        del request.inputs["x"]
        request.inputs[x].CopyFrom(tf.make_tensor_proto([[2.0]], tf.float32))
        result = _grpc_predict(server, request)
        assert result.outputs[y].dtype == types_pb2.DT_FLOAT
        assert list(result.outputs[y].float_val) == [3.0]
        assert result.model_spec.version.value == 123
        assert result.model_spec.signature_name == "serving_default"
        # TfLiteSession's tests: a batch of three resizes the input.
        response = httpx.post(
            f"{server.url}/v1/models/default:predict", json={"instances": [[1.0], [2.0], [3.0]]}
        )
        assert response.json() == {"predictions": [[2.5], [3.0], [3.5]]}
        # Concurrent requests share a pool of interpreters.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda x: httpx.post(
                        f"{server.url}/v1/models/default:predict", json={"instances": [[x]]}
                    ).json(),
                    [float(i) for i in range(32)],
                )
            )
        assert answers == [{"predictions": [[i / 2 + 2]]} for i in range(32)]


def test_parse_example_tflite_answers_as_tf_serving():
    base = _testdata("parse_example_tflite")
    with _serve(base) as server:
        wait_for_version(server.url, "default", 123)
        signature = _signature_defs(server)["serving_default"]
        assert set(signature.inputs) == {"input"}
        assert set(signature.outputs) == {
            "ParseExample/ParseExampleV2",
            "ParseExample/ParseExampleV2:1",
        }
        examples = []
        for value in (0.25, -0.5):
            example = tf.train.Example()
            example.features.feature["x"].float_list.value.append(value)
            example.features.feature["y"].bytes_list.value.append(b"test string")
            examples.append(example.SerializeToString())
        examples.append(tf.train.Example().SerializeToString())  # defaults: 0.0, "missing"
        request = clients.predict_request("default")
        del request.inputs["x"]
        request.inputs["input"].CopyFrom(tf.make_tensor_proto(examples, tf.string))
        result = _grpc_predict(server, request)
    floats = tf.make_ndarray(result.outputs["ParseExample/ParseExampleV2"])
    strings = tf.make_ndarray(result.outputs["ParseExample/ParseExampleV2:1"])
    np.testing.assert_array_equal(floats, [[0.25], [-0.5], [0.0]])
    assert strings.tolist() == [[b"test string"], [b"test string"], [b"missing"]]


@pytest.mark.parametrize("signatures", [True, False], ids=["signature_runner", "tensors"])
def test_parse_example_followed_by_builtin_ops_serves_on_any_interpreter(tmp_path, signatures):
    # No Python interpreter has TFLite's ParseExample kernel (TF 2.21's has no flex delegate
    # either): TensorFlow parses in front of the interpreter, which runs the rest (issue 14).
    path = write_tflite_parse_then_affine(tmp_path / "m" / "1")
    if not signatures:
        from tensorflow.lite.tools import flatbuffer_utils

        model = flatbuffer_utils.convert_bytearray_to_object(bytearray(path.read_bytes()))
        model.signatureDefs = []
        path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    examples = []
    for value in (0.25, -3.0):
        example = tf.train.Example()
        example.features.feature["x"].float_list.value.append(value)
        examples.append(example.SerializeToString())
    examples.append(tf.train.Example().SerializeToString())  # x defaults to 0.0
    with _serve(tmp_path / "m") as server:
        wait_for_version(server.url, "default", 1)
        signature = _signature_defs(server)["serving_default"]
        input_alias = next(iter(signature.inputs))
        assert signature.inputs[input_alias].dtype == types_pb2.DT_STRING
        request = clients.predict_request("default")
        del request.inputs["x"]
        request.inputs[input_alias].CopyFrom(tf.make_tensor_proto(examples, tf.string))
        result = _grpc_predict(server, request)
        (output,) = result.outputs.values()
        np.testing.assert_allclose(tf.make_ndarray(output), [[1.5], [-5.0], [1.0]])
        # The same batch over REST, with the strings in base64 as TF Serving expects.
        instances = [{input_alias: {"b64": base64.b64encode(e).decode()}} for e in examples]
        answer = httpx.post(
            f"{server.url}/v1/models/default:predict", json={"instances": instances}
        )
        assert answer.status_code == 200, answer.text
        assert np.allclose(np.ravel(answer.json()["predictions"]), [1.5, -5.0, 1.0])


def test_without_prefer_tflite_model_a_tflite_only_version_is_not_served(tmp_path):
    base = tmp_path / "m"
    write_tflite_half_plus(base / "1")
    options = ServerOptions(model_name="m", model_base_path=str(base), max_num_load_retries=0)
    with InProcessModelServer(options) as server:
        from support.servers import wait_until

        wait_until(
            lambda: (
                httpx.get(f"{server.url}/v1/models/m").status_code == 200
                and httpx.get(f"{server.url}/v1/models/m").json()["model_version_status"][0][
                    "state"
                ]
                == "END"
            ),
            60,
        )
        status = httpx.get(f"{server.url}/v1/models/m").json()["model_version_status"][0]
    assert "--prefer_tflite_model" in status["status"]["error_message"]


def test_tflite_versions_are_warmed_up_too(tmp_path):
    base = tmp_path / "m"
    version_dir = base / "1"
    write_tflite_half_plus(version_dir)
    write_warmup_file(version_dir, [predict_log([1.0])])
    with _serve(base, name="m") as server:
        wait_for_version(server.url, "m", 1)
        assert server.server.metrics.model_warmup_latency.count(str(version_dir), "OK") == 1


def test_signature_defs_metadata_name_the_aliases(tmp_path):
    """A model carrying TF Serving's signature_defs_metadata serves those SignatureDefs under
    their own aliases and method name."""
    from tensorflow.core.protobuf import meta_graph_pb2

    from support.tflite_models import add_signature_defs_metadata

    base = tmp_path / "m"
    path = write_tflite_half_plus(base / "123", signatures=False)
    interpreter = tf.lite.Interpreter(model_path=str(path))
    x_name = interpreter.get_input_details()[0]["name"]
    y_name = interpreter.get_output_details()[0]["name"]
    proto = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/regress")
    proto.inputs["features"].name = x_name
    proto.inputs["features"].dtype = types_pb2.DT_FLOAT
    proto.outputs["prediction"].name = y_name
    proto.outputs["prediction"].dtype = types_pb2.DT_FLOAT
    add_signature_defs_metadata(path, {"custom": proto})
    with _serve(base) as server:
        wait_for_version(server.url, "default", 123)
        with grpc.insecure_channel(f"127.0.0.1:{server.server.options.port}") as channel:
            prediction, _ = clients.stubs(channel)
            response = prediction.GetModelMetadata(clients.metadata_request("default"), 10)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_defs)
        assert list(signature_defs.signature_def) == ["custom"]
        served = signature_defs.signature_def["custom"]
        assert served.inputs["features"].name == x_name
        assert served.method_name == "tensorflow/serving/regress"
        request = clients.predict_request("default", signature_name="custom")
        del request.inputs["x"]
        request.inputs["features"].CopyFrom(tf.make_tensor_proto([[4.0], [6.0]], tf.float32))
        result = _grpc_predict(server, request)
    np.testing.assert_array_equal(tf.make_ndarray(result.outputs["prediction"]), [[4.0], [5.0]])
