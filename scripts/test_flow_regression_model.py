"""The original repository's name for `scripts/test_flow_regression_module.py` (same options, same behaviour)."""
import _path  # noqa: F401

from test_flow_regression_module import main

if __name__ == '__main__':
    main()
