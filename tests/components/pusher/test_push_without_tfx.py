"""The push API and `tfrelay push` need no TFX (issue 13): importing them loads neither TFX nor
TensorFlow, so they run on the serving-only install, in a second."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["tfrelay.components.pusher.push", "tfrelay.components.pusher.cli"]
)
def test_push_api_imports_without_tfx_or_tensorflow(module):
    code = (
        "import sys\n"
        f"import {module}\n"
        "from tfrelay.components.pusher.push import push_model\n"
        "assert 'tfx' not in sys.modules, 'tfx'\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_the_component_still_loads_when_asked_for():
    code = (
        "import sys\n"
        "import tfrelay.components.pusher as pusher\n"
        "assert 'tfx' not in sys.modules\n"
        "assert pusher.BucketPusher.__name__ == 'BucketPusher'\n"
        "assert 'tfx' in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
