#!/usr/bin/env bash
# Prints the path of a working Python 3.10 interpreter, or explains how to get one and fails.
# Order: $PYTHON, python3.10 on PATH, pyenv's 3.10.x (its shim refuses unless that version is
# selected, so we call the interpreter inside `pyenv root` directly).
set -euo pipefail

is_py310() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }

candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
command -v python3.10 >/dev/null 2>&1 && candidates+=("$(command -v python3.10)")
if command -v pyenv >/dev/null 2>&1; then
  for p in "$(pyenv root)"/versions/3.10.*/bin/python3.10; do [ -x "$p" ] && candidates+=("$p"); done
fi
for p in "$HOME"/.pyenv/versions/3.10.*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do
  [ -x "$p" ] && candidates+=("$p")
done

for p in "${candidates[@]}"; do
  if is_py310 "$p"; then echo "$p"; exit 0; fi
done

cat >&2 <<'MSG'
tfrelay needs Python 3.10 (TFX 1.16 supports 3.9-3.10 only; see DESIGN.md, "Stack").
None was found. Do one of:
  - pyenv install 3.10.13            (then re-run; pyenv's 3.10 is found without selecting it)
  - sudo apt install python3.10 python3.10-venv   (Ubuntu, via the deadsnakes PPA)
  - PYTHON=/path/to/python3.10 make setup
MSG
exit 1
