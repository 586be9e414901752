#!/usr/bin/env bash
# Shared body of the download_*.sh wrappers: run `python -m data.download <name> [args]` from the repository root
# with $PYTHON, else the project's .venv, else python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -n "${PYTHON:-}" ]]; then
    python="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
    python=.venv/bin/python
else
    python=python3
fi
exec "$python" -m data.download "$@"
