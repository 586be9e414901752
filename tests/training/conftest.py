"""Fixtures of the training-engine tests."""
import pytest
import torch

from models.flow_regression_model import FlowRegressionModel
from tests.training.helpers import tiny_flow_options


@pytest.fixture(autouse=True)
def _one_torch_thread(single_thread_torch):
    """Tiny networks: one torch thread (see ``single_thread_torch`` in tests/conftest.py)."""


@pytest.fixture
def tiny_model(tmp_path):
    """``(model, opt)``: a FlowRegressionModel with a 4-channel first layer, experiment folder under ``tmp_path``;
    its snapshots can be written without any data."""
    torch.manual_seed(0)
    opt = tiny_flow_options(tmp_path)
    return FlowRegressionModel(opt), opt
