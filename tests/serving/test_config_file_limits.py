"""Configuration files are read bounded (issue 12): a file over the limit is refused with a
message naming the file and the limit, without being read whole."""

from __future__ import annotations

import pathlib

import pytest

from tfrelay.serving.config.batching import read_batching_parameters
from tfrelay.serving.config.config_file import MAX_CONFIG_FILE_BYTES, read_config_text
from tfrelay.serving.config.model_config import ConfigError, read_model_config_file

_GOOD_CONFIG = 'model_config_list { config { name: "m" base_path: "/models/m" } }\n'


def _oversized(path: pathlib.Path, text: str) -> pathlib.Path:
    # Valid text padded with comments past the limit: only the size is wrong.
    with path.open("w") as f:
        f.write(text)
        line = "# " + "x" * 1021 + "\n"
        for _ in range(MAX_CONFIG_FILE_BYTES // len(line) + 1):
            f.write(line)
    return path


def test_model_config_file_at_normal_size_is_read(tmp_path):
    path = tmp_path / "models.config"
    path.write_text(_GOOD_CONFIG)
    assert [model.name for model in read_model_config_file(str(path))] == ["m"]


def test_model_config_file_over_the_limit_is_refused_with_the_limit_named(tmp_path):
    path = _oversized(tmp_path / "models.config", _GOOD_CONFIG)
    with pytest.raises(ConfigError, match=rf"larger than {MAX_CONFIG_FILE_BYTES} bytes"):
        read_model_config_file(str(path))


def test_text_proto_flag_file_over_the_limit_names_the_flag(tmp_path):
    path = _oversized(tmp_path / "batching.config", "max_batch_size { value: 8 }\n")
    with pytest.raises(ConfigError, match=r"--batching_parameters_file: .*larger than"):
        read_batching_parameters(str(path))


def test_reader_stops_at_the_limit_plus_one_byte(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"a" * 101)
    assert read_config_text(str(path), max_bytes=101) == "a" * 101
    with pytest.raises(ValueError, match="larger than 100 bytes"):
        read_config_text(str(path), max_bytes=100)
