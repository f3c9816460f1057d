"""The BucketPusher on a local base path: real SavedModels in real TFX artifacts, the executor run
as TFX's launcher runs it, and tfrelay's model server as the judge of what was published."""

from __future__ import annotations

import datetime
import json
import logging
import os
import pathlib
import re
import time

import httpx
import pytest
from tfx import v1 as tfx
from tfx.orchestration import metadata
from tfx.types import standard_artifacts

from support.servers import InProcessModelServer, wait_for_version, wait_until
from tfrelay.components import properties
from tfrelay.components.pusher import BucketPusher, executor, push
from tfrelay.serving.options import ServerOptions
from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.filesystem import filesystem_for
from tfrelay.serving.storage.model_storage import ModelStorage

MODEL_NAME = "penguins"
# The progress and retention lines come from the bucket contract's writer (issue 15).
PUSH_LOGGER = "tfrelay.serving.storage.bucket_writer"


class FailingFileSystem:
    """A real fsspec file system whose uploads (put_file / pipe_file) fail after the first
    `uploads_allowed`, as a dropped connection would: the storage boundary, nothing of tfrelay's.

    With `torn_write`, the failing upload first writes half of its bytes to its target, as a
    process killed in the middle of a local copy would leave it.
    """

    def __init__(self, fs, uploads_allowed: int, torn_write: bool = False) -> None:
        self._fs = fs
        self._uploads_allowed = uploads_allowed
        self._torn_write = torn_write
        self.uploads = 0

    def __getattr__(self, name):
        return getattr(self._fs, name)

    def _upload(self, target: str, data: bytes) -> None:
        if self.uploads >= self._uploads_allowed:
            if self._torn_write:
                self._fs.pipe_file(target, data[: len(data) // 2])
            raise ConnectionResetError("connection reset by peer (injected)")
        self.uploads += 1

    def put_file(self, lpath, rpath, **kwargs):
        self._upload(rpath, pathlib.Path(lpath).read_bytes())
        return self._fs.put_file(lpath, rpath, **kwargs)

    def pipe_file(self, path, value, **kwargs):
        self._upload(path, value)
        return self._fs.pipe_file(path, value, **kwargs)


class RecordingFileSystem:
    """A real fsspec file system that records every file written, in order."""

    def __init__(self, fs) -> None:
        self._fs = fs
        self.writes: list[tuple[str, bytes | None]] = []

    def __getattr__(self, name):
        return getattr(self._fs, name)

    def put_file(self, lpath, rpath, **kwargs):
        self.writes.append((rpath, None))
        return self._fs.put_file(lpath, rpath, **kwargs)

    def pipe_file(self, path, value, **kwargs):
        self.writes.append((path, value))
        return self._fs.pipe_file(path, value, **kwargs)


def _version_dirs(base: pathlib.Path) -> list[str]:
    # The base path also holds the pusher's high-water mark (a file, not a version).
    if not base.exists():
        return []
    return sorted((n for n in os.listdir(base) if (base / n).is_dir()), key=int)


def _record(base: pathlib.Path, version: str) -> dict:
    return json.loads((base / version / bucket.PUSH_RECORD_FILE).read_text())


def _files(directory: pathlib.Path) -> dict[str, int]:
    return {
        path.relative_to(directory).as_posix(): path.stat().st_size
        for path in directory.rglob("*")
        if path.is_file()
    }


def _snapshot(directory: pathlib.Path) -> dict[str, tuple[int, int]]:
    return {
        path.relative_to(directory).as_posix(): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in directory.rglob("*")
    }


_TEMPORARY_NAME = re.compile(r"^\.(?P<name>.+)\.tfrelay-tmp-[0-9a-f]{8}$")


def _written_file(path: str, version_dir: pathlib.Path) -> str:
    """The version-relative file a write was for (local writes go to a temporary name first,
    then os.replace moves them into place)."""
    relative = pathlib.PurePosixPath(path).relative_to(version_dir.as_posix())
    match = _TEMPORARY_NAME.match(relative.name)
    return str(relative.with_name(match["name"])) if match else str(relative)


def _predict(url: str, x: float = 1.0) -> float:
    response = httpx.post(
        f"{url}/v1/models/{MODEL_NAME}:predict", json={"instances": [x]}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["predictions"][0]


def _request(model, base: pathlib.Path, run_id: str | None, **settings) -> push.PushRequest:
    return push.PushRequest(
        model_dir=os.path.join(model.uri, "Format-Serving"),
        base_path=str(base),
        model_name=MODEL_NAME,
        lineage=push.Lineage("penguins-pipeline", run_id, "BucketPusher"),
        source_model_uri=model.uri,
        **settings,
    )


def test_push_to_local_dir_publishes_version_1_then_2_with_a_complete_push_record(
    tmp_path, make_model, make_blessing, run_pusher, caplog
):
    caplog.set_level(logging.INFO, logger=PUSH_LOGGER)
    base = tmp_path / "models" / MODEL_NAME
    first_model = make_model("half_plus_two")
    first = run_pusher(first_model, str(base), make_blessing(True, metrics={"accuracy": 0.9}))
    second_model = make_model("half_plus_three")
    metrics = {"accuracy": 0.97, "loss": 0.08}
    second = run_pusher(
        second_model, str(base), make_blessing(True, metrics=metrics), run_id="run-2"
    )

    assert _version_dirs(base) == ["1", "2"]
    assert first.get_int_custom_property(properties.PUSHED) == 1
    assert first.get_string_custom_property(properties.PUSHED_VERSION) == "1"
    assert second.get_int_custom_property(properties.PUSHED) == 1
    assert second.get_string_custom_property(properties.PUSHED_VERSION) == "2"
    assert second.get_string_custom_property(properties.PUSHED_DESTINATION) == f"{base}/2"
    assert second.get_string_custom_property(properties.PUSHED_MODEL_NAME) == MODEL_NAME
    assert second.get_string_custom_property(properties.PUSH_REASON).startswith("pushed: ")

    source = pathlib.Path(second_model.uri) / "Format-Serving"
    record = _record(base, "2")
    assert record["files"] == _files(source)
    published = _files(base / "2")
    del published[bucket.PUSH_RECORD_FILE]
    assert published == record["files"]
    assert (base / "2" / bucket.SAVED_MODEL_PB).is_file()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", record["checksum"])
    assert record["checksum"] == push.model_checksum(str(source), _files(source))
    assert record["checksum"] != _record(base, "1")["checksum"]
    assert record["metrics"] == metrics
    assert _record(base, "1")["metrics"] == {"accuracy": 0.9}
    assert record["blessed"] is True
    assert record["model_name"] == MODEL_NAME
    assert record["version"] == 2
    assert record["status"] == push.STATUS_UPLOADED
    assert record["pipeline_name"] == "penguins-pipeline"
    assert record["pipeline_run_id"] == "run-2"
    assert record["component_id"] == "BucketPusher"
    assert record["source_model_uri"] == second_model.uri
    pushed_at = datetime.datetime.fromisoformat(record["pushed_at"])
    assert pushed_at.utcoffset() == datetime.timedelta(0)
    assert abs(time.time() - pushed_at.timestamp()) < 120

    verdict, _ = ModelStorage(str(base)).check_complete("2")
    assert verdict.complete, verdict.describe()
    assert verdict.marker == bucket.SAVED_MODEL_PB
    archive = pathlib.Path(second.uri) / executor.PUSH_RECORD_ARCHIVE
    assert json.loads(archive.read_text()) == record
    assert not (pathlib.Path(second.uri) / bucket.SAVED_MODEL_PB).exists()

    total = len(record["files"]) + 1
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("uploaded ")]
    assert re.match(rf"uploaded 1/{total} files, [\d.]+ \w?B of [\d.]+ \w?B", progress[-total])
    assert progress[-1].startswith(f"uploaded {total}/{total} files")
    assert progress[-1].endswith(bucket.SAVED_MODEL_PB)
    assert any(
        r.getMessage().startswith(f"Published {MODEL_NAME} version 2") for r in caplog.records
    )


def test_push_not_blessed_does_not_push(tmp_path, make_model, make_blessing, run_pusher):
    base = tmp_path / "models" / MODEL_NAME
    run_pusher(make_model("half_plus_two"), str(base), make_blessing(True))
    before = _snapshot(base)
    failed_checks = [
        "accuracy 0.61 is below the threshold 0.70",
        "signature input 'body_mass_g' of the baseline is missing",
    ]

    pushed = run_pusher(
        make_model("half_plus_three"),
        str(base),
        make_blessing(False, failed_checks=failed_checks),
        run_id="run-2",
    )

    assert _snapshot(base) == before
    assert pushed.get_int_custom_property(properties.PUSHED) == 0
    assert not pushed.has_custom_property(properties.PUSHED_DESTINATION)
    assert not pushed.has_custom_property(properties.PUSHED_VERSION)
    assert pushed.get_string_custom_property(properties.PUSHED_MODEL_NAME) == MODEL_NAME
    reason = pushed.get_string_custom_property(properties.PUSH_REASON)
    assert reason.startswith("not pushed: the model was not blessed")
    for check in failed_checks:
        assert check in reason


def test_push_not_blessed_to_an_empty_base_path_creates_nothing(
    tmp_path, make_model, make_blessing, run_pusher
):
    base = tmp_path / "models" / MODEL_NAME

    pushed = run_pusher(make_model(), str(base), make_blessing(False))

    assert not base.exists()
    assert pushed.get_int_custom_property(properties.PUSHED) == 0
    assert "not blessed" in pushed.get_string_custom_property(properties.PUSH_REASON)


def test_push_without_blessing_pushes_with_a_warning(tmp_path, make_model, run_pusher, caplog):
    caplog.set_level(logging.WARNING)
    base = tmp_path / "models" / MODEL_NAME

    pushed = run_pusher(make_model(), str(base), blessing=None)

    assert pushed.get_int_custom_property(properties.PUSHED) == 1
    assert _version_dirs(base) == ["1"]
    record = _record(base, "1")
    assert record["blessed"] is None
    assert record["metrics"] == {}
    assert any("without validation" in r.getMessage() for r in caplog.records)


def test_push_same_model_twice_is_idempotent(tmp_path, make_model, run_pusher):
    base = tmp_path / "models" / MODEL_NAME
    model = make_model()
    run_pusher(model, str(base), run_id="run-1")
    before = _snapshot(base)

    retried = run_pusher(model, str(base), run_id="run-1")
    rerun = run_pusher(make_model(), str(base), run_id="run-2")  # same bytes, another run

    assert _version_dirs(base) == ["1"]
    assert _snapshot(base) == before
    for pushed in (retried, rerun):
        assert pushed.get_int_custom_property(properties.PUSHED) == 1
        assert pushed.get_string_custom_property(properties.PUSHED_VERSION) == "1"
        assert pushed.get_string_custom_property(properties.PUSHED_DESTINATION) == f"{base}/1"
        reason = pushed.get_string_custom_property(properties.PUSH_REASON)
        assert reason.startswith("already pushed: version 1")
        assert "run-1" in reason
    assert json.loads((pathlib.Path(rerun.uri) / executor.PUSH_RECORD_ARCHIVE).read_text()) == (
        _record(base, "1")
    )


def test_interrupted_push_is_never_served_and_retry_of_the_run_resumes_the_same_version(
    tmp_path, make_model, run_pusher
):
    base = tmp_path / "models" / MODEL_NAME
    run_pusher(make_model("half_plus_two"), str(base), run_id="run-0")
    model = make_model("half_plus_three")
    # The claim record and two model files get through; the third model file fails.
    failing = FailingFileSystem(filesystem_for(str(base)), uploads_allowed=3)

    with pytest.raises(push.PushError) as raised:
        push.push_model(_request(model, base, "run-1"), fs=failing)

    message = str(raised.value)
    assert "ConnectionResetError" in message
    assert "Nothing was published" in message
    assert "Running the same pipeline run again resumes into it" in message
    assert _version_dirs(base) == ["1", "2"]
    verdict, files = ModelStorage(str(base)).check_complete("2")
    assert not verdict.complete
    assert verdict.marker is None
    assert bucket.SAVED_MODEL_PB not in files
    assert len(files) == 3  # the claim and the two model files, no temporary leftovers

    options = ServerOptions(
        model_name=MODEL_NAME, model_base_path=str(base), file_system_poll_wait_seconds=0.1
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, MODEL_NAME, 1)
        polls = server.server.source.poll_count
        wait_until(lambda: server.server.source.poll_count >= polls + 3, 10, what="3 polls")
        listed = httpx.get(f"{server.url}/v1/models", timeout=5).json()["models"][0]
        assert listed["incomplete_versions"] == ["2"]
        assert [s["version"] for s in listed["model_version_status"]] == ["1"]
        assert _predict(server.url) == 2.5

        retried = run_pusher(model, str(base), run_id="run-1")

        assert retried.get_string_custom_property(properties.PUSHED_VERSION) == "2"
        assert "resumed" in retried.get_string_custom_property(properties.PUSH_REASON)
        assert _version_dirs(base) == ["1", "2"]
        verdict, _ = ModelStorage(str(base)).check_complete("2")
        assert verdict.complete, verdict.describe()
        assert _record(base, "2")["pipeline_run_id"] == "run-1"
        wait_for_version(server.url, MODEL_NAME, 2)
        assert _predict(server.url) == 3.5


def test_push_killed_while_writing_the_marker_leaves_no_marker_behind(tmp_path, make_model):
    base = tmp_path / "models" / MODEL_NAME
    model = make_model()
    # Claim, three model files and the record get through; saved_model.pb is torn mid-write.
    failing = FailingFileSystem(filesystem_for(str(base)), uploads_allowed=5, torn_write=True)

    with pytest.raises(push.PushError, match=r"upload saved_model.pb \(file 5 of 5\)"):
        push.push_model(_request(model, base, "run-1"), fs=failing)

    verdict, files = ModelStorage(str(base)).check_complete("1")
    assert (verdict.complete, verdict.marker) == (False, None)
    source_files = push.list_model_files(os.path.join(model.uri, "Format-Serving"))
    # Everything but the marker, whole; no torn temporary file left over.
    assert {name: info.size for name, info in files.items() if name != bucket.PUSH_RECORD_FILE} == {
        name: size for name, size in source_files.items() if name != bucket.SAVED_MODEL_PB
    }

    result = push.push_model(_request(model, base, "run-1"))

    assert (result.version, result.resumed) == (1, True)
    assert ModelStorage(str(base)).check_complete("1")[0].complete


def test_interrupted_push_of_another_run_is_left_alone_and_a_new_version_is_taken(
    tmp_path, make_model
):
    base = tmp_path / "models" / MODEL_NAME
    model = make_model()
    failing = FailingFileSystem(filesystem_for(str(base)), uploads_allowed=2)
    with pytest.raises(push.PushError):
        push.push_model(_request(model, base, "run-1"), fs=failing)
    partial = _snapshot(base / "1")

    result = push.push_model(_request(model, base, "run-2"))

    assert (result.version, result.resumed) == (2, False)
    assert _snapshot(base / "1") == partial
    assert ModelStorage(str(base)).check_complete("2")[0].complete


def test_interrupted_push_below_a_newer_published_version_is_not_resumed(tmp_path, make_model):
    base = tmp_path / "models" / MODEL_NAME
    model = make_model("half_plus_two")
    failing = FailingFileSystem(filesystem_for(str(base)), uploads_allowed=2)
    with pytest.raises(push.PushError):
        push.push_model(_request(model, base, "run-1"), fs=failing)
    push.push_model(_request(make_model("half_plus_three"), base, "run-9"))

    # Resuming into version 1 would publish it below the serving version 2, where the server's
    # latest policy would never pick it.
    result = push.push_model(_request(model, base, "run-1"))

    assert (result.version, result.resumed) == (3, False)
    assert _version_dirs(base) == ["1", "2", "3"]
    assert not ModelStorage(str(base)).check_complete("1")[0].complete


def test_retention_keep_last_2_after_4_pushes_keeps_only_the_newest_2(
    tmp_path, make_model, run_pusher, caplog
):
    caplog.set_level(logging.INFO, logger=PUSH_LOGGER)
    base = tmp_path / "models" / MODEL_NAME
    # Another writer's unpublished upload: retention only ever deletes published versions.
    (base / "0" / "variables").mkdir(parents=True)
    (base / "0" / "variables" / "variables.index").write_bytes(b"partial")

    pushes = [
        run_pusher(make_model(variant=f"model {i}"), str(base), run_id=f"run-{i}", keep_last=2)
        for i in range(4)
    ]

    assert _version_dirs(base) == ["0", "3", "4"]
    assert [p.get_string_custom_property(properties.PUSHED_VERSION) for p in pushes] == [
        "1",
        "2",
        "3",
        "4",
    ]
    assert "retention removed versions [2]" in pushes[-1].get_string_custom_property(
        properties.PUSH_REASON
    )
    deleted = [r.getMessage() for r in caplog.records if "Retention" in r.getMessage()]
    assert [m.split(": deleted ")[1].split(" at ")[0] for m in deleted] == [
        "version 1",
        "version 2",
    ]
    for version in ("3", "4"):
        assert ModelStorage(str(base)).check_complete(version)[0].complete


def test_next_integer_versioning_skips_an_unpublished_highest_version(
    tmp_path, make_model, run_pusher
):
    base = tmp_path / "models" / MODEL_NAME
    run_pusher(make_model("half_plus_two"), str(base), run_id="run-1")
    # A version another writer is still uploading: the highest number, no marker yet.
    (base / "5" / "variables").mkdir(parents=True)
    (base / "5" / "variables" / "variables.index").write_bytes(b"in progress")
    in_progress = _snapshot(base / "5")

    pushed = run_pusher(make_model("half_plus_three"), str(base), run_id="run-2")

    assert pushed.get_string_custom_property(properties.PUSHED_VERSION) == "6"
    assert _version_dirs(base) == ["1", "5", "6"]
    assert _snapshot(base / "5") == in_progress
    assert ModelStorage(str(base)).check_complete("6")[0].complete


def test_unix_timestamp_versioning_uses_the_clock_and_stays_above_every_version(
    tmp_path, make_model, run_pusher
):
    base = tmp_path / "models" / MODEL_NAME
    before = int(time.time())
    first = run_pusher(make_model("half_plus_two"), str(base), versioning="unix_timestamp")
    after = int(time.time())
    # A version from the future (a clock-skewed writer): the next push must still be newer.
    (base / "99999999999").mkdir()

    second = run_pusher(
        make_model("half_plus_three"), str(base), run_id="run-2", versioning="unix_timestamp"
    )

    assert before <= int(first.get_string_custom_property(properties.PUSHED_VERSION)) <= after
    assert second.get_string_custom_property(properties.PUSHED_VERSION) == "100000000000"
    assert ModelStorage(str(base)).check_complete("100000000000")[0].complete


def test_push_writes_claim_then_files_then_record_then_marker_last(tmp_path, make_model):
    base = tmp_path / "models" / MODEL_NAME
    recording = RecordingFileSystem(filesystem_for(str(base)))

    push.push_model(_request(make_model(), base, "run-1"), fs=recording)

    written = [_written_file(path, base / "1") for path, _ in recording.writes]
    assert written[0] == bucket.PUSH_RECORD_FILE
    assert json.loads(recording.writes[0][1])["status"] == push.STATUS_UPLOADING
    assert sorted(written[1:-2]) == sorted(
        [bucket.VARIABLES_INDEX, "variables/variables.data-00000-of-00001", "assets/foo.txt"]
    )
    assert written[-2:] == [bucket.PUSH_RECORD_FILE, bucket.SAVED_MODEL_PB]
    assert json.loads(recording.writes[-2][1])["status"] == push.STATUS_UPLOADED
    assert not [p for p in (base / "1").rglob("*") if ".tfrelay-tmp-" in p.name]


def test_tflite_only_model_is_published_with_model_tflite_as_the_marker(tmp_path):
    model_dir = tmp_path / "tflite_model"
    (model_dir / "assets.extra").mkdir(parents=True)
    (model_dir / bucket.TFLITE_MODEL).write_bytes(b"TFL3" + bytes(60))
    (model_dir / "assets.extra" / "labels.txt").write_text("Adelie\nChinstrap\nGentoo\n")
    base = tmp_path / "models" / MODEL_NAME
    recording = RecordingFileSystem(filesystem_for(str(base)))

    result = push.push_model(
        push.PushRequest(model_dir=str(model_dir), base_path=str(base), model_name=MODEL_NAME),
        fs=recording,
    )

    written = [_written_file(path, base / "1") for path, _ in recording.writes]
    assert written == [
        bucket.PUSH_RECORD_FILE,
        "assets.extra/labels.txt",
        bucket.PUSH_RECORD_FILE,
        bucket.TFLITE_MODEL,
    ]
    verdict, _ = ModelStorage(str(base)).check_complete(str(result.version))
    assert verdict.complete
    assert verdict.marker == bucket.TFLITE_MODEL
    assert result.record["files"] == {"assets.extra/labels.txt": 24, bucket.TFLITE_MODEL: 64}
    assert result.record["pipeline_run_id"] is None


def test_upload_order_puts_the_record_before_every_publish_marker():
    files = {
        bucket.SAVED_MODEL_PB: 10,
        bucket.TFLITE_MODEL: 20,
        "variables/variables.index": 30,
        "assets/vocab.txt": 40,
    }

    assert push.upload_order(files) == [
        "assets/vocab.txt",
        "variables/variables.index",
        bucket.PUSH_RECORD_FILE,
        bucket.TFLITE_MODEL,
        bucket.SAVED_MODEL_PB,
    ]


def test_checksum_changes_with_any_byte_or_path_of_the_model(tmp_path, saved_models):
    def checksum(directory: pathlib.Path) -> str:
        return push.model_checksum(str(directory), push.list_model_files(str(directory)))

    original = checksum(saved_models["half_plus_two"])
    copy = tmp_path / "copy"
    copy.mkdir()
    for relative in _files(saved_models["half_plus_two"]):
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        (copy / relative).write_bytes((saved_models["half_plus_two"] / relative).read_bytes())
    assert checksum(copy) == original

    (copy / "assets" / "foo.txt").write_text("asset-file-contentZ")
    assert checksum(copy) != original
    (copy / "assets" / "foo.txt").write_text("asset-file-contents")
    (copy / "assets" / "foo.txt").rename(copy / "assets" / "bar.txt")
    assert checksum(copy) != original


def test_model_artifact_without_format_serving_is_pushed_from_its_root(
    tmp_path, make_model, run_pusher
):
    model = make_model()
    root = pathlib.Path(model.uri)
    for path in (root / "Format-Serving").iterdir():
        path.rename(root / path.name)
    (root / "Format-Serving").rmdir()
    base = tmp_path / "models" / MODEL_NAME

    pushed = run_pusher(model, str(base))

    assert pushed.get_int_custom_property(properties.PUSHED) == 1
    assert ModelStorage(str(base)).check_complete("1")[0].complete


def test_model_without_servable_files_fails_with_a_clear_error(tmp_path, run_pusher, make_model):
    model = make_model()
    (pathlib.Path(model.uri) / "Format-Serving" / bucket.SAVED_MODEL_PB).unlink()
    base = tmp_path / "models" / MODEL_NAME

    with pytest.raises(push.PushError, match="is not a servable model: it has no saved_model.pb"):
        run_pusher(model, str(base))

    assert not base.exists()


def test_bucket_pusher_runs_in_a_local_tfx_pipeline_and_records_the_run(tmp_path, make_model):
    base = tmp_path / "bucket" / MODEL_NAME
    connection = metadata.sqlite_metadata_connection_config(str(tmp_path / "mlmd.sqlite"))
    importer = tfx.dsl.Importer(
        source_uri=make_model().uri, artifact_type=standard_artifacts.Model
    ).with_id("model_importer")
    pusher = BucketPusher(model=importer.outputs["result"], base_path=str(base), keep_last=2)
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="pusher-smoke",
        pipeline_root=str(tmp_path / "pipeline_root"),
        components=[importer, pusher],
        metadata_connection_config=connection,
    )

    tfx.orchestration.LocalDagRunner().run(pipeline)
    tfx.orchestration.LocalDagRunner().run(pipeline)  # a second run of the same model

    assert _version_dirs(base) == ["1"]
    record = _record(base, "1")
    assert record["pipeline_name"] == "pusher-smoke"
    assert record["component_id"] == "BucketPusher"
    assert record["pipeline_run_id"]
    assert record["idempotency_key"] == f"{record['pipeline_run_id']}/{record['checksum']}"
    with metadata.Metadata(connection) as store:
        pushed = store.store.get_artifacts_by_type(standard_artifacts.PushedModel.TYPE_NAME)
    assert [a.custom_properties[properties.PUSHED].int_value for a in pushed] == [1, 1]
    assert [a.custom_properties[properties.PUSHED_VERSION].string_value for a in pushed] == [
        "1",
        "1",
    ]
    reasons = [a.custom_properties[properties.PUSH_REASON].string_value for a in pushed]
    assert reasons[0].startswith("pushed: ")
    assert reasons[1].startswith("already pushed: version 1")
    assert record["pipeline_run_id"] in reasons[1]
