"""The bucket contract shared by the BucketPusher (writer) and the model server (reader).

```
<base_path>/<model_name>/<version>/saved_model.pb      version = integer directory name
                                   variables/...        (00000123 is version 123, as in TF Serving)
                                   assets/...
                                   assets.extra/tf_serving_warmup_requests   (optional)
                                   assets.extra/tfrelay_push.json            (push record)
                                   model.tflite                              (optional)
```

Publishing rule (writers): upload everything else first and the publish marker (`saved_model.pb`
or `model.tflite`) last; never overwrite an existing version. tfrelay's writer is
`bucket_writer.BucketWriter` (the BucketPusher and `tfrelay push` publish through it); it lists
versions with the reader's `ModelStorage`, so both sides agree on what a version is (issue 15).

Completeness rule (readers), which protects against any writer, not only ours (TF Serving
#1086, #572): a version is loadable only when

1. its publish marker is present;
2. if it carries a push record, every file the record lists is present with the recorded size
   (a record that is not a valid one, see `parse_push_record`, makes the version broken: never
   served);
3. the SavedModel's own references are satisfied: `variables/variables.index` and every
   `variables.data-NNNNN-of-MMMMM` shard when the graph has variables, and every asset file the
   MetaGraph names;
4. (checked by the loader) the version's files did not change while they were being copied or
   loaded, which catches files still growing on a local disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

SAVED_MODEL_PB = "saved_model.pb"
SAVED_MODEL_PBTXT = "saved_model.pbtxt"
TFLITE_MODEL = "model.tflite"
VARIABLES_DIR = "variables"
VARIABLES_INDEX = "variables/variables.index"
ASSETS_DIR = "assets"
ASSETS_EXTRA_DIR = "assets.extra"
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
PUSH_RECORD_FILE = "assets.extra/tfrelay_push.json"
# The pusher's high-water mark: the highest version number it ever published or claimed under a
# base path, so a number is never used twice, also after deletions. A file beside the version
# directories whose name is not an integer, so every reader's listing ignores it.
HIGH_WATER_MARK_FILE = ".tfrelay_high_water_mark"

# Written last by a conforming writer; their presence announces the version.
PUBLISH_MARKERS = (SAVED_MODEL_PB, SAVED_MODEL_PBTXT, TFLITE_MODEL)

_VERSION_RE = re.compile(r"^[0-9]{1,18}$")
_DATA_SHARD_RE = re.compile(r"^variables/variables\.data-(\d{5})-of-(\d{5})$")
# TF1 SavedModels list their assets in this collection instead of `asset_file_def`.
_TF1_ASSETS_COLLECTION = "saved_model_assets"


def parse_version(name: str) -> int | None:
    """Returns the version number a directory name stands for, or None if it is not a version.

    Args:
      name: a child name of a model's base path, e.g. "00000123", "7" or "tmp".

    Returns:
      The integer version (leading zeros ignored, as TF Serving does) or None.
    """
    name = name.rstrip("/")
    if not _VERSION_RE.match(name):
        return None
    return int(name)


def version_dir_name(version: int) -> str:
    """The directory name a writer uses for `version` (plain decimal, like TFX's Pusher)."""
    if version < 0:
        raise ValueError(f"Model versions are non-negative integers, got {version}")
    return str(version)


@dataclass(frozen=True)
class Completeness:
    """The verdict of `check_complete` on one version's file listing.

    Attributes:
      complete: whether the version may be loaded.
      missing: files (relative to the version directory) still missing or of the wrong size.
      marker: the publish marker found (decides the servable kind), or None.
    """

    complete: bool
    missing: tuple[str, ...] = field(default_factory=tuple)
    marker: str | None = None

    def describe(self) -> str:
        if self.complete:
            return "complete"
        if self.marker is None:
            return "no saved_model.pb or model.tflite yet"
        shown = ", ".join(self.missing[:5])
        more = f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else ""
        return f"waiting for {shown}{more}"


def _saved_model_references(saved_model_bytes: bytes) -> tuple[bool, set[str]]:
    """Returns (needs_variables, asset file names) that a serialized SavedModel refers to."""
    # Imported here so that the pure listing helpers above stay importable without TensorFlow.
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString(saved_model_bytes)
    needs_variables = False
    assets: set[str] = set()
    for meta_graph in saved_model.meta_graphs:
        if meta_graph.saver_def.filename_tensor_name:
            needs_variables = True
        if any(node.WhichOneof("kind") == "variable" for node in meta_graph.object_graph_def.nodes):
            needs_variables = True
        assets.update(asset.filename for asset in meta_graph.asset_file_def)
        collection = meta_graph.collection_def.get(_TF1_ASSETS_COLLECTION)
        if collection is not None:
            for packed in collection.any_list.value:
                asset = meta_graph_pb2.AssetFileDef()
                packed.Unpack(asset)
                assets.add(asset.filename)
    return needs_variables, assets


def _missing_variables(files: Mapping[str, int]) -> list[str]:
    missing = []
    if VARIABLES_INDEX not in files:
        missing.append(VARIABLES_INDEX)
    shards: dict[int, int] = {}
    for path in files:
        match = _DATA_SHARD_RE.match(path)
        if match:
            shards[int(match.group(1))] = int(match.group(2))
    if not shards:
        missing.append("variables/variables.data-00000-of-*")
        return missing
    total = max(shards.values())
    for index in range(total):
        if index not in shards:
            missing.append(f"variables/variables.data-{index:05d}-of-{total:05d}")
    return missing


# A push record is a few kB (one line per file); anything much larger is not ours (issue 13).
MAX_PUSH_RECORD_BYTES = 1 << 20


@dataclass(frozen=True)
class PushRecord:
    """A validated push record (`assets.extra/tfrelay_push.json`).

    Attributes:
      files: {relative posix path: size in bytes} the writer uploaded (the record excluded).
      checksum: the model's `model_checksum`, or None when the record has none.
      raw: the whole record as written (lineage for the model listing and the pusher).
    """

    files: Mapping[str, int]
    checksum: str | None
    raw: Mapping[str, object]


def _safe_relative_path(path: object) -> bool:
    if not isinstance(path, str) or not path or "\\" in path or "\0" in path:
        return False
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def parse_push_record(data: bytes) -> PushRecord:
    """The one parser of push records, for the server's judge and loader and for the pusher.

    Bounded: at most MAX_PUSH_RECORD_BYTES, any nesting depth (a RecursionError is a bad
    record, not a crash), and only a JSON object whose `files` maps safe relative paths (no
    `..`, no absolute path, no backslash) to non-negative integers. Before issue 13's review a
    record of `[]` or one nested 100k deep raised out of the poll and stopped the model's polling.

    Args:
      data: the file's bytes.

    Returns:
      The validated record.

    Raises:
      ValueError: the record is not one (the version is broken, never served).
    """
    if len(data) > MAX_PUSH_RECORD_BYTES:
        raise ValueError(
            f"{PUSH_RECORD_FILE} has {len(data)} bytes, more than {MAX_PUSH_RECORD_BYTES}"
        )
    try:
        record = json.loads(data)
    except RecursionError as err:
        raise ValueError(f"{PUSH_RECORD_FILE} is nested too deeply") from err
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{PUSH_RECORD_FILE} is not valid JSON: {err}") from err
    if not isinstance(record, dict):
        raise ValueError(f"{PUSH_RECORD_FILE} is not a JSON object")
    files = record.get("files", {})
    if files is None:
        files = {}
    if not isinstance(files, dict):
        raise ValueError(f"{PUSH_RECORD_FILE}: 'files' is not an object")
    for path, size in files.items():
        if not _safe_relative_path(path) or path == PUSH_RECORD_FILE:
            raise ValueError(f"{PUSH_RECORD_FILE}: {str(path)[:100]!r} is not a relative path")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"{PUSH_RECORD_FILE}: the size of {path!r} is not a byte count")
    checksum = record.get("checksum")
    if checksum is not None and not isinstance(checksum, str):
        raise ValueError(f"{PUSH_RECORD_FILE}: 'checksum' is not a string")
    return PushRecord(dict(files), checksum or None, record)


