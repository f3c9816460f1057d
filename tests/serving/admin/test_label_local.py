"""`tfrelay models label` on a local ModelServerConfig: TF Serving's label rules against the
base path's published versions and the version policy, `--remove`, `--allow-unavailable`
(new labels only, as `--allow_version_labels_for_unavailable_models`), and a whole-file
replacement that keeps the file's mode."""

from __future__ import annotations

import os
import pathlib

import pytest

from tfrelay.serving.config.model_config import parse_model_config_text
from tfrelay.serving.storage.bucket_writer import BucketWriter


@pytest.fixture
def config(models, tmp_path) -> pathlib.Path:
    """A config serving the latest 2 of versions 1, 2, 3 under a local base path."""
    base = tmp_path / "m"
    for answer in (3.0, 4.0, 3.0):
        BucketWriter(str(base)).publish(str(models[answer]), "m", run_id=f"run-{answer}")
    path = tmp_path / "models.config"
    path.write_text(
        "# the fleet's config\n"
        f'model_config_list {{ config {{ name: "m" base_path: "{base}" model_platform: '
        '"tensorflow" model_version_policy { latest { num_versions: 2 } } } '
        'config { name: "other" base_path: "/nowhere" } }\n'
    )
    path.chmod(0o640)
    return path


def _labels(path: pathlib.Path) -> dict[str, int]:
    return parse_model_config_text(path.read_text())[0].labels


def test_labels_are_set_and_removed_in_one_whole_file_write(admin, config, capsys):
    run = admin.run_models(capsys, "label", str(config), "m", "stable=2", "canary=3")
    assert run.code == 0, run
    assert _labels(config) == {"stable": 2, "canary": 3}
    assert os.stat(config).st_mode & 0o777 == 0o640
    models = parse_model_config_text(config.read_text())
    assert [m.name for m in models] == ["m", "other"]  # everything else as the server parses it
    assert models[0].policy.num_versions == 2
    assert not [p for p in config.parent.iterdir() if ".tfrelay-tmp-" in p.name]

    run = admin.run_models(capsys, "label", str(config), "m", "--remove", "canary")
    assert run.code == 0 and _labels(config) == {"stable": 2}, run
    missing = admin.run_models(capsys, "label", str(config), "m", "--remove", "canary")
    assert "cannot remove label(s) ['canary']" in missing.one_error_line("label")


def test_a_published_version_outside_the_policy_is_refused(admin, config, capsys):
    before = config.read_bytes()
    line = admin.run_models(capsys, "label", str(config), "m", "old=1").one_error_line("label")
    assert "version 1 is published but the version policy (latest) serves only [3, 2]" in line
    assert config.read_bytes() == before


def test_allow_unavailable_lets_only_new_labels_name_unserved_versions(admin, config, capsys):
    assert admin.run_models(capsys, "label", str(config), "m", "stable=3").code == 0
    run = admin.run_models(capsys, "label", str(config), "m", "preview=7", "--allow-unavailable")
    assert run.code == 0 and _labels(config) == {"stable": 3, "preview": 7}, run
    moved = admin.run_models(capsys, "label", str(config), "m", "stable=1", "--allow-unavailable")
    line = moved.one_error_line("label")
    assert "lets only a new label" in line and "stable=1" in line
    assert _labels(config) == {"stable": 3, "preview": 7}


def test_an_unknown_model_and_a_bad_assignment_are_refused(admin, config, capsys):
    run = admin.run_models(capsys, "label", str(config), "nope", "stable=1")
    assert "model 'nope' is not in the config (models: m, other)" in run.one_error_line("label")
    run = admin.run_models(capsys, "label", str(config), "m", "stable=latest")
    assert "is not LABEL=VERSION" in run.one_error_line("label")
