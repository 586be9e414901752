"""Make the repository root importable when a script is run as ``python scripts/<name>.py``.

Python puts the script's own folder (``scripts/``) on ``sys.path``, not the repository root, so every
script starts with ``import _path``. Nothing else is changed.
"""
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
