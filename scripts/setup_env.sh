#!/usr/bin/env bash
# Create (once) the project's virtual environment in .venv and install requirements.txt into it.
# Re-installs only when requirements.txt changed. Source it or run it; it prints the python to use.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${INTRINSIC_FLOW_VENV:-$repo_root/.venv}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$repo_root/requirements.txt" | cut -d' ' -f1)"

pick_python() {
  for py in python3.11 python3 python; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 10))'; then
      echo "$py"; return 0
    fi
  done
  echo "error: Python >= 3.10 (3.11 recommended) is needed to create $venv" >&2
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  py="$(pick_python)"
  echo "[setup] creating virtual environment $venv with $py" >&2
  "$py" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing requirements.txt into $venv (first run takes a few minutes)" >&2
  "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$repo_root/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
