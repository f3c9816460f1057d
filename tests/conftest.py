"""Fixtures shared by every test package."""

from __future__ import annotations

import pathlib

import pytest

# Imported before any test module can import TensorFlow: this pins Keras 2 (TF_USE_LEGACY_KERAS)
# for the whole test session, as it does for every other entry point.
import tfrelay  # noqa: F401
from support.paths import TF_SERVING_TESTDATA


@pytest.fixture(scope="session")
def tf_serving_testdata() -> pathlib.Path:
    """TF Serving's own test models; tests using them run whenever ../shared is present."""
    if not TF_SERVING_TESTDATA.is_dir():
        pytest.skip(f"TF Serving test models not present at {TF_SERVING_TESTDATA}")
    return TF_SERVING_TESTDATA
