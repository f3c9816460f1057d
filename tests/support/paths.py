"""Where the repository and the team's shared test data are."""

from __future__ import annotations

import os
import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
# CI checks the repository out with the team's shared folder beside it; a user's clone has none.
SHARED_DIR = pathlib.Path(os.environ.get("TFRELAY_SHARED_DIR", REPO_ROOT.parent / "shared"))
TF_SERVING_TESTDATA = SHARED_DIR / "testdata" / "tf_serving"
