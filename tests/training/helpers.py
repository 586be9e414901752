"""Helpers of the training-engine tests."""
from __future__ import annotations

from options.flow_regression_options import TrainFlowRegressionOptions


def tiny_flow_options(ckpt, exp_id='snap', *extra):
    """Options of a tiny flow model (nf 4) whose experiment folder is ``<ckpt>/FlowReg_<exp_id>``."""
    return TrainFlowRegressionOptions().parse(
        ['--id', exp_id, '--checkpoints_dir', str(ckpt), '--gpu_ids', '-1', '--dataset_name', 'demo',
         '--which_model', 'unet_v2', '--nf', '4', '--max_nf', '8', '--num_scale', '3', *extra],
        display=False, save=False)
