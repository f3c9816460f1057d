"""Reading logged requests for shadow validation, bounded (no TFX types).

The logs are TFRecord files of `tensorflow.serving.PredictionLog`, what TF Serving's request
logger writes and `assets.extra/tf_serving_warmup_requests` holds. They are read through the
same fsspec file systems the rest of tfrelay reads buckets with (`filesystem_for`: local paths,
`s3://`, `gs://`, credentials from the environment).

The TFRecord framing is parsed here rather than by `tf.data.TFRecordDataset`, because the
dataset reads a whole record into memory before anyone can look at its length: a logged 2 GiB
record would be read whole. Here the 12-byte header is read first, a record over the limit is
skipped with a seek, and a corrupt frame (bad length CRC) ends that file, as TensorFlow's own
reader would, instead of the run.

Frame layout (tensorflow/core/lib/io/record_writer.cc; the request logger's writer,
`tfrelay.serving.request_log.tfrecord`, holds the CRC): uint64 length, uint32 masked
crc32c(length), data, uint32 masked crc32c(data); all little-endian.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Iterator, Mapping

from google.protobuf.message import DecodeError
from tensorflow_serving.apis import prediction_log_pb2

from tfrelay.serving.request_log.files import TEMP_SUFFIX
from tfrelay.serving.request_log.tfrecord import masked_crc
from tfrelay.serving.storage.filesystem import filesystem_for, split_url

DEFAULT_MAX_RECORDS = 1000
# TF Serving's default gRPC message limit is 4 MiB: a logged request is rarely larger.
DEFAULT_MAX_RECORD_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_FILES = 1000
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
# Problem messages kept for a report: enough to diagnose, bounded however bad the logs are (a
# signature error quotes the whole SignatureDef).
MAX_MESSAGES = 5
MAX_MESSAGE_CHARS = 300


def excerpt(message: str) -> str:
    """`message`, cut to MAX_MESSAGE_CHARS."""
    return message if len(message) <= MAX_MESSAGE_CHARS else message[:MAX_MESSAGE_CHARS] + "..."


@dataclasses.dataclass(frozen=True)
class ReadLimits:
    """How much of the logs is read.

    Attributes:
      max_records: records examined in all (good, corrupt and oversized ones alike).
      max_record_bytes: a record longer than this is skipped unread.
      max_file_bytes: bytes read from one file; the rest of a longer file is left.
      max_files: files listed under the location; the rest are left.
    """

    max_records: int = DEFAULT_MAX_RECORDS
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_files: int = DEFAULT_MAX_FILES


@dataclasses.dataclass
class ReadCounts:
    """What reading found (every record examined lands in exactly one of the record counts).

    Attributes:
      files: files read (or begun).
      records: records examined.
      parsed: records that parsed as a PredictionLog.
      corrupt: records with a broken frame, a CRC mismatch or bytes that are no PredictionLog,
        and unreadable files.
      oversized: records over `max_record_bytes`, skipped unread.
      truncated_files: files left unfinished at `max_file_bytes`.
      messages: the first few problems, for the report.
    """

    files: int = 0
    records: int = 0
    parsed: int = 0
    corrupt: int = 0
    oversized: int = 0
    truncated_files: int = 0
    messages: list[str] = dataclasses.field(default_factory=list)

    def note(self, message: str) -> None:
        """Keeps `message` for the report, if fewer than MAX_MESSAGES are kept."""
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append(excerpt(message))


def list_log_files(location: str, max_files: int, environ: Mapping[str, str] | None = None):
    """The TFRecord files a location names, in name order.

    Args:
      location: a file, a directory (every file below it) or a prefix (every file whose name
        starts with it), local or `s3://` / `gs://`.
      max_files: at most this many files are returned.
      environ: the environment storage access is configured from (default `os.environ`).

    Returns:
      (fsspec file system, [paths as that file system names them]).

    Raises:
      ValueError: an unsupported protocol (the message says which extra to install).
    """
    fs = filesystem_for(location, environ)
    _, path = split_url(location)
    if fs.isfile(path):
        return fs, [path]
    if fs.isdir(path):
        found = fs.find(path)
    else:
        found = [p for p in fs.glob(path + "*") if fs.isfile(p)]
    # Hidden and marker files (.crc, _SUCCESS) are no logs, nor is a file tfrelay's request
    # logger is still writing.
    files = sorted(
        p
        for p in found
        if not os.path.basename(p).startswith((".", "_")) and not p.endswith(TEMP_SUFFIX)
    )
    return fs, files[:max_files]


def _read_file(
    fs, path: str, limits: ReadLimits, counts: ReadCounts
) -> Iterator[prediction_log_pb2.PredictionLog]:
    consumed = 0
    with fs.open(path, "rb") as f:
        while counts.records < limits.max_records:
            header = f.read(_HEADER.size)
            if not header:
                return
            if len(header) < _HEADER.size:
                counts.records += 1
                counts.corrupt += 1
                counts.note(f"{path}: truncated record header at byte {consumed}")
                return
            length, length_crc = _HEADER.unpack(header)
            counts.records += 1
            if masked_crc(header[:8]) != length_crc:
                # The length itself is untrustworthy: nothing after it can be found again.
                counts.corrupt += 1
                counts.note(f"{path}: corrupt record header at byte {consumed}; rest of file left")
                return
            frame = _HEADER.size + length + _FOOTER.size
            if consumed + frame > limits.max_file_bytes:
                counts.records -= 1  # not examined: the file's budget ends before it
                counts.truncated_files += 1
                counts.note(f"{path}: left after {consumed} bytes (max {limits.max_file_bytes})")
                return
            consumed += frame
            if length > limits.max_record_bytes:
                counts.oversized += 1
                counts.note(
                    f"{path}: a {length}-byte record skipped (max {limits.max_record_bytes})"
                )
                f.seek(length + _FOOTER.size, os.SEEK_CUR)
                continue
            data = f.read(length)
            footer = f.read(_FOOTER.size)
            if len(data) < length or len(footer) < _FOOTER.size:
                counts.corrupt += 1
                counts.note(f"{path}: truncated record at byte {consumed - frame}")
                return
            if masked_crc(data) != _FOOTER.unpack(footer)[0]:
                # The frame is intact, so the next record can still be read.
                counts.corrupt += 1
                counts.note(f"{path}: record data CRC mismatch at byte {consumed - frame}")
                continue
            try:
                log = prediction_log_pb2.PredictionLog.FromString(data)
            except DecodeError as err:
                counts.corrupt += 1
                counts.note(f"{path}: record at byte {consumed - frame} is no PredictionLog: {err}")
                continue
            counts.parsed += 1
            yield log


def read_prediction_logs(
    location: str,
    limits: ReadLimits,
    counts: ReadCounts,
    environ: Mapping[str, str] | None = None,
) -> Iterator[prediction_log_pb2.PredictionLog]:
    """Yields the PredictionLogs under `location`, within `limits`; never raises on bad data.

    Args:
      location: a file, directory or prefix of TFRecord files (see `list_log_files`).
      limits: the bounds.
      counts: updated as records are read (corrupt, oversized, truncated files, ...).
      environ: the environment storage access is configured from (default `os.environ`).

    Yields:
      Each record that parsed, in file order.

    Raises:
      ValueError: an unsupported protocol. A missing location yields nothing (and is noted).
    """
    fs, files = list_log_files(location, limits.max_files, environ)
    if not files:
        counts.note(f"no log files at {location}")
    for path in files:
        if counts.records >= limits.max_records:
            return
        counts.files += 1
        try:
            yield from _read_file(fs, path, limits, counts)
        except OSError as err:
            counts.corrupt += 1
            counts.note(f"{path}: unreadable: {type(err).__name__}: {err}")
