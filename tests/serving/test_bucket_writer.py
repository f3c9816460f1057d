"""The bucket contract's writer (issue 15) on real storage: a local directory and moto's S3
endpoint, with the model server's own `ModelStorage` as the judge of what was published."""

from __future__ import annotations

import json
import logging
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from support.models import write_half_plus_two
from support.servers import moto_s3, s3_client
from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.bucket_writer import BucketWriter
from tfrelay.serving.storage.filesystem import filesystem_for
from tfrelay.serving.storage.model_storage import ModelStorage
from tfrelay.serving.storage.publication import STATUS_UPLOADED, STATUS_UPLOADING, PushError

# The pusher runs this code on the pipeline stack, the server's reader on the serving stack.
pytestmark = pytest.mark.both_stacks

S3_BUCKET = "writer"
DESCRIPTION = {"pipeline_name": "penguins", "selection_reason": "a test"}


class RecordingFileSystem:
    """A real fsspec file system that records the target of every upload, in order."""

    def __init__(self, fs) -> None:
        self._fs = fs
        self.writes: list[str] = []

    def __getattr__(self, name):
        return getattr(self._fs, name)

    def put_file(self, lpath, rpath, **kwargs):
        self.writes.append(rpath)
        return self._fs.put_file(lpath, rpath, **kwargs)

    def pipe_file(self, path, value, **kwargs):
        self.writes.append(path)
        return self._fs.pipe_file(path, value, **kwargs)


class FailingFileSystem(RecordingFileSystem):
    """Uploads fail after the first `allowed`, as a dropped connection would."""

    def __init__(self, fs, allowed: int) -> None:
        super().__init__(fs)
        self._allowed = allowed

    def _count(self) -> None:
        if len(self.writes) >= self._allowed:
            raise ConnectionResetError("connection reset by peer (injected)")

    def put_file(self, lpath, rpath, **kwargs):
        self._count()
        return super().put_file(lpath, rpath, **kwargs)

    def pipe_file(self, path, value, **kwargs):
        self._count()
        return super().pipe_file(path, value, **kwargs)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[float, pathlib.Path]:
    """Two different real SavedModels: y = 0.5x + 2 and y = 0.5x + 3."""
    root = tmp_path_factory.mktemp("writer_models")
    return {b: write_half_plus_two(root / f"b{b:g}", a=0.5, b=b) for b in (2.0, 3.0)}


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    with moto_s3(tmp_path_factory.mktemp("moto")) as env:
        s3_client(env).create_bucket(Bucket=S3_BUCKET)
        yield env


def _relative(writes: list[str], version_dir: str) -> list[str]:
    """Upload targets relative to the version directory, local temporary names undone."""
    out = []
    for path in writes:
        relative = path.split(f"/{version_dir}/", 1)[1]
        head, _, name = relative.rpartition("/")
        if ".tfrelay-tmp-" in name:
            name = name[1:].split(".tfrelay-tmp-")[0]
        out.append(f"{head}/{name}" if head else name)
    return out


def _version_dirs(base: pathlib.Path) -> list[str]:
    return sorted((p.name for p in base.iterdir() if p.is_dir()), key=int)


def test_first_publication_to_a_local_dir_is_version_1_whole_for_the_server(models, tmp_path):
    base = tmp_path / "m"

    published = BucketWriter(str(base)).publish(
        str(models[2.0]), "m", run_id="run-1", description=DESCRIPTION
    )

    assert (published.version, published.destination) == (1, f"{base}/1")
    assert not published.already_published and not published.resumed
    verdict, _ = ModelStorage(str(base)).check_complete("1")
    assert verdict.complete and verdict.marker == bucket.SAVED_MODEL_PB
    record = json.loads((base / "1" / bucket.PUSH_RECORD_FILE).read_text())
    assert record == published.record
    files = {
        p.relative_to(models[2.0]).as_posix(): p.stat().st_size
        for p in models[2.0].rglob("*")
        if p.is_file()
    }
    assert record["files"] == files
    assert record["checksum"] == bucket.model_checksum(str(models[2.0]), files)
    assert record["idempotency_key"] == f"run-1/{record['checksum']}"
    assert record["status"] == STATUS_UPLOADED
    assert record["pipeline_name"] == "penguins" and record["selection_reason"] == "a test"
    assert json.loads((base / bucket.HIGH_WATER_MARK_FILE).read_text())["version"] == 1
    assert not [p for p in base.rglob("*") if ".tfrelay-tmp-" in p.name]


