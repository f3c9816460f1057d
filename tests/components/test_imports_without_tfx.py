"""The serving stack (`.venv-serving`: Python 3.12+, no TFX) imports tfrelay's TFX-free component
modules (issues 13, 14 and 15): `tfrelay.components.deployer.server_command` (which model server
the deployer starts), the push API and `tfrelay push`, the keys modules, and every components
package, whose components load lazily. Run with the serving stack's own interpreter."""

from __future__ import annotations

import os
import subprocess

import pytest

from support.paths import REPO_ROOT

SERVING_PYTHON = REPO_ROOT / ".venv-serving" / "bin" / "python"

TFX_FREE_MODULES = [
    "tfrelay.components",
    "tfrelay.components.trainer",
    "tfrelay.components.validator",
    "tfrelay.components.optimizer",
    "tfrelay.components.pusher",
    "tfrelay.components.deployer",
    "tfrelay.components.deployer.server_command",
    "tfrelay.components.pusher.push",
    "tfrelay.components.pusher.cli",
    "tfrelay.components.trainer.keys",
    "tfrelay.components.validator.keys",
    "tfrelay.components.optimizer.keys",
    "tfrelay.components.pusher.keys",
    "tfrelay.components.deployer.keys",
    "tfrelay.components.exec_properties",
]


def _run_on_the_serving_stack(code: str) -> subprocess.CompletedProcess:
    if not SERVING_PYTHON.exists():
        pytest.fail(f"{SERVING_PYTHON} is missing: run `make setup` (it builds both environments)")
    return subprocess.run(
        [str(SERVING_PYTHON), "-c", code],
        capture_output=True,
        text=True,
        cwd="/",  # not the checkout: `python -c` there would import the in-tree folders
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )


def test_the_serving_stack_has_no_tfx():
    result = _run_on_the_serving_stack("import tfx")
    assert result.returncode != 0
    assert "No module named 'tfx'" in result.stderr


@pytest.mark.parametrize("module", TFX_FREE_MODULES)
def test_module_imports_on_the_serving_stack_without_tfx_or_tensorflow(module):
    code = (
        "import sys\n"
        f"import {module}\n"
        "assert 'tfx' not in sys.modules, 'tfx'\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow'\n"
    )
    result = _run_on_the_serving_stack(code)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_server_command_and_push_api_work_there():
    code = (
        "from tfrelay.components.deployer import server_command\n"
        "from tfrelay.components.pusher.push import push_model\n"
        "assert server_command.resolve().endswith('tfrelay-model-server')\n"
        "assert callable(push_model)\n"
    )
    result = _run_on_the_serving_stack(code)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize(
    "statement",
    [
        "from tfrelay.components import Trainer",
        "from tfrelay.components.pusher import BucketPusher",
        "import tfrelay.components as c; c.ServingDeployer",
    ],
)
def test_asking_for_a_component_there_says_tfx_is_missing(statement):
    # The components themselves need the pipeline stack; the failure names what is missing.
    result = _run_on_the_serving_stack(statement)
    assert result.returncode != 0
    assert "ModuleNotFoundError: No module named 'tfx'" in result.stderr, result.stderr[-3000:]
