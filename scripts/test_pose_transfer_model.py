"""The original repository's name for `scripts/test_pose_transfer.py` (same options, same behaviour)."""
import _path  # noqa: F401

from test_pose_transfer import main

if __name__ == '__main__':
    main()