def test_the_files_go_first_then_the_record_then_the_marker_last(models, tmp_path):
    base = tmp_path / "m"
    recording = RecordingFileSystem(filesystem_for(str(base)))

    BucketWriter(str(base), fs=recording).publish(str(models[2.0]), "m")

    written = _relative([w for w in recording.writes if "/1/" in w], "1")
    assert written[0] == bucket.PUSH_RECORD_FILE  # the claim a retry looks for
    assert written[-2:] == [bucket.PUSH_RECORD_FILE, bucket.SAVED_MODEL_PB]
    assert bucket.SAVED_MODEL_PB not in written[:-1]


def test_publishing_the_newest_model_again_writes_nothing(models, tmp_path):
    base = tmp_path / "m"
    writer = BucketWriter(str(base))
    first = writer.publish(str(models[2.0]), "m", run_id="run-1")
    recording = RecordingFileSystem(filesystem_for(str(base)))

    again = BucketWriter(str(base), fs=recording).publish(str(models[2.0]), "m", run_id="run-2")

    assert again.already_published and again.version == 1
    assert again.record == first.record  # the record of the run that published it
    assert recording.writes == []


def test_an_interrupted_publication_resumes_into_its_own_version_for_the_same_run_id(
    models, tmp_path
):
    base = tmp_path / "m"
    failing = FailingFileSystem(filesystem_for(str(base)), allowed=3)  # the claim, two files
    with pytest.raises(PushError, match="Nothing was published"):
        BucketWriter(str(base), fs=failing).publish(str(models[2.0]), "m", run_id="run-1")
    assert not ModelStorage(str(base)).check_complete("1")[0].complete
    claim = json.loads((base / "1" / bucket.PUSH_RECORD_FILE).read_text())
    assert claim["status"] == STATUS_UPLOADING

    other_run = BucketWriter(str(base)).publish(str(models[3.0]), "m", run_id="run-2")
    assert other_run.version == 2  # another run's attempt is left alone
    # Version 1 now lies below the published version 2: resuming there would never be served.
    retried = BucketWriter(str(base)).publish(str(models[2.0]), "m", run_id="run-1")
    assert (retried.version, retried.resumed) == (3, False)


def test_a_retry_of_the_newest_attempt_completes_that_version(models, tmp_path):
    base = tmp_path / "m"
    failing = FailingFileSystem(filesystem_for(str(base)), allowed=4)
    with pytest.raises(PushError):
        BucketWriter(str(base), fs=failing).publish(str(models[2.0]), "m", run_id="run-1")

    retried = BucketWriter(str(base)).publish(str(models[2.0]), "m", run_id="run-1")

    assert (retried.version, retried.resumed) == (1, True)
    assert _version_dirs(base) == ["1"]
    assert ModelStorage(str(base)).check_complete("1")[0].complete


def test_a_number_deleted_for_a_rollback_is_never_published_again(models, tmp_path):
    base = tmp_path / "m"
    writer = BucketWriter(str(base))
    writer.publish(str(models[2.0]), "m")
    writer.publish(str(models[3.0]), "m")
    shutil.rmtree(base / "2")

    again = writer.publish(str(models[3.0]), "m")

    assert again.version == 3 and _version_dirs(base) == ["1", "3"]
    assert writer.read_high_water_mark() == 3


def test_the_writer_sees_exactly_the_versions_the_server_sees(models, tmp_path):
    base = tmp_path / "m"
    writer = BucketWriter(str(base))
    writer.publish(str(models[2.0]), "m")
    (base / "007").mkdir()
    (base / "7").mkdir()
    (base / "tmp").mkdir()
    (base / "12").write_text("a file, not a version")

    assert writer.list_versions() == ModelStorage(str(base)).list_versions()
    assert writer.list_versions() == {1: "1", 7: "007"}
    assert writer.publish(str(models[3.0]), "m").version == 8


