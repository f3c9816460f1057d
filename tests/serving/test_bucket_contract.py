"""The completeness rule of the bucket contract, on real SavedModel listings."""

from __future__ import annotations

import json
import pathlib

import pytest

from tfrelay.serving.storage import bucket

# The pipeline relies on this code (the Validator and the pusher run it on the pipeline stack), so
# `make test` runs these tests on both stacks (issue 14).
pytestmark = pytest.mark.both_stacks


def _listing(root: pathlib.Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()
    }


def _check(root: pathlib.Path, files: dict[str, int]) -> bucket.Completeness:
    return bucket.check_complete(files, lambda rel: (root / rel).read_bytes())


@pytest.fixture
def version_dir(model_root) -> pathlib.Path:
    return model_root / "half_plus_two" / "123"


def test_whole_savedmodel_is_complete(version_dir):
    verdict = _check(version_dir, _listing(version_dir))
    assert verdict.complete and verdict.marker == "saved_model.pb"


@pytest.mark.parametrize(
    "missing",
    ["variables/variables.index", "variables/variables.data-00000-of-00001", "assets/foo.txt"],
)
def test_savedmodel_missing_a_file_it_references_is_incomplete(version_dir, missing):
    files = _listing(version_dir)
    del files[missing]
    verdict = _check(version_dir, files)
    assert not verdict.complete
    assert any(m.startswith(missing.split("-of-")[0]) for m in verdict.missing)


def test_no_marker_means_not_published_yet(version_dir):
    files = _listing(version_dir)
    del files["saved_model.pb"]
    verdict = _check(version_dir, files)
    assert not verdict.complete and verdict.marker is None
    assert verdict.describe() == "no saved_model.pb or model.tflite yet"


def test_push_record_sizes_are_enforced(version_dir, tmp_path):
    files = _listing(version_dir)
    record = {"files": {**files, "assets.extra/extra.txt": 5}}
    files[bucket.PUSH_RECORD_FILE] = 1

    def read(rel: str) -> bytes:
        return (
            json.dumps(record).encode()
            if rel == bucket.PUSH_RECORD_FILE
            else (version_dir / rel).read_bytes()
        )

    verdict = bucket.check_complete(files, read)
    assert not verdict.complete and verdict.missing == ("assets.extra/extra.txt",)


def test_unparseable_savedmodel_is_broken_not_incomplete(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot be parsed"):
        _check(tmp_path, {"saved_model.pb": 7})


@pytest.mark.parametrize(
    ("name", "version"), [("00000123", 123), ("7", 7), ("tmp", None), ("-1", None), ("1.5", None)]
)
def test_version_directory_names(name, version):
    assert bucket.parse_version(name) == version
