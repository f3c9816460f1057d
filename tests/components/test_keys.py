"""Every channel and parameter key lives in its component's `keys.py` (issue 15): the spec is
built from those constants, the executor reads its dicts by them (no string literals), and the
keys that TFX's own code reads are TFX's."""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib

import pytest
from tfx.types import standard_component_specs as tfx_keys

COMPONENTS = {
    "trainer": "TrainerSpec",
    "validator": "ValidatorSpec",
    "optimizer": "OptimizerSpec",
    "pusher": "BucketPusherSpec",
    "deployer": "ServingDeployerSpec",
}
# Keys an executor uses that are not its own spec's: the Validator hands TFX's Evaluator a
# `baseline_model` input when the bucket holds a baseline.
NOT_IN_THE_SPEC = {"validator": {"baseline_model"}}


def _keys(component: str) -> dict[str, str]:
    """The `*_KEY` constants of a component's keys module: {name: value}."""
    module = importlib.import_module(f"tfrelay.components.{component}.keys")
    return {n: v for n, v in vars(module).items() if n.endswith("_KEY") and isinstance(v, str)}


def _spec_keys(component: str) -> set[str]:
    module = importlib.import_module(f"tfrelay.components.{component}.component")
    spec = getattr(module, COMPONENTS[component])
    return {*spec.PARAMETERS, *spec.INPUTS, *spec.OUTPUTS}


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_the_keys_module_holds_exactly_the_spec_s_keys(component):
    values = set(_keys(component).values())
    assert values - NOT_IN_THE_SPEC.get(component, set()) == _spec_keys(component)


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_component_py_re_exports_the_keys_it_used_to_define(component):
    # Pipelines and tests read e.g. `pusher.component.MODEL_KEY`; it is the keys module's.
    module = importlib.import_module(f"tfrelay.components.{component}.component")
    for name, value in _keys(component).items():
        if hasattr(module, name):
            assert getattr(module, name) is value, name
    spec_names = {n for n, v in _keys(component).items() if v in _spec_keys(component)}
    assert spec_names <= set(vars(module)), "component.py keeps every spec key's name"


def _string_literals(path: pathlib.Path) -> list[tuple[int, str]]:
    """Every str constant in a module but its docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_executors_name_every_key_by_its_constant(component):
    module = importlib.import_module(f"tfrelay.components.{component}.executor")
    path = pathlib.Path(inspect.getfile(module))
    keys = set(_keys(component).values())
    literals = [(line, text) for line, text in _string_literals(path) if text in keys]
    assert not literals, f"{path.name}: use the keys module's constants, not {literals}"


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_the_keys_modules_import_nothing(component):
    # So component.py, executor.py (which component.py imports) and the serving stack can all
    # import them: no cycle, no TFX.
    module = importlib.import_module(f"tfrelay.components.{component}.keys")
    tree = ast.parse(pathlib.Path(inspect.getfile(module)).read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


# The keys TFX's code reads from tfrelay's dicts: the Trainer's fn_args_utils and udf_utils, the
# Validator's Evaluator executor and the BucketPusher's CheckBlessing.
TFX_READS = {
    "trainer": [
        "EXAMPLES_KEY",
        "SCHEMA_KEY",
        "MODEL_KEY",
        "MODEL_RUN_KEY",
        "MODULE_FILE_KEY",
        "MODULE_PATH_KEY",
        "RUN_FN_KEY",
        "TRAIN_ARGS_KEY",
        "EVAL_ARGS_KEY",
        "CUSTOM_CONFIG_KEY",
    ],
    "validator": [
        "EXAMPLES_KEY",
        "MODEL_KEY",
        "SCHEMA_KEY",
        "EVALUATION_KEY",
        "BLESSING_KEY",
        "BASELINE_MODEL_KEY",
        "EVAL_CONFIG_KEY",
        "EXAMPLE_SPLITS_KEY",
    ],
    "pusher": ["MODEL_KEY", "MODEL_BLESSING_KEY", "PUSHED_MODEL_KEY"],
}


@pytest.mark.parametrize("component", sorted(TFX_READS))
def test_the_keys_tfx_reads_are_tfx_s(component):
    keys = _keys(component)
    for name in TFX_READS[component]:
        assert keys[name] == getattr(tfx_keys, name), name
