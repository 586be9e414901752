"""Fixtures of the inference tests: tiny pose-transfer model folders with random weights, built once per module."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.inference.helpers import write_model_folder


@pytest.fixture(autouse=True)
def _one_torch_thread(single_thread_torch):
    """Tiny networks: one torch thread (see ``single_thread_torch`` in tests/conftest.py)."""


@pytest.fixture(scope='session')
def model_dir(tmp_path_factory) -> Path:
    """``PoseTransfer_tiny`` (full model with pixel warping, demo size 128x64) beside ``FlowReg_tiny``."""
    return write_model_folder(tmp_path_factory.mktemp('inference_ckpt'))