def check_complete(
    files: Mapping[str, int],
    read_file: Callable[[str], bytes],
    prefer_tflite: bool = False,
) -> Completeness:
    """Decides whether a version directory holds a whole, loadable model.

    Args:
      files: every file under the version directory, as {relative posix path: size in bytes}.
      read_file: reads a file by relative path (used for the SavedModel and the push record).
      prefer_tflite: judge `model.tflite` first, as `--prefer_tflite_model` loads it.

    Returns:
      The verdict, with the missing files when incomplete.

    Raises:
      ValueError: if the SavedModel or push record is present but unreadable (a broken version,
        as opposed to an incomplete one).
    """
    markers = [SAVED_MODEL_PB, SAVED_MODEL_PBTXT, TFLITE_MODEL]
    if prefer_tflite:
        markers = [TFLITE_MODEL, SAVED_MODEL_PB, SAVED_MODEL_PBTXT]
    marker = next((m for m in markers if m in files), None)
    if marker is None:
        return Completeness(False, (), None)

    missing: list[str] = []
    if PUSH_RECORD_FILE in files:
        if files[PUSH_RECORD_FILE] > MAX_PUSH_RECORD_BYTES:
            raise ValueError(
                f"{PUSH_RECORD_FILE} has {files[PUSH_RECORD_FILE]} bytes, more than "
                f"{MAX_PUSH_RECORD_BYTES}"
            )
        # Every file the record lists must be in the listing with its size (else: incomplete).
        for path, size in parse_push_record(read_file(PUSH_RECORD_FILE)).files.items():
            if files.get(path) != size:
                missing.append(path)

    if marker == SAVED_MODEL_PB:
        try:
            needs_variables, assets = _saved_model_references(read_file(SAVED_MODEL_PB))
        except Exception as err:
            raise ValueError(f"{SAVED_MODEL_PB} cannot be parsed: {err}") from err
        if needs_variables:
            missing.extend(_missing_variables(files))
        missing.extend(
            f"{ASSETS_DIR}/{name}" for name in sorted(assets) if f"{ASSETS_DIR}/{name}" not in files
        )

    unique_missing = tuple(dict.fromkeys(missing))
    return Completeness(not unique_missing, unique_missing, marker)


