"""Fixtures of the end-to-end tests: a tiny trained flow module, built once per session (on ``demo_root``, the
shared dataset of tests/conftest.py).

The scripts folder is put on ``sys.path`` here, as running ``python scripts/<name>.py`` does, so that the test
modules can import the scripts by name.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers import flow_args

SCRIPTS = Path(__file__).resolve().parents[2] / 'scripts'
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))


@pytest.fixture(autouse=True)
def _one_torch_thread(single_thread_torch):
    """Tiny networks: one torch thread (see ``single_thread_torch`` in tests/conftest.py)."""


@pytest.fixture(scope='session')
def flow_checkpoints(demo_root, tmp_path_factory) -> Path:
    """A checkpoints folder holding ``FlowReg_tiny`` (one epoch of two steps) for the pose-transfer tests."""
    import train_flow_regression_module
    ckpt = tmp_path_factory.mktemp('flow_ckpt')
    train_flow_regression_module.main(flow_args(demo_root, ckpt, 'tiny', '--n_epoch', '1', '--n_vis', '0'))
    return ckpt
