"""Framed PredictionLog records of many calls at once, REST Predict calls from one template per
layout.

Records of REST Predict calls to the same model version and signature, with inputs and outputs of
the same names, dtypes and shapes, differ only in their tensors' values: every length, tag and
header is the same. So such a record is built once as a template with a slot per tensor, a
batch's values are copied into their slots with numpy, and only each record's CRC-32C is computed
per call. The generic path (`records.prediction_log`, then `tfrecord.frame`) cost 5.4 us per
call in the server (half_plus_two at 64 connections on one core: 10% of its REST throughput).
Calls a template cannot take (gRPC requests, logged as received; Classify, Regress and
MultiInference; strings and integers, whose varints vary in length) take the generic path. The
tests hold both paths to the same bytes.

Every per-call step runs here, in the batch, none on the request path (`PredictEntry`): in a
loop over a batch its code and data stay in the CPU's caches, where the request path runs it
once among everything else a request does. Measured in the server (issue 16; half_plus_two at
64 connections on one core): taking each call's template key and values on the request path
cost 8% of REST throughput; the same Python in the batch, with the fill, about 2%.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import operator
import sys
from collections.abc import Callable, Mapping, Sequence

import google_crc32c
import numpy as np

from tfrelay.serving.encoding import wire
from tfrelay.serving.encoding.tensor_types import BY_NUMPY, Packing
from tfrelay.serving.encoding.varint import varint
from tfrelay.serving.request_log import records, tfrecord

# Layouts kept, least recently used dropped first.
MAX_TEMPLATES = 256
_HEADER_BYTES = 12  # uint64 length and its masked CRC
_FOOTER_BYTES = 4  # the data's masked CRC
_MASK_DELTA = np.uint32(0xA282EAD8)
# Fixed-width dtypes whose native bytes are the wire's: a template's slot takes them as they are.
_COPYABLE = (
    frozenset(numpy for numpy, entry in BY_NUMPY.items() if entry.packing is Packing.FIXED)
    if sys.byteorder == "little"
    else frozenset()
)


@dataclasses.dataclass(frozen=True)
class Chunk:
    """Framed records for one file prefix, all of one model.

    Attributes:
      prefix: the `filename_prefix` they go to.
      model_name: the model they log.
      data: the framed records, concatenated.
      records: how many.
    """

    prefix: str
    model_name: str
    data: bytes
    records: int


@dataclasses.dataclass(frozen=True)
class _Slot:
    size: int  # a tensor's payload bytes


Segments = list["bytes | _Slot"]


@dataclasses.dataclass(eq=False)  # compared by identity: built once per layout
class Template:
    """The record of one layout with empty slots for its tensors' values."""

    prefix: str  # the `filename_prefix` its records go to
    model_name: str
    framed: np.ndarray  # uint8: header, record, footer; zeros in the slots and the footer
    slots: list[tuple[int, int, int]]  # (offset in `framed`, offset in a call's values, size)
    values_size: int  # a call's values: every slot's bytes, in slot order
    _slices: list[slice] = dataclasses.field(default_factory=list)

    def record_slices(self, count: int) -> list[slice]:
        """Where the records of a batch of `count` lie in its bytes (their CRCs' inputs)."""
        width = self.framed.size
        end = width - _FOOTER_BYTES
        for i in range(len(self._slices), count):
            self._slices.append(slice(i * width + _HEADER_BYTES, i * width + end))
        return self._slices[:count]


def _size(segments: Segments) -> int:
    return sum(s.size if isinstance(s, _Slot) else len(s) for s in segments)


def _field(number: int, segments: Segments) -> Segments:
    return [varint(number << 3 | 2) + varint(_size(segments)), *segments]


def _map_entry(key: str, array: np.ndarray) -> Segments:
    # A TensorProto of a fixed-width array ends with its values (wire.tensor_bytes): the rest is
    # the template, the values a slot.
    tensor = wire.tensor_bytes(array)
    return [
        wire.field(1, key.encode()),
        *_field(2, [tensor[: -array.nbytes], _Slot(array.nbytes)]),
    ]


