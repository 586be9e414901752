"""Fixtures of the training-engine tests: a tiny flow model whose snapshots can be written without any data."""
from __future__ import annotations

import pytest
import torch

from models.flow_regression_model import FlowRegressionModel
from options.flow_regression_options import TrainFlowRegressionOptions


@pytest.fixture(autouse=True)
def single_thread_torch():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_flow_options(ckpt, exp_id='snap', *extra):
    return TrainFlowRegressionOptions().parse(
        ['--id', exp_id, '--checkpoints_dir', str(ckpt), '--gpu_ids', '-1', '--dataset_name', 'demo',
         '--which_model', 'unet_v2', '--nf', '4', '--max_nf', '8', '--num_scale', '3', *extra],
        display=False, save=False)


@pytest.fixture
def tiny_model(tmp_path):
    """``(model, opt)``: a FlowRegressionModel with a 4-channel first layer, experiment folder under ``tmp_path``."""
    torch.manual_seed(0)
    opt = tiny_flow_options(tmp_path)
    return FlowRegressionModel(opt), opt
