"""Version numbers only grow (issue 13, the bucket contract): the pusher keeps a high-water mark
beside the versions, so a number deleted for a rollback is never published again."""

from __future__ import annotations

import json
import shutil

import pytest

from tfrelay.components.pusher import push
from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.bucket_writer import BucketWriter
from tfrelay.serving.storage.model_storage import ModelStorage


def _push(model_dir, base) -> push.PushResult:
    return push.push_model(push.PushRequest(str(model_dir), str(base), "m"))


def test_a_deleted_newest_number_is_never_reused(saved_models, tmp_path):
    base = tmp_path / "m"
    assert _push(saved_models["half_plus_two"], base).version == 1
    assert _push(saved_models["half_plus_three"], base).version == 2
    assert json.loads((base / bucket.HIGH_WATER_MARK_FILE).read_text())["version"] == 2
    shutil.rmtree(base / "2")  # a rollback
    result = _push(saved_models["half_plus_three"], base)
    assert result.version == 3 and not result.already_pushed
    assert sorted(p.name for p in base.iterdir() if p.is_dir()) == ["1", "3"]
    assert json.loads((base / bucket.HIGH_WATER_MARK_FILE).read_text())["version"] == 3
    # The model server's listing ignores the mark: only versions are versions.
    assert ModelStorage(str(base)).list_versions() == {1: "1", 3: "3"}


def test_pushing_the_rolled_back_to_model_again_is_idempotent(saved_models, tmp_path):
    base = tmp_path / "m"
    _push(saved_models["half_plus_two"], base)
    _push(saved_models["half_plus_three"], base)
    shutil.rmtree(base / "2")
    again = _push(saved_models["half_plus_two"], base)
    assert again.already_pushed and again.version == 1


def test_the_mark_is_raised_before_the_versions_files(saved_models, tmp_path, monkeypatch):
    base = tmp_path / "m"
    _push(saved_models["half_plus_two"], base)
    seen = []
    original = BucketWriter.write

    def spy(self, name, relative, **kwargs):
        seen.append(json.loads((base / bucket.HIGH_WATER_MARK_FILE).read_text())["version"])
        return original(self, name, relative, **kwargs)

    monkeypatch.setattr(BucketWriter, "write", spy)
    assert _push(saved_models["half_plus_three"], base).version == 2
    assert seen and set(seen) == {2}


def test_an_unreadable_mark_stops_the_push_with_what_to_do(saved_models, tmp_path):
    base = tmp_path / "m"
    _push(saved_models["half_plus_two"], base)
    (base / bucket.HIGH_WATER_MARK_FILE).write_text("garbage")
    with pytest.raises(push.PushError, match="restore it"):
        _push(saved_models["half_plus_three"], base)
    assert sorted(p.name for p in base.iterdir() if p.is_dir()) == ["1"]


def test_a_bucket_pushed_before_the_mark_existed_continues_from_its_listing(saved_models, tmp_path):
    base = tmp_path / "m"
    _push(saved_models["half_plus_two"], base)
    (base / bucket.HIGH_WATER_MARK_FILE).unlink()
    (base / "7").mkdir()  # another writer's directory
    assert _push(saved_models["half_plus_three"], base).version == 8


def test_a_late_writer_of_a_lower_number_does_not_lower_the_mark(saved_models, tmp_path):
    """Two pushers: B claimed 7 and recorded it; A, which had claimed 6, records 6 afterwards.
    The mark stays 7, so the next push takes 8, not 7 again (issue 13 review)."""
    root = tmp_path / "m"
    pusher_b = BucketWriter(str(root))
    pusher_a = BucketWriter(str(root))
    pusher_b.write_high_water_mark(7)
    pusher_a.write_high_water_mark(6)
    assert json.loads((root / bucket.HIGH_WATER_MARK_FILE).read_text())["version"] == 7
    assert pusher_a.read_high_water_mark() == 7
    assert _push(saved_models["half_plus_two"], root).version == 8
    assert json.loads((root / bucket.HIGH_WATER_MARK_FILE).read_text())["version"] == 8
