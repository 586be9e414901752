"""Helpers of the web-page tests: a tiny trained demo model, made with the training scripts themselves."""
from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers import common_args, flow_args

SCRIPTS = Path(__file__).resolve().parents[2] / 'scripts'
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import train_flow_regression_module  # noqa: E402
import train_pose_transfer_model  # noqa: E402

MODEL_ID = 'PoseTransfer_web'


def train_tiny_demo_model(data_root: Path, ckpt: Path) -> Path:
    """``ckpt/PoseTransfer_web``: the full model (pixel warping) on the demo dataset at ``data_root``, trained for
    a few steps with tiny networks: flow module (2 steps), generator (2 steps), pixel-warping network (2 steps).
    Returns the model folder."""
    train_flow_regression_module.main(flow_args(data_root, ckpt, 'web', '--n_epoch', '1', '--n_vis', '0'))
    pose = [*common_args(data_root, ckpt), '--pretrained_flow_id', 'FlowReg_web', '--G_nf', '8', '--G_max_nf', '16',
            '--D_nf', '8', '--batch_size', '2', '--max_steps_per_epoch', '2', '--val_batches', '1', '--n_vis', '0',
            '--loss_weight_content', '0', '--n_epoch', '1', '--which_model_G', 'dual_unet', '--G_feat_warp', '1',
            '--G_vis_mode', 'residual']
    train_pose_transfer_model.main(['--id', 'web_4', *pose])
    train_pose_transfer_model.main(['--id', 'web', *pose, '--G_pix_warp', '1', '--pretrained_G_id', 'web_4',
                                    '--pretrained_G_epoch', 'best'])
    return ckpt / MODEL_ID
