"""Fixtures for running the compiled pipeline as Kubeflow Pipelines' launcher would: an S3
endpoint (moto_server) holding the pipeline root, the data and the model bucket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubeflow.environment import BUCKET

from support.servers import moto_s3, s3_client


@pytest.fixture(scope="package")
def s3_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """moto_server on loopback with the bucket made; yields the variables a pod would get."""
    with moto_s3(tmp_path_factory.mktemp("moto")) as env:
        s3_client(env).create_bucket(Bucket=BUCKET)
        yield env


@pytest.fixture(scope="package")
def s3(s3_env):
    """A boto3 client for the endpoint (the tests' and the launcher's own S3 access)."""
    return s3_client(s3_env)