def _segments(call: records.LoggedCall) -> Segments:
    version, label = call.target
    request = [wire.field(1, wire.model_spec(call.model_name, version, label, call.signature_name))]
    for key, array in call.inputs.items():
        request += _field(2, _map_entry(key, array))
    response: Segments = []
    for key in call.output_keys:
        response += _field(1, _map_entry(key, call.outputs[key]))
    response.append(
        wire.field(2, wire.model_spec(call.model_name, call.version, None, call.signature_name))
    )
    body = [*_field(1, request), *_field(2, response)]
    return [*_field(1, [records.log_metadata(call)]), *_field(6, body)]


def _build(call: records.LoggedCall) -> Template:
    segments = _segments(call)
    length = tfrecord.LENGTH.pack(_size(segments))
    framed = np.zeros(_HEADER_BYTES + _size(segments) + _FOOTER_BYTES, dtype=np.uint8)
    header = length + tfrecord.CRC.pack(tfrecord.masked_crc(length))
    framed[:_HEADER_BYTES] = np.frombuffer(header, dtype=np.uint8)
    offset = _HEADER_BYTES
    slots = []
    values_size = 0
    for segment in segments:
        if isinstance(segment, _Slot):
            slots.append((offset, values_size, segment.size))
            offset += segment.size
            values_size += segment.size
        else:
            framed[offset : offset + len(segment)] = np.frombuffer(segment, dtype=np.uint8)
            offset += len(segment)
    return Template(call.config.filename_prefix, call.model_name, framed, slots, values_size)


# The fields every call of a template shares: its record's ModelSpecs and LogMetadata.
_RECORD_FIELDS = operator.attrgetter(
    "config",
    "model_name",
    "version",
    "signature_name",
    "saved_model_tags",
    "target",
    "timestamp_secs",
)
_ENTRY_FIELDS = operator.itemgetter(0, 1, 2, 3, 4, 5)  # config ... target: the record's fields
_ENTRY_REQUEST = operator.itemgetter(6)
_ENTRY_INPUTS = operator.itemgetter(7)
_ENTRY_OUTPUTS = operator.itemgetter(8)
_ENTRY_OUTPUT_KEYS = operator.itemgetter(9)
_DTYPE = operator.attrgetter("dtype")
_SHAPE = operator.attrgetter("shape")
_TOBYTES = operator.methodcaller("tobytes")

# A sampled Predict call as the request path hands it over: (config, model_name, version,
# signature_name, saved_model_tags, target, request, inputs, outputs, output_keys), LoggedCall's
# fields without the kind and the second. A tuple because building it is the request path's
# whole cost of logging (issue 16, half_plus_two at 64 connections on one core: appending this
# tuple cost 2% of REST throughput; also taking the call's template key and values there, 8%;
# the same work in the batch, where its code and data stay in the caches, about 2%).
PredictEntry = tuple


def logged_call(entry: PredictEntry, timestamp_secs: int) -> records.LoggedCall:
    """The LoggedCall of a Predict entry.

    Args:
      entry: a `PredictEntry`.
      timestamp_secs: the second it was logged.

    Returns:
      The call.
    """
    config, model_name, version, signature_name, tags, target, request, inputs, outputs, keys = (
        entry
    )
    return records.LoggedCall(
        config, records.Kind.PREDICT, model_name, version, signature_name, tags, target,
        timestamp_secs, request, inputs, (), outputs, keys,
    )  # fmt: skip


