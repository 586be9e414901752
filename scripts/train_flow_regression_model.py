"""The original repository's name for `scripts/train_flow_regression_module.py` (same options, same behaviour)."""
import _path  # noqa: F401

from train_flow_regression_module import main

if __name__ == '__main__':
    main()
