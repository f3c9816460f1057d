"""The server installs and imports without the pipeline stack (DESIGN.md: small server image)."""

from __future__ import annotations

import subprocess
import venv

import pytest

from support.paths import REPO_ROOT


@pytest.mark.slow
def test_serving_extra_imports_without_tfx_beam_or_kfp(tmp_path):
    env_dir = tmp_path / "serving-only"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    install = subprocess.run(
        [
            python, "-m", "pip", "install", "--quiet", "--no-input",
            "-c", str(REPO_ROOT / "constraints.txt"),
            f"{REPO_ROOT}[serving]",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    probe = (
        "import importlib.util, tfrelay.serving, tfrelay.serving.core.manager;"
        "missing = [m for m in ('tfx', 'apache_beam', 'kfp', 'tensorflow_model_analysis')"
        " if importlib.util.find_spec(m) is None];"
        "print(','.join(missing))"
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
    assert out.stdout.strip().splitlines()[-1] == "tfx,apache_beam,kfp,tensorflow_model_analysis"