def layout_and_values(
    fields: tuple,
    inputs: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    output_keys: Sequence[str],
) -> tuple[tuple, bytes] | None:
    """A REST Predict call's template key and its tensors' bytes in slot order, when a template
    can take it (fixed-width tensors, none empty).

    Args:
      fields: the call's `_RECORD_FIELDS`, in that order.
      inputs: its inputs, {alias: array}.
      outputs: its outputs, {alias: array}.
      output_keys: the outputs it answered, in order.

    Returns:
      (layout, values), or None for the generic path.
    """
    # One flat list, no generator expressions: ~0.6 us for a tensor in and one out.
    key = [fields]
    values = []
    for name, array in inputs.items():
        dtype, shape = array.dtype, array.shape
        if dtype not in _COPYABLE or 0 in shape:
            return None
        key += (name, dtype, shape)
        values.append(array.tobytes())
    key.append(None)  # where the outputs start
    for name in output_keys:
        array = outputs[name]
        dtype, shape = array.dtype, array.shape
        if dtype not in _COPYABLE or 0 in shape:
            return None
        key += (name, dtype, shape)
        values.append(array.tobytes())
    return tuple(key), b"".join(values)


def _fill(template: Template, columns: list[np.ndarray], count: int) -> bytes:
    """The framed records of `count` calls: `columns` holds each slot's values, a row a call."""
    width = template.framed.size
    framed = np.empty((count, width), dtype=np.uint8)
    framed[:] = template.framed
    for (offset, _, size), column in zip(template.slots, columns, strict=True):
        framed[:, offset : offset + size] = column
    data = framed.tobytes()
    crcs = np.fromiter(
        map(google_crc32c.value, map(data.__getitem__, template.record_slices(count))),
        dtype=np.uint32,
        count=count,
    )
    masked = ((crcs >> np.uint32(15)) | (crcs << np.uint32(17))) + _MASK_DELTA
    framed[:, width - _FOOTER_BYTES :] = (
        masked.astype("<u4").view(np.uint8).reshape(count, _FOOTER_BYTES)
    )
    return framed.tobytes()


def _columns_of_values(template: Template, values: list[bytes]) -> list[np.ndarray]:
    rows = np.frombuffer(b"".join(values), dtype=np.uint8).reshape(
        len(values), template.values_size
    )
    return [rows[:, start : start + size] for _, start, size in template.slots]


def _all_equal(values: list) -> bool:
    return values.count(values[0]) == len(values)


def _shared_columns(run: list[PredictEntry]) -> list[list[np.ndarray]] | None:
    """Each tensor's arrays across a run of REST Predict entries, in slot order, when every entry
    has the first one's tensor names, dtypes and shapes (else None).

    Only C calls per entry (itemgetter, map, list.count): a run of a steady client's calls costs
    no Python code per call (issue 16: 1.5 us a call with `layout_and_values` per call, ~0.6 us
    this way, in batches of 100).
    """
    first = run[0]
    inputs = list(map(_ENTRY_INPUTS, run))
    if not _all_equal(list(map(tuple, inputs))):
        return None
    output_keys = tuple(first[9])
    if list(map(tuple, map(_ENTRY_OUTPUT_KEYS, run))).count(output_keys) != len(run):
        return None
    outputs = list(map(_ENTRY_OUTPUTS, run))
    columns = [list(map(operator.itemgetter(name), inputs)) for name in first[7]]
    columns += [list(map(operator.itemgetter(name), outputs)) for name in output_keys]
    for arrays in columns:
        if not (_all_equal(list(map(_DTYPE, arrays))) and _all_equal(list(map(_SHAPE, arrays)))):
            return None
    return columns