def test_a_missing_base_path_has_no_versions_and_logs_no_storage_error(tmp_path, caplog):
    caplog.set_level(logging.WARNING)

    assert BucketWriter(str(tmp_path / "nothing-yet")).list_versions() == {}
    assert not [r for r in caplog.records if r.name.startswith("tfrelay.serving.storage")]


def test_retention_deletes_the_oldest_published_versions_but_never_unpublished_ones(
    models, tmp_path
):
    base = tmp_path / "m"
    (base / "0" / "variables").mkdir(parents=True)  # another writer's upload in progress
    writer = BucketWriter(str(base))
    writer.publish(str(models[2.0]), "m", keep_last=1)

    published = writer.publish(str(models[3.0]), "m", keep_last=1)

    assert published.deleted_versions == (1,)
    assert _version_dirs(base) == ["0", "2"]


def test_the_description_cannot_set_the_contracts_fields(models, tmp_path):
    with pytest.raises(ValueError, match="version"):
        BucketWriter(str(tmp_path / "m")).publish(
            str(models[2.0]), "m", description={"version": 99}
        )
    assert not (tmp_path / "m").exists()


def test_a_directory_without_a_publish_marker_is_refused_before_storage_is_touched(tmp_path):
    (tmp_path / "model" / "variables").mkdir(parents=True)

    with pytest.raises(PushError, match="is not a servable model"):
        BucketWriter(str(tmp_path / "m")).publish(str(tmp_path / "model"), "m")
    assert not (tmp_path / "m").exists()


def test_publication_to_s3_puts_the_marker_last_and_the_server_judges_it_whole(models, s3_env):
    base = f"s3://{S3_BUCKET}/first/m"
    recording = RecordingFileSystem(filesystem_for(base, s3_env))

    published = BucketWriter(base, fs=recording, environ=s3_env).publish(
        str(models[2.0]), "m", run_id="run-1", description=DESCRIPTION
    )

    assert (published.version, published.destination) == (1, f"{base}/1")
    written = _relative([w for w in recording.writes if "/1/" in w], "1")
    assert written[0] == bucket.PUSH_RECORD_FILE
    assert written[-2:] == [bucket.PUSH_RECORD_FILE, bucket.SAVED_MODEL_PB]
    storage = ModelStorage(base, environ=s3_env)
    assert storage.check_complete("1")[0].complete
    keys = {
        item["Key"]
        for item in s3_client(s3_env).list_objects_v2(Bucket=S3_BUCKET, Prefix="first/m/")[
            "Contents"
        ]
    }
    assert f"first/m/{bucket.HIGH_WATER_MARK_FILE}" in keys
    assert storage.list_versions() == {1: "1"}


def test_an_interrupted_s3_publication_is_not_served_and_its_retry_completes_it(models, s3_env):
    base = f"s3://{S3_BUCKET}/resume/m"
    failing = FailingFileSystem(filesystem_for(base, s3_env), allowed=4)
    with pytest.raises(PushError, match=r"upload .* to s3://writer/resume/m/1"):
        BucketWriter(base, fs=failing, environ=s3_env).publish(
            str(models[2.0]), "m", run_id="run-1"
        )
    storage = ModelStorage(base, environ=s3_env)
    assert not storage.check_complete("1")[0].complete

    retried = BucketWriter(base, environ=s3_env).publish(str(models[2.0]), "m", run_id="run-1")
    again = BucketWriter(base, environ=s3_env).publish(str(models[2.0]), "m", run_id="run-1")

    assert (retried.version, retried.resumed) == (1, True)
    assert (again.version, again.already_published) == (1, True)
    assert storage.check_complete("1")[0].complete


def test_the_writer_imports_without_tfx_tensorflow_or_the_components():
    code = (
        "import sys\n"
        "import tfrelay.serving.storage.bucket_writer\n"
        "for name in ('tfx', 'tensorflow', 'tfrelay.components', 'tfrelay.pipelines'):\n"
        "    assert name not in sys.modules, name\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
