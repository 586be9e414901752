#!/usr/bin/env bash
# Set up .venv if needed, then run the full test suite. Extra arguments go to pytest.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
python="$(bash scripts/setup_env.sh)"
# pytest exits 5 when it collected no test: that is a failure for us, and set -e propagates it.
exec "$python" -m pytest -q "$@"