_CHUNK_BYTES = 1 << 20


def model_checksum(model_dir: str, files: Mapping[str, int]) -> str:
    """A model's identity: sha256 over its sorted relative paths, sizes and contents.

    The one definition, shared by the pusher (which records it in the push record) and the
    server (which verifies every copy against it before a load).

    Args:
      model_dir: a local directory holding the files.
      files: {relative posix path: size in bytes}; the push record itself is never included.

    Returns:
      "sha256:<hex digest>".
    """
    return checksum_of(
        files, lambda relative: open(os.path.join(model_dir, *relative.split("/")), "rb")
    )


def checksum_of(files: Mapping[str, int], open_file: Callable[[str], BinaryIO]) -> str:
    """`model_checksum` over files opened by `open_file`, read in 1 MiB chunks.

    `tfrelay models rollback` names a version without a push record this way, reading it
    from the bucket without a local copy (issue 16).

    Args:
      files: {relative posix path: size in bytes}; the push record itself is never included.
      open_file: opens a file by relative path for binary reading (closed here).

    Returns:
      "sha256:<hex digest>".
    """
    digest = hashlib.sha256()
    for relative in sorted(files):
        # Path and size delimit each file, so moving bytes from one file to the next changes the
        # digest.
        digest.update(f"{relative}\0{files[relative]}\0".encode())
        with open_file(relative) as handle:
            for chunk in iter(lambda handle=handle: handle.read(_CHUNK_BYTES), b""):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"
