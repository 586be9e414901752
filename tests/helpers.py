"""Helpers shared by several test packages: the pipeline dataset's configuration and the training command lines'
common arguments.

The training scripts' ``main(argv)`` (and the training loop) run in-process with tiny networks (``--nf 8``,
``--G_nf 8``), a few steps, no loader workers and no TensorBoard, so every pipeline test runs in seconds on a CPU.
"""
from __future__ import annotations

from pathlib import Path

from data.synthetic import DemoConfig

# 4 train identities x 12 ordered pairs = 48 train pairs; 2 test identities.
PIPELINE_CONFIG = DemoConfig(seed=5, image_size=(128, 64), n_train_identities=4, n_test_identities=2,
                             images_per_identity=4, test_pairs_per_identity=6, n_test_small=4)


def common_args(root: Path, ckpt: Path) -> list[str]:
    return ['--dataset_name', 'demo', '--data_root', str(root), '--checkpoints_dir', str(ckpt), '--gpu_ids', '-1',
            '--num_workers', '0', '--tensorboard', '0']


def flow_args(root: Path, ckpt: Path, exp_id: str, *extra: str) -> list[str]:
    return ['--id', exp_id, *common_args(root, ckpt), '--which_model', 'unet_v2', '--nf', '8', '--max_nf', '16',
            '--batch_size', '4', '--max_steps_per_epoch', '2', '--val_batches', '1', '--n_vis', '4',
            '--display_freq', '1', *extra]
