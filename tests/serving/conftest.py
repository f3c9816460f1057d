"""Fixture models and servers for the model server tests."""

from __future__ import annotations

import pathlib

import pytest

from support.models import write_half_plus_two, write_tf2_half_plus


@pytest.fixture(scope="session")
def model_root(tmp_path_factory) -> pathlib.Path:
    """Base paths built by the tests: half_plus_two/123 and half_plus_three/123 (TF1 graphs, as
    TF Serving's test models), tf2_half_plus_two/1 (a TF2 export)."""
    root = tmp_path_factory.mktemp("models")
    write_half_plus_two(root / "half_plus_two" / "123", a=0.5, b=2.0)
    write_half_plus_two(root / "half_plus_three" / "123", a=0.5, b=3.0)
    write_tf2_half_plus(root / "tf2_half_plus_two" / "1", a=0.5, b=2.0)
    return root
