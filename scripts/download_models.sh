#!/usr/bin/env bash
# Download, verify and extract the pretrained models into checkpoints/ (SPEC §10.1).
# Thin wrapper over `python -m data.download models`; extra arguments are passed on (e.g. --keep_archive).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -n "${PYTHON:-}" ]]; then
    python="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
    python=.venv/bin/python
else
    python=python3
fi
exec "$python" -m data.download models "$@"
