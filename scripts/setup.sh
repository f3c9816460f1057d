#!/usr/bin/env bash
# One-command set-up: .venv with Python 3.10 and `-e .[all,dev]` under constraints.txt.
# Re-running is cheap: it only reinstalls when pyproject.toml, setup.py or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
stamp="$venv/.tfrelay-installed"
want=$(cat pyproject.toml setup.py constraints.txt | sha256sum | cut -d' ' -f1)

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
  echo "setup: $venv is up to date"
  exit 0
fi

python=$(scripts/find-python.sh)
if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
  echo "setup: creating $venv with $python"
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi

echo "setup: installing tfrelay[all,dev] under constraints.txt (first time: ~3 min, ~3 GB)"
"$venv/bin/python" -m pip install --quiet --upgrade "pip>=24" setuptools wheel
"$venv/bin/python" -m pip install --progress-bar off -c constraints.txt -e ".[all,dev]" \
  | grep -vE '^(Requirement already satisfied|WARNING: Location)' || true
# pip's exit code is lost in the pipe above; `pip check` and the import below catch a failed install.
"$venv/bin/python" -m pip check
"$venv/bin/python" -c 'import tfrelay, tfx, tensorflow' 2>/dev/null \
  || { echo "setup: the install did not complete; re-run 'make setup' and read pip's error" >&2; exit 1; }
echo "$want" > "$stamp"
echo "setup: done. Activate with 'source $venv/bin/activate' or use $venv/bin/tfrelay"
