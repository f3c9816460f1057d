#!/usr/bin/env bash
# One-command set-up of tfrelay's two stacks (issue 14, README "Two stacks"), each from its lock:
#   .venv          Python 3.10, `-e .[all,dev]` under locks/pipeline.txt (TFX 1.16, TF 2.16)
#   .venv-serving  Python 3.12+, `-e .[serving,s3,gcs,dev]` under locks/serving.txt (TF 2.21, upb)
# Re-running is cheap: a venv is only reinstalled when pyproject.toml, setup.py or its lock changed.
# SETUP_STACKS=serving (or pipeline) builds one of them only.
set -euo pipefail
cd "$(dirname "$0")/.."

python_version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true; }

# build_venv VENV STACK EXTRAS LOCK IMPORT_CHECK
build_venv() {
  local venv=$1 stack=$2 extras=$3 lock=$4 import_check=$5
  local stamp="$venv/.tfrelay-installed"
  local want
  want=$(cat pyproject.toml setup.py "$lock" | sha256sum | cut -d' ' -f1)
  local python
  python=$(scripts/find-python.sh "$stack")
  local version
  version=$(python_version_of "$python")

  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
     && [ "$(python_version_of "$venv/bin/python")" = "$version" ]; then
    echo "setup: $venv is up to date (Python $version)"
    return 0
  fi
  if [ "$(python_version_of "$venv/bin/python")" != "$version" ]; then
    echo "setup: creating $venv with $python"
    rm -rf "$venv"
    "$python" -m venv "$venv"
  fi
  echo "setup: installing tfrelay[$extras] into $venv under $lock (first time: a few minutes, ~3 GB)"
  # This machine's pip configuration names extra local indexes; pip warns once per package
  # about the missing ones, which would bury the progress lines.
  "$venv/bin/python" -m pip install --quiet --upgrade "pip>=24" "setuptools>=77" wheel 2>&1 \
    | { grep -v '^WARNING: Location' || true; }
  "$venv/bin/python" -m pip install --progress-bar off -c "$lock" -e ".[$extras]" 2>&1 \
    | grep -vE '^(Requirement already satisfied|WARNING: Location)' || true
  # pip's exit code is lost in the pipe above; `pip check` and the import below catch a failed
  # install.
  "$venv/bin/python" -m pip check
  "$venv/bin/python" -c "$import_check" 2>/dev/null \
    || { echo "setup: the install into $venv did not complete; re-run 'make setup' and read pip's error" >&2; exit 1; }
  echo "$want" > "$stamp"
}

stacks=${SETUP_STACKS:-pipeline serving}
for stack in $stacks; do
  case "$stack" in
    pipeline) build_venv .venv pipeline "all,dev" locks/pipeline.txt 'import tfrelay, tfx, tensorflow' ;;
    serving) build_venv .venv-serving serving "serving,s3,gcs,dev" locks/serving.txt \
      'import tfrelay.serving.server, tensorflow, ai_edge_litert' ;;
    *) echo "setup: unknown stack $stack (pipeline or serving)" >&2; exit 2 ;;
  esac
done
# Debian's prometheus and promtool for the operations tests (tests/ops), unpacked into
# build/tools/ without touching the system.
bash scripts/install-prometheus.sh
echo "setup: done. The pipeline: .venv/bin/tfrelay; the server: .venv-serving/bin/tfrelay-model-server"
