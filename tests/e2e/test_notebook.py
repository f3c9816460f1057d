"""The walkthrough notebook executes top to bottom."""

from __future__ import annotations

import nbclient
import nbformat
import pytest

from support.paths import REPO_ROOT

pytestmark = pytest.mark.slow


def test_walkthrough_notebook_runs_top_to_bottom(tmp_path):
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "walkthrough.ipynb", as_version=4)
    nbclient.NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = "\n".join(
        output.get("text", "") or str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    assert "blessed=True pushed=True version=1 serving=1" in outputs
    assert "blessed=True pushed=True version=2 serving=2" in outputs
    assert "'2', 'AVAILABLE'" in outputs
    assert "stopped: True" in outputs
