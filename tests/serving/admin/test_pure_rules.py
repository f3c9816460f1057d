"""The pure rules of `tfrelay models`, apart from storage: TF Serving's label rule, the label
edit, the listing's states and lineage, and the rollback's push record fields."""

from __future__ import annotations

import pytest

from tfrelay.serving.admin import labels, listing, rollback
from tfrelay.serving.admin.errors import AdminError


@pytest.mark.parametrize(
    ("before", "after", "allow", "refused"),
    [
        ({}, {"stable": 2}, False, []),
        ({}, {"stable": 9}, False, [("stable", 9)]),
        ({}, {"stable": 9}, True, []),  # a new label may name an unserved version
        ({"stable": 9}, {"stable": 9}, True, []),  # left as it is
        ({"stable": 2}, {"stable": 9}, True, [("stable", 9)]),  # moved: needs a served one
        ({"old": 9}, {"old": 9, "new": 2}, False, [("old", 9)]),  # every label is checked
    ],
)
def test_tf_servings_label_rule(before, after, allow, refused):
    assert labels.label_problems(before, after, [2, 1], allow) == refused


def test_edit_labels_copies_the_config_and_checks_the_edit():
    config = labels.parse_config(
        'model_config_list { config { name: "m" base_path: "/b" version_labels { key: "a" '
        "value: 1 } } }",
        "test",
    )
    edited, before, after = labels.edit_labels(config, "m", {"b": 2}, ["a"])
    assert (before, after) == ({"a": 1}, {"b": 2})
    assert dict(config.model_config_list.config[0].version_labels) == {"a": 1}
    with pytest.raises(AdminError, match="both set and removed"):
        labels.edit_labels(config, "m", {"a": 2}, ["a"])
    with pytest.raises(AdminError, match=r"malformed model config test: .*1:"):
        labels.parse_config("model_config_list {", "test")


def test_listing_states_and_lineage():
    assert listing.version_state(True, "saved_model.pb", "complete", None) == ("published", "")
    claim = {"status": "uploading"}
    assert listing.version_state(False, None, "no marker", claim)[0] == "uploading"
    assert listing.version_state(False, None, "no marker", None) == ("incomplete", "no marker")
    assert listing.version_state(False, "saved_model.pb", "waiting for x", claim)[0] == (
        "incomplete"
    )
    record = {"rollback_of": 1, "pipeline_run_id": "r", "metrics": {"auc": 0.912345}}
    assert listing.describe_lineage(record) == "rollback of 1; run r; auc=0.9123"
    assert listing.describe_lineage(None) == "no push record"


def test_a_rollback_record_keeps_the_original_lineage_through_chains():
    original = {
        "version": 1,
        "pushed_at": "2026-01-01T00:00:00+00:00",
        "pipeline_run_id": "run-1",
        "metrics": {"accuracy": 0.9},
        "checksum": "sha256:x",
        "files": {"saved_model.pb": 1},
        "pusher": "tfrelay 1",
    }
    first = rollback.rollback_description(rollback.Source(1, "1", {}, "sha256:x", original))
    assert first["rollback_of"] == 1 and first["original_version"] == 1
    assert first["pipeline_run_id"] == "run-1" and first["metrics"] == {"accuracy": 0.9}
    assert first["original_pushed_at"] == "2026-01-01T00:00:00+00:00"
    assert not {"version", "checksum", "files", "pusher", "pushed_at"} & set(first)
    # Rolling back to that rollback (say it became version 3) still names version 1's push.
    second = rollback.rollback_description(
        rollback.Source(3, "3", {}, "sha256:x", {**first, "version": 3})
    )
    assert second["rollback_of"] == 3 and second["original_version"] == 1
    assert second["original_pushed_at"] == "2026-01-01T00:00:00+00:00"
    assert rollback.idempotency_run_id(1) == "rollback-of-1"
