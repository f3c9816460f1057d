#!/usr/bin/env bash
# Builds the peer servers' virtual environments under benchmarks/.venvs/<peer> (git-ignored):
# KServe 0.21, a naive FastAPI + uvicorn server, BentoML 1.4, each on the same Python and
# TensorFlow as tfrelay's server (the serving stack of issue 14: Python 3.13, TensorFlow 2.21),
# so the comparison differs in the server only. PEER_PYTHON overrides the interpreter.
#
# A peer is resolved once from requirements-<peer>.in (then requirements-<peer>-override.in, if
# any, installed over it) and frozen into constraints-<peer>.txt (committed); every later build
# installs exactly that frozen set, so reruns get the same versions.
# `RELOCK=1 bash benchmarks/peers/setup.sh [peer...]` re-resolves. Re-running is cheap: a
# venv is rebuilt only when its requirements or constraints changed.
#
# Usage: bash benchmarks/peers/setup.sh [kserve|fastapi|bentoml ...]   (default: all three)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venvs="$root/benchmarks/.venvs"
peers=("$@")
if [ ${#peers[@]} -eq 0 ]; then peers=(kserve fastapi bentoml); fi

python=${PEER_PYTHON:-$("$root/scripts/find-python.sh" serving)}

# What a built venv was made from: its requirements, override and frozen constraints.
digest() {
  local f
  for f in "$@"; do if [ -f "$f" ]; then cat "$f"; fi; done | sha256sum | cut -d' ' -f1
}

for peer in "${peers[@]}"; do
  requirements="$here/requirements-$peer.in"
  constraints="$here/constraints-$peer.txt"
  venv="$venvs/$peer"
  override="$here/requirements-$peer-override.in"
  stamp="$venv/.bench-installed"
  case $peer in kserve) module=kserve ;; fastapi) module=fastapi ;; bentoml) module=bentoml ;; *) module=sys ;; esac
  [ -f "$requirements" ] || { echo "peers: no $requirements" >&2; exit 2; }
  if [ "${RELOCK:-0}" = 1 ]; then rm -f "$constraints"; fi

  if [ -f "$constraints" ] && [ -x "$venv/bin/python" ] && [ -f "$stamp" ] \
     && [ "$(cat "$stamp")" = "$(digest "$requirements" "$override" "$constraints")" ]; then
    echo "peers: $peer is up to date"
    continue
  fi

  echo "peers: building $venv (first time: a few minutes, ~1.5 GB)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade "pip>=24" setuptools wheel
  pip_install() { "$venv/bin/python" -m pip install --quiet --progress-bar off "$@" 2>&1 \
    | grep -v "^WARNING: Location" || true; }
  if [ -f "$constraints" ]; then
    # Exactly the frozen set, without resolving again (an override would not resolve).
    pip_install --no-deps -r "$constraints"
  else
    echo "peers: resolving $peer for the first time; freezing into $(basename "$constraints")"
    pip_install -r "$requirements"
    [ -f "$override" ] && pip_install -r "$override"
    {
      echo "# Frozen by benchmarks/peers/setup.sh from requirements-$peer*.in (RELOCK=1 to re-resolve)."
      "$venv/bin/python" -m pip freeze --exclude-editable --exclude pip --exclude setuptools --exclude wheel
    } > "$constraints"
  fi
  # pip's exit code is lost in the pipes above: check what was installed instead.
  if [ ! -f "$override" ]; then "$venv/bin/python" -m pip check; fi
  "$venv/bin/python" -c "import tensorflow, $module" 2>/dev/null \
    || { echo "peers: $peer's install did not complete (re-run, and read pip's error)" >&2; exit 1; }
  digest "$requirements" "$override" "$constraints" >"$stamp"
  echo "peers: $peer ready"
done
