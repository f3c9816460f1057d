"""Real artifacts shared by the component tests: penguin Examples and a model trained on them."""

from __future__ import annotations

import pytest
from tfx.types import standard_artifacts

from support.examples import examples_from_csv
from support.training import train
from tfrelay.pipelines.datasets import penguins


@pytest.fixture(scope="session")
def penguin_examples(tmp_path_factory) -> standard_artifacts.Examples:
    root = tmp_path_factory.mktemp("penguins")
    return examples_from_csv(penguins.write_all(root / "data"), root / "examples")


@pytest.fixture(scope="session")
def penguin_model(penguin_examples, tmp_path_factory) -> standard_artifacts.Model:
    return train(penguin_examples, tmp_path_factory.mktemp("trained"))
