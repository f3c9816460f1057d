"""The S3 layout and launcher set-up the Kubeflow tests share (imported by conftest.py and the
tests; a conftest module is not importable by name under `--import-mode=importlib`)."""

from __future__ import annotations

import pathlib
import sys

from kubeflow.launcher import Launcher

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
BUCKET = "tfrelay-kfp"
PIPELINE_ROOT = f"s3://{BUCKET}/pipeline-root"
DATA_ROOT = f"s3://{BUCKET}/data"
BASE_PATH = f"s3://{BUCKET}/models/penguins"
# The namespace's Secret with the bucket's credentials, which the steps get by the package's
# platform spec (`step_secret`): the pods get no storage environment otherwise.
SECRET = "tfrelay-bucket"


def upload_file(s3, path: pathlib.Path, uri: str) -> None:
    """Puts a local file at an s3:// URI."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3.upload_file(str(path), bucket, key)


def make_launcher(package: pathlib.Path, work_dir: pathlib.Path, s3_env, s3) -> Launcher:
    """A launcher running `package` with the pipeline stack's Python as the image's, in a
    namespace holding the bucket's credentials as Secret SECRET (`s3_env`'s variables)."""
    return Launcher(
        package=package,
        pipeline_root=PIPELINE_ROOT,
        work_dir=work_dir,
        python_bin=pathlib.Path(sys.executable).parent,
        dockerfile=REPOSITORY / "deploy" / "Dockerfile.pipeline",
        pod_env={},
        s3_client=s3,
        task_timeout=300,
        secrets={SECRET: s3_env},
    )
