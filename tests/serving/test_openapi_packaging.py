"""The wheel carries serving/rest/openapi.json (setup.py's package_data has `*.json`), so an
installed server answers GET /v1/openapi.json as a clone does."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from support.paths import REPO_ROOT

pytestmark = pytest.mark.timeout(300)

# What setup.py maps into the package, and what its metadata reads.
SOURCES = (
    "tfrelay",
    "serving",
    "components",
    "pipelines",
    "setup.py",
    "pyproject.toml",
    "README.md",
)


def test_the_wheel_carries_the_openapi_description(tmp_path):
    # Built from a copy: an in-tree build would leave build/ and *.egg-info in a working tree
    # others use at the same time.
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("tfrelay-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = archive.read("tfrelay/serving/rest/openapi.json")
    assert packaged == (REPO_ROOT / "serving" / "rest" / "openapi.json").read_bytes()
