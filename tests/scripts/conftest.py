"""Fixtures of the end-to-end tests: a small demo dataset and a tiny trained flow module, built once per session.

The scripts' ``main(argv)`` are called in-process with tiny networks (``--nf 8``, ``--G_nf 8``), a few steps, no
loader workers and no TensorBoard, so every pipeline test runs in seconds on a CPU.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from data.synthetic import DemoConfig, generate_demo_dataset

SCRIPTS = Path(__file__).resolve().parents[2] / 'scripts'
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

# 4 train identities x 12 ordered pairs = 48 train pairs; 2 test identities.
PIPELINE_CONFIG = DemoConfig(seed=5, image_size=(128, 64), n_train_identities=4, n_test_identities=2,
                             images_per_identity=4, test_pairs_per_identity=6, n_test_small=4)


@pytest.fixture(autouse=True)
def single_thread_torch():
    # Tiny convolutions on a shared 2-core machine run faster on one thread (see tests/models/conftest.py).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('pipeline') / 'demo'
    generate_demo_dataset(root, PIPELINE_CONFIG, workers=1, verbose=False)
    return root


def common_args(root: Path, ckpt: Path) -> list[str]:
    return ['--dataset_name', 'demo', '--data_root', str(root), '--checkpoints_dir', str(ckpt), '--gpu_ids', '-1',
            '--num_workers', '0', '--tensorboard', '0']


def flow_args(root: Path, ckpt: Path, exp_id: str, *extra: str) -> list[str]:
    return ['--id', exp_id, *common_args(root, ckpt), '--which_model', 'unet_v2', '--nf', '8', '--max_nf', '16',
            '--batch_size', '4', '--max_steps_per_epoch', '2', '--val_batches', '1', '--n_vis', '4',
            '--display_freq', '1', *extra]


@pytest.fixture(scope='session')
def flow_checkpoints(demo_root, tmp_path_factory) -> Path:
    """A checkpoints folder holding ``FlowReg_tiny`` (one epoch of two steps) for the pose-transfer tests."""
    import train_flow_regression_module
    ckpt = tmp_path_factory.mktemp('flow_ckpt')
    train_flow_regression_module.main(flow_args(demo_root, ckpt, 'tiny', '--n_epoch', '1', '--n_vis', '0'))
    return ckpt
