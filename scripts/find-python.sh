#!/usr/bin/env bash
# Prints the path of a working Python for one of tfrelay's two stacks, or explains how to get one
# and fails (issue 14, README "Two stacks").
#   scripts/find-python.sh pipeline   Python 3.10 (TFX 1.16 supports 3.9-3.10 only); $PYTHON wins
#   scripts/find-python.sh serving    the newest Python 3.12+ found (TensorFlow 2.21 supports up
#                                     to 3.13); $SERVING_PYTHON wins
# Order: the variable, pythonX.Y on PATH, pyenv's versions (its shim refuses unless that version is
# selected, so we call the interpreter inside `pyenv root` directly), the usual system paths.
set -euo pipefail

stack=${1:-pipeline}
case "$stack" in
  pipeline) wanted=(3.10); override=${PYTHON:-} ;;
  # Newest first: the first that works wins.
  serving) wanted=(3.13 3.12); override=${SERVING_PYTHON:-} ;;
  *) echo "usage: $0 pipeline|serving" >&2; exit 2 ;;
esac

is_version() {  # is_version PYTHON X.Y
  "$1" -c "import sys, venv; sys.exit('%d.%d' % sys.version_info[:2] != '$2')" >/dev/null 2>&1
}

if [ -n "$override" ]; then
  for v in "${wanted[@]}"; do
    if is_version "$override" "$v"; then echo "$override"; exit 0; fi
  done
  echo "find-python: $override is not Python ${wanted[*]} (the $stack stack needs one of them)" >&2
  exit 1
fi

pyenv_root=""
command -v pyenv >/dev/null 2>&1 && pyenv_root=$(pyenv root)
for v in "${wanted[@]}"; do
  candidates=()
  command -v "python$v" >/dev/null 2>&1 && candidates+=("$(command -v "python$v")")
  for root in "$pyenv_root" "$HOME/.pyenv"; do
    [ -n "$root" ] || continue
    # Highest patch release first.
    while IFS= read -r p; do candidates+=("$p"); done \
      < <(ls -d "$root"/versions/"$v".*/bin/python"$v" 2>/dev/null | sort -t. -k3 -n -r)
  done
  candidates+=("/usr/bin/python$v" "/usr/local/bin/python$v")
  for p in "${candidates[@]}"; do
    if [ -x "$p" ] && is_version "$p" "$v"; then echo "$p"; exit 0; fi
  done
done

if [ "$stack" = pipeline ]; then
  cat >&2 <<'MSG'
The pipeline stack needs Python 3.10 (TFX 1.16 supports 3.9-3.10 only; README "Two stacks").
None was found. Do one of:
  - pyenv install 3.10.13            (then re-run; pyenv's 3.10 is found without selecting it)
  - sudo apt install python3.10 python3.10-venv   (Ubuntu, via the deadsnakes PPA)
  - PYTHON=/path/to/python3.10 make setup
MSG
else
  cat >&2 <<'MSG'
The model server's stack needs Python 3.12 or 3.13 (TensorFlow 2.21; README "Two stacks").
None was found. Do one of:
  - pyenv install 3.13               (then re-run; pyenv's versions are found without selecting them)
  - sudo apt install python3.12 python3.12-venv   (Debian 13, Ubuntu 24.04)
  - SERVING_PYTHON=/path/to/python3.12 make setup
MSG
fi
exit 1
