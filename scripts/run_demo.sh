#!/usr/bin/env bash
# Set up .venv if needed, then run the quick-start job (scripts/demo.py): the whole pipeline on the demo dataset.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
python="$(bash scripts/setup_env.sh)"
exec "$python" scripts/demo.py "$@"
