#!/usr/bin/env bash
# Shared body of the download_*.sh wrappers: run `python -m data.download <name> [args]` from the repository root
# with $PYTHON, else the project's .venv, else python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/_python.sh
exec "$python" -m data.download "$@"
