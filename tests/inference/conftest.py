"""Fixtures of the inference tests: tiny pose-transfer model folders with random weights, built once per module."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.inference.helpers import write_model_folder


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny networks run faster on one thread on the shared test machine; restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope='session')
def model_dir(tmp_path_factory) -> Path:
    """``PoseTransfer_tiny`` (full model with pixel warping, demo size 128x64) beside ``FlowReg_tiny``."""
    return write_model_folder(tmp_path_factory.mktemp('inference_ckpt'))
