"""The components import as TFX's do (issue 15): `from tfrelay.components import Trainer`, and
from each sub-package, loaded on first use (PEP 562) so the packages themselves stay TFX-free."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import tfrelay.components
from tfrelay.components import BucketPusher, Optimizer, ServingDeployer, Trainer, Validator
from tfrelay.components.deployer import component as deployer_component
from tfrelay.components.optimizer import component as optimizer_component
from tfrelay.components.pusher import component as pusher_component
from tfrelay.components.trainer import component as trainer_component
from tfrelay.components.validator import component as validator_component

SUB_PACKAGES = {
    "tfrelay.components.trainer": (trainer_component, ["Trainer", "TrainerSpec"]),
    "tfrelay.components.validator": (validator_component, ["Validator", "ValidatorSpec"]),
    "tfrelay.components.optimizer": (optimizer_component, ["Optimizer", "OptimizerSpec"]),
    "tfrelay.components.pusher": (pusher_component, ["BucketPusher", "BucketPusherSpec"]),
    "tfrelay.components.deployer": (
        deployer_component,
        ["ServingDeployer", "ServingDeployerSpec"],
    ),
}


def test_every_component_imports_from_tfrelay_components_as_from_tfx_components():
    assert Trainer is trainer_component.Trainer
    assert Validator is validator_component.Validator
    assert Optimizer is optimizer_component.Optimizer
    assert BucketPusher is pusher_component.BucketPusher
    assert ServingDeployer is deployer_component.ServingDeployer
    assert sorted(tfrelay.components.__all__) == [
        "BucketPusher",
        "Optimizer",
        "ServingDeployer",
        "Trainer",
        "Validator",
    ]


@pytest.mark.parametrize("package", sorted(SUB_PACKAGES))
def test_each_sub_package_exports_its_component_and_spec(package):
    module = importlib.import_module(package)
    component, names = SUB_PACKAGES[package]
    for name in names:
        assert getattr(module, name) is getattr(component, name)
        assert name in module.__all__
        assert name in dir(module)


def test_every_name_in_all_resolves():
    for package in ["tfrelay.components", *SUB_PACKAGES]:
        module = importlib.import_module(package)
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{package}.{name}"


def test_the_optimizer_still_exports_its_settings_and_report_artifact():
    from tfrelay.components.optimizer import Cluster, OptimizationReport, Prune, Quantize
    from tfrelay.components.optimizer.artifacts import OptimizationReport as Artifact
    from tfrelay.components.optimizer.settings import Cluster as C
    from tfrelay.components.optimizer.settings import Prune as P
    from tfrelay.components.optimizer.settings import Quantize as Q

    assert (Cluster, OptimizationReport, Prune, Quantize) == (C, Artifact, P, Q)


def test_submodules_still_import_by_from_import_beside_the_lazy_names():
    # `from package import submodule` first asks the package's __getattr__, which must raise
    # AttributeError (not return None or fail otherwise) for the import system to fall back.
    from tfrelay.components import properties
    from tfrelay.components.deployer import server_command
    from tfrelay.components.optimizer import report
    from tfrelay.components.pusher import push

    assert properties.BLESSED == "blessed"
    assert callable(server_command.resolve)
    assert callable(report.write)
    assert callable(push.push_model)


@pytest.mark.parametrize("package", ["tfrelay.components", *sorted(SUB_PACKAGES)])
def test_an_unknown_name_is_an_attribute_error(package):
    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchComponent'"):
        module.NoSuchComponent  # noqa: B018
    assert not hasattr(module, "NoSuchComponent")


def test_the_packages_load_tfx_only_when_a_component_is_asked_for():
    # A fresh interpreter: this test session has TFX loaded already.
    code = (
        "import sys\n"
        "import tfrelay.components\n"
        "import tfrelay.components.trainer, tfrelay.components.validator\n"
        "import tfrelay.components.optimizer, tfrelay.components.pusher\n"
        "import tfrelay.components.deployer\n"
        "assert 'tfx' not in sys.modules, 'tfx loaded by a package import'\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow loaded by a package import'\n"
        "from tfrelay.components import Trainer\n"
        "assert 'tfx' in sys.modules\n"
        "from tfrelay.components.trainer.component import Trainer as T\n"
        "assert Trainer is T\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd="/"
    )
    assert result.returncode == 0, result.stderr[-3000:]
