"""A user installs just the server, on Python 3.12+, without the pipeline stack (issue 14, README
"Install just the server"): `pip install 'tfrelay[serving,s3,gcs]'` under the serving lock."""

from __future__ import annotations

import subprocess

import pytest

from support.paths import REPO_ROOT


def _serving_python() -> str:
    found = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "find-python.sh"), "serving"],
        capture_output=True,
        text=True,
    )
    assert found.returncode == 0, found.stderr
    return found.stdout.strip()


@pytest.mark.slow
def test_server_installs_on_python_3_12_plus_without_tfx_beam_or_kfp(tmp_path):
    env_dir = tmp_path / "serving-only"
    subprocess.run([_serving_python(), "-m", "venv", str(env_dir)], check=True)
    python = str(env_dir / "bin" / "python")
    install = subprocess.run(
        [
            python, "-m", "pip", "install", "--quiet", "--no-input",
            "-c", str(REPO_ROOT / "locks" / "serving.txt"),
            f"{REPO_ROOT}[serving,s3,gcs]",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    probe = (
        "import importlib.util, tensorflow as tf, tfrelay.serving.server;"
        "from google.protobuf.internal import api_implementation;"
        "missing = [m for m in ('tfx', 'apache_beam', 'kfp', 'tensorflow_model_analysis')"
        " if importlib.util.find_spec(m) is None];"
        "print(tf.__version__, api_implementation.Type(), ','.join(missing))"
    )
    # cwd=tmp_path: from the repository root, `python -c` would import the in-tree tfrelay/.
    out = subprocess.run(
        [python, "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    tf_version, backend, missing = out.stdout.strip().splitlines()[-1].split()
    assert tf_version.startswith("2.21.") and backend == "upb"
    assert missing == "tfx,apache_beam,kfp,tensorflow_model_analysis"
    server = subprocess.run(
        [str(env_dir / "bin" / "tfrelay-model-server"), "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert server.returncode == 0, server.stderr[-3000:]
    assert "TensorFlow Library: 2.21." in server.stdout, server.stdout


def test_server_image_builds_from_the_serving_lock_on_its_python():
    # No Docker engine here: check that the image installs what the test above installs, on the
    # Python the serving lock was resolved for, and that every file it copies exists.
    dockerfile = (REPO_ROOT / "deploy" / "Dockerfile.server").read_text()
    lock_python = next(
        line.split()[2].rstrip(",")
        for line in (REPO_ROOT / "locks" / "serving.txt").read_text().splitlines()
        if line.startswith("# Python ")
    )
    assert f"FROM python:{lock_python}-slim" in dockerfile
    assert 'pip install -c locks/serving.txt ".[serving,s3,gcs]"' in dockerfile
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO_ROOT / source).exists(), f"Dockerfile.server copies missing {source}"
