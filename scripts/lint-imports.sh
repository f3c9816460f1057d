#!/usr/bin/env bash
# Checks the layering contracts in pyproject.toml ([tool.importlinter], docs/architecture.md)
# with import-linter (issue 15). The `tfrelay.*` packages live in top-level folders (setup.py's
# FOLDER_OF_PACKAGE), which import-linter cannot follow through the editable install, so this
# builds the package tree they form out of symlinks under build/import-graph and checks that.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-.venv/bin/python}
tree=build/import-graph
rm -rf "$tree"
"$python" - "$tree" <<'PY'
import ast, os, pathlib, sys

tree = pathlib.Path(sys.argv[1])
setup = ast.parse(pathlib.Path("setup.py").read_text())
mapping = next(
    ast.literal_eval(node.value)
    for node in setup.body
    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "FOLDER_OF_PACKAGE"
)
for package, folder in sorted(mapping.items()):
    target = tree.joinpath(*package.split("."))
    if package == "tfrelay":  # the root: its own modules, the sub-packages linked in below
        target.mkdir(parents=True)
        for module in pathlib.Path(folder).glob("*.py"):
            (target / module.name).symlink_to(module.resolve())
    else:
        target.symlink_to(pathlib.Path(folder).resolve(), target_is_directory=True)
PY
cd "$tree" && PYTHONPATH=. "$OLDPWD/$(dirname "$python")/lint-imports" --config "$OLDPWD/pyproject.toml"