class BatchEncoder:
    """Encodes batches of logged calls, keeping the templates of the layouts it has seen."""

    def __init__(self) -> None:
        self._templates: collections.OrderedDict[tuple, Template] = collections.OrderedDict()

    def encode(
        self,
        calls: Sequence[records.LoggedCall],
        predicts: Sequence[PredictEntry] = (),
        timestamp_secs: int = 0,
    ) -> tuple[list[Chunk], list[tuple[str, Exception]]]:
        """Frames every call's PredictionLog record.

        Args:
          calls: sampled calls, in the order they were logged.
          predicts: sampled Predict calls as the request path handed them over, in order.
          timestamp_secs: the second `predicts` are logged at.

        Returns:
          (the framed records in chunks, (model name, error) for each call that could not be
          encoded).
        """
        # {layout: (its first call, every call's values)}: a batch of one steady client is one
        # layout (its template's key holds the second, so a second's calls share it).
        by_layout: dict[tuple, tuple[records.LoggedCall | PredictEntry, list[bytes]]] = {}
        generic: list[records.LoggedCall] = []
        # Runs of consecutive entries with the same record fields (a steady client: one run a
        # batch), merged by those fields (interleaved models).
        runs: dict[tuple, list[PredictEntry]] = {}
        for fields, run in itertools.groupby(predicts, _ENTRY_FIELDS):
            same = runs.get(fields)
            if same is None:
                runs[fields] = list(run)
            else:
                same.extend(run)
        chunks: list[Chunk] = []
        failed: list[tuple[str, Exception]] = []
        for fields, run in runs.items():
            first = run[0]
            columns = None
            if list(map(_ENTRY_REQUEST, run)).count(None) == len(run):
                columns = _shared_columns(run)
            prepared = None
            if columns is not None:
                prepared = layout_and_values(
                    (*fields, timestamp_secs), first[7], first[8], first[9]
                )
            if prepared is None:
                self._one_by_one(run, timestamp_secs, by_layout, generic)
                continue
            columns_bytes = [
                np.frombuffer(b"".join(map(_TOBYTES, arrays)), dtype=np.uint8).reshape(len(run), -1)
                for arrays in columns
            ]
            self._chunk(
                prepared[0],
                logged_call(first, timestamp_secs),
                lambda _, given=columns_bytes: given,
                len(run),
                chunks,
                failed,
            )
        for call in calls:
            prepared = None
            if call.kind is records.Kind.PREDICT and call.request is None:
                fields = _RECORD_FIELDS(call)
                prepared = layout_and_values(fields, call.inputs, call.outputs, call.output_keys)
            if prepared is None:
                generic.append(call)
                continue
            group = by_layout.setdefault(prepared[0], (call, []))
            group[1].append(prepared[1])
        for layout, (first, values) in by_layout.items():
            if not isinstance(first, records.LoggedCall):
                first = logged_call(first, timestamp_secs)
            self._chunk(
                layout,
                first,
                functools.partial(_columns_of_values, values=values),
                len(values),
                chunks,
                failed,
            )
        for call in generic:
            try:
                framed = tfrecord.frame(records.prediction_log(call))
            except Exception as err:  # noqa: BLE001 (the call was answered; its record is dropped)
                failed.append((call.model_name, err))
                continue
            chunks.append(Chunk(call.config.filename_prefix, call.model_name, framed, 1))
        return chunks, failed

    @staticmethod
    def _one_by_one(
        run: list[PredictEntry],
        timestamp_secs: int,
        by_layout: dict[tuple, tuple[records.LoggedCall | PredictEntry, list[bytes]]],
        generic: list[records.LoggedCall],
    ) -> None:
        """Groups a run's entries by layout one at a time (gRPC requests, mixed shapes)."""
        for entry in run:
            prepared = None
            if entry[6] is None:
                fields = (*entry[:6], timestamp_secs)
                prepared = layout_and_values(fields, entry[7], entry[8], entry[9])
            if prepared is None:
                generic.append(logged_call(entry, timestamp_secs))
                continue
            group = by_layout.setdefault(prepared[0], (entry, []))
            group[1].append(prepared[1])

    def _chunk(
        self,
        layout: tuple,
        first: records.LoggedCall,
        columns: Callable[[Template], list[np.ndarray]],
        count: int,
        chunks: list[Chunk],
        failed: list[tuple[str, Exception]],
    ) -> None:
        """Appends the chunk of `count` calls of one layout, or counts them failed."""
        try:
            template = self._template(layout, first)
            data = _fill(template, columns(template), count)
        except Exception as err:  # noqa: BLE001 (the calls were answered; the records go)
            failed.extend((first.model_name, err) for _ in range(count))
            return
        chunks.append(Chunk(template.prefix, template.model_name, data, count))

    def _template(self, layout: tuple, call: records.LoggedCall) -> Template:
        template = self._templates.get(layout)
        if template is None:
            template = _build(call)
            self._templates[layout] = template
            if len(self._templates) > MAX_TEMPLATES:
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(layout)
        return template
