#!/usr/bin/env bash
# Download, verify and extract preprocessed Market-1501 (~9 GB) into datasets/market1501/ (SPEC §10.1).
# Thin wrapper over `python -m data.download market1501`; extra arguments are passed on (e.g. --keep_archive).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -n "${PYTHON:-}" ]]; then
    python="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
    python=.venv/bin/python
else
    python=python3
fi
exec "$python" -m data.download market1501 "$@"
