"""The request log's batch encoder (templates per layout) writes exactly the bytes of the generic
path, call by call, for every layout it takes, and leaves the others to the generic path."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tfrelay.serving.request_log import batch_encoding, tfrecord
from tfrelay.serving.request_log.config import RequestLogConfig
from tfrelay.serving.request_log.records import Kind, LoggedCall, prediction_log

CONFIG = RequestLogConfig("/tmp/unused", 1.0)

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
fixed_dtypes = st.sampled_from([np.float32, np.float64, np.complex64]).map(np.dtype)
any_dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.int32, np.bool_]).map(np.dtype)


def _call(inputs, outputs, target=(None, None), timestamp=1_796_000_000) -> LoggedCall:
    return LoggedCall(
        CONFIG, Kind.PREDICT, "m", 3, "serving_default", ("serve",), target, timestamp,
        inputs=inputs, outputs=outputs, output_keys=sorted(outputs),
    )  # fmt: skip


def _encode(encoder: batch_encoding.BatchEncoder, calls: list[LoggedCall]):
    """As the logger does for calls handed over whole (`submit`)."""
    return encoder.encode(calls)


def _generic(calls) -> bytes:
    return b"".join(tfrecord.frame(prediction_log(call)) for call in calls)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    dtype=fixed_dtypes,
    out_dtype=any_dtypes,
    shape=shapes,
    count=st.integers(1, 12),
)
def test_a_batch_of_one_layout_is_the_generic_bytes_call_by_call(
    data, dtype, out_dtype, shape, count
):
    calls = []
    for _ in range(count):
        x = data.draw(hnp.arrays(dtype, shape))
        y = data.draw(hnp.arrays(out_dtype, shape))
        calls.append(_call({"x": x, "b": x.reshape(-1)[:1]}, {"y": y, "z": x}))
    chunks, failed = _encode(batch_encoding.BatchEncoder(), calls)
    assert failed == []
    got = {}
    for chunk in chunks:
        got.setdefault(chunk.model_name, []).append(chunk.data)
    # Templated calls come grouped, the others in order: compare record sets via TensorFlow's
    # reader and byte for byte when all took one path.
    assert sum(chunk.records for chunk in chunks) == count
    if out_dtype.kind == "f" or out_dtype.kind == "c":
        (chunk,) = chunks
        assert chunk.data == _generic(calls)
    else:
        assert b"".join(c.data for c in chunks) == _generic(calls)
    # The same calls as the request path hands them over (a run of one client: the columns path).
    chunks, failed = batch_encoding.BatchEncoder().encode(
        [], [_entry(call) for call in calls], calls[0].timestamp_secs
    )
    assert failed == []
    assert b"".join(c.data for c in chunks) == _generic(calls)


def _entry(call: LoggedCall) -> batch_encoding.PredictEntry:
    return (
        call.config, call.model_name, call.version, call.signature_name, call.saved_model_tags,
        call.target, call.request, call.inputs, call.outputs, call.output_keys,
    )  # fmt: skip


def test_entries_of_mixed_shapes_and_targets_are_the_generic_bytes():
    one, two = np.ones((1, 2), np.float32), np.ones((2, 2), np.float32)
    calls = [
        _call({"x": one}, {"y": one}),
        _call({"x": two}, {"y": two}),  # the run's shapes differ: grouped one by one
        _call({"x": one * 3}, {"y": one}, target=(None, "stable")),  # a run of its own
        _call({"x": one * 4}, {"y": one}),
    ]
    chunks, failed = batch_encoding.BatchEncoder().encode(
        [], [_entry(call) for call in calls], calls[0].timestamp_secs
    )
    assert failed == []
    assert sorted(c.records for c in chunks) == [1, 1, 2]
    framed = b"".join(c.data for c in chunks)
    expected = {tfrecord.frame(prediction_log(c)) for c in calls}
    assert len(framed) == sum(len(e) for e in expected)
    assert all(e in framed for e in expected)


def test_mixed_layouts_group_and_tensorflow_reads_every_record(tmp_path):
    encoder = batch_encoding.BatchEncoder()
    one = np.array([1.0], np.float32)
    calls = [
        _call({"x": one}, {"y": one * 2}),
        _call({"x": np.ones((2, 3), np.float32)}, {"y": np.zeros((2, 3), np.float32)}),
        _call({"x": one * 3}, {"y": one * 4}, target=(None, "stable")),
        _call({"x": np.array([b"s"], dtype=object)}, {"y": one}),  # strings: the generic path
        _call({"x": one * 5}, {"y": one * 6}),
    ]
    chunks, _ = _encode(encoder, calls)
    assert sorted(c.records for c in chunks) == [1, 1, 1, 2]
    path = tmp_path / "log.tfrecord"
    path.write_bytes(b"".join(c.data for c in chunks))
    expected = {tfrecord.frame(prediction_log(c))[12:-4] for c in calls}
    assert {r.numpy() for r in tf.data.TFRecordDataset(str(path))} == expected
    # The templates are reused: a second batch of the first layout is the generic bytes too.
    again = [_call({"x": one * 7}, {"y": one * 8})]
    (chunk,), _ = _encode(encoder, again)
    assert chunk.data == _generic(again)


def test_templates_are_bounded():
    encoder = batch_encoding.BatchEncoder()
    for i in range(batch_encoding.MAX_TEMPLATES + 10):
        _encode(encoder, [_call({"x": np.ones(i + 1, np.float32)}, {"y": np.ones(1, np.float32)})])
    assert len(encoder._templates) == batch_encoding.MAX_TEMPLATES


def test_calls_a_template_cannot_take_are_left_to_the_generic_path():
    one = np.array([1.0], np.float32)
    calls = [
        _call({"x": np.zeros((0, 3), np.float32)}, {"y": one}),  # no values: no slot
        _call({"x": one.astype(">f4")}, {"y": one}),  # not the wire's byte order
        _call({"x": np.array([b"s"], dtype=object)}, {"y": one}),  # strings vary in length
        _call({"x": one}, {"y": np.array([3], np.int64)}),  # varints vary in length
    ]
    chunks, failed = _encode(batch_encoding.BatchEncoder(), calls)
    assert failed == []
    assert [c.records for c in chunks] == [1] * len(calls)  # one generic record each
    assert b"".join(c.data for c in chunks) == _generic(calls)
