"""Flow-regression option sets: the original's options and defaults, per-dataset presets, modern options.

Per-dataset presets (``FLOW_PRESETS``) are parser defaults: ``--dataset_name market`` selects the
Market values, and any of them can still be overridden on the command line (the original forced
them). The ``demo`` preset points at the small generated dataset under ``datasets/demo/``.

Modern options (defaults keep the original behaviour):

* all flow sets: ``--allow_corr_fallback`` (0): 1 turns unreadable correspondence files into zero
  flow / visibility 2 and counts them (the original did this silently); 0 raises naming the file.
* test: ``--results_dir`` and ``--overwrite``: the test writes a fresh folder ``test_test_<epoch>/`` (the grid,
  the metrics JSON, the options) in the experiment folder or in ``--results_dir``; an existing one is refused
  unless ``--overwrite``.
* train: ``--resume_label`` (None: resume from ``--last_epoch``; e.g. ``latest``),
  ``--save_step_freq`` (0: also save ``latest`` every N steps when > 0), ``--tensorboard``
  (1), ``--max_steps_per_epoch`` (0 = whole epoch), ``--val_batches`` (0 = whole validation split),
  ``--check_data`` (0; 1: check every file of the dataset first and stop on any error, ``data/dataset_check.py``).
"""
from __future__ import annotations

import argparse
from typing import Any, ClassVar


from models.factory import FLOW_MODELS, FLOW_NETWORK_DEFAULTS
from models.amp import AMP_MODES
from models.losses import FLOW_CRITERIA
from options.base_options import (BINARY, INIT_TYPES, NAN_POLICIES, NORM_TYPES, RUNTIME_KEYS, TEST_OUTPUT_KEYS,
                                  BaseOptions, Options, add_data_options, add_schedule_options, add_test_output_options)

# The flow network's architecture defaults are the models' own (the frozen-flow loader uses them for old files).
_ARCH = FLOW_NETWORK_DEFAULTS

FLOW_ID_PREFIX = 'FlowReg_'

FLOW_PRESETS: dict[str, dict[str, Any]] = {
    'deepfashion': {
        'image_size': [256, 256],
        'data_root': 'datasets/deepfashion/',
        'img_dir': 'Img/img/',
        'seg_dir': 'Img/seg/',
        # HMR-derived joints adapted to the OpenPose convention (pose transfer uses pose_label.pkl).
        'fn_pose': 'Label/pose_label_adapt.pkl',
        'fn_split': 'Label/pair_split_clean.json',
        'corr_dir': '3d/hmr/corr/',
    },
    'market': {
        'image_size': [128, 64],
        'num_scale': 4,
        'joint_radius': 4,
        'aug_shiftx_range': 5,
        'aug_shifty_range': 5,
        'data_root': 'datasets/market1501/',
        'img_dir': 'Images/img/',
        'seg_dir': 'Images/seg/',
        'fn_pose': 'Label/pose_label.pkl',
        'fn_split': 'Label/pair_split.json',
        'corr_dir': '3d/hmr/corr/',
    },
    'demo': {
        'image_size': [128, 64],
        'num_scale': 4,
        'joint_radius': 4,
        'aug_shiftx_range': 5,
        'aug_shifty_range': 5,
        'data_root': 'datasets/demo/',
        'img_dir': 'Img/img/',
        'seg_dir': 'Img/seg/',
        'fn_pose': 'Label/pose_label_adapt.pkl',
        'fn_split': 'Label/pair_split_clean.json',
        'corr_dir': '3d/hmr/corr/',
    },
}

# n_vis is a test-side option of ours (the original flow test script wrote no grid), so it stays from the CLI.
FLOW_PRESERVED_KEYS = ('gpu_ids', 'is_train', 'batch_size', 'which_epoch', 'debug', 'n_vis', *RUNTIME_KEYS)


class BaseFlowRegressionOptions(BaseOptions):
    """Options shared by flow-regression training and testing."""

    id_prefix: ClassVar[str] = FLOW_ID_PREFIX
    presets: ClassVar[dict[str, dict[str, Any]]] = FLOW_PRESETS
    preserved_keys: ClassVar[tuple[str, ...]] = tuple(dict.fromkeys(FLOW_PRESERVED_KEYS))
    description: ClassVar[str] = 'Flow regression module options'

    def initialize(self, parser: argparse.ArgumentParser) -> None:
        super().initialize(parser)
        # model
        parser.add_argument('--which_model', type=str, default=_ARCH['which_model'], choices=list(FLOW_MODELS),
                            help='flow network: unet (FlowUnet, always 512 max width) or unet_v2 (FlowUnet_v2)')
        parser.add_argument('--init_type', type=str, default='kaiming', choices=INIT_TYPES,
                            help='weight initialisation')
        parser.add_argument('--norm', type=str, default=_ARCH['norm'], choices=NORM_TYPES, help='normalisation layer')
        parser.add_argument('--nf', type=int, default=_ARCH['nf'], help='width of the first layer')
        parser.add_argument('--max_nf', type=int, default=_ARCH['max_nf'], help='maximum width (ignored by unet)')
        parser.add_argument('--input_type1', type=str, default=_ARCH['input_type1'],
                            help="inputs from image 1, '+'-joined items of img, seg, joint")
        parser.add_argument('--input_type2', type=str, default=_ARCH['input_type2'],
                            help="inputs from image 2, '+'-joined items of img, seg, joint")
        parser.add_argument('--start_scale', type=int, default=_ARCH['start_scale'],
                            help='resolution factor of the finest flow output')
        parser.add_argument('--num_scale', type=int, default=_ARCH['num_scale'], help='number of flow pyramid levels')
        parser.add_argument('--flow_loss_type', type=str, default='l2', choices=sorted(FLOW_CRITERIA),
                            help='multi-scale flow loss type')
        parser.add_argument('--use_ss_flow_loss', type=int, default=1, choices=BINARY,
                            help='use the segmentation-sensitive flow loss')
        add_data_options(parser, dataset_type='flow')
        parser.add_argument('--aug_shiftx_range', type=int, default=20, help='random target shift range in x')
        parser.add_argument('--aug_shifty_range', type=int, default=10, help='random target shift range in y')
        parser.add_argument('--vis_smooth_rate', type=int, default=5,
                            help='median filter size for the visibility map (0 disables)')


class TrainFlowRegressionOptions(BaseFlowRegressionOptions):
    """Flow-regression training options."""

    is_train: ClassVar[bool] = True
    opt_file_name: ClassVar[str] = 'train_opt.json'

    def initialize(self, parser: argparse.ArgumentParser) -> None:
        super().initialize(parser)
        parser.add_argument('--pretrain_id', type=str, default='', help='unused (kept for option-file compatibility)')
        parser.add_argument('--pretrain_epoch', type=str, default='latest',
                            help='unused (kept for option-file compatibility)')
        add_schedule_options(parser, lr=1e-4, beta1=0.9, weight_decay=4e-4, lr_decay=8, lr_gamma=0.5,
                             save_epoch_freq=5)
        # loss weights
        parser.add_argument('--loss_weight_flow', type=float, default=1.0, help='multi-scale flow loss weight')
        parser.add_argument('--loss_weight_vis', type=float, default=1.0, help='visibility loss weight')
        parser.add_argument('--loss_weight_flow_ss', type=float, default=5.0,
                            help='segmentation-sensitive flow loss weight')
        add_modern_train_options(parser)

    def check_consistency(self, opt: Options) -> None:
        super().check_consistency(opt)
        weights = {'--loss_weight_flow': opt.loss_weight_flow, '--loss_weight_vis': opt.loss_weight_vis}
        if opt.use_ss_flow_loss:
            weights['--loss_weight_flow_ss'] = opt.loss_weight_flow_ss
        if not any(weights.values()):
            self.parser.error(f'{", ".join(weights)} are all 0 (the segmentation-sensitive loss '
                              f'{"is" if opt.use_ss_flow_loss else "is off, --use_ss_flow_loss 0, and"} counted): '
                              f'the flow loss would be 0, nothing to train')


class TestFlowRegressionOptions(BaseFlowRegressionOptions):
    """Flow-regression test options."""

    __test__ = False  # not a pytest test class despite the name
    is_train: ClassVar[bool] = False
    opt_file_name: ClassVar[str] = 'test_opt.json'
    preserved_keys: ClassVar[tuple[str, ...]] = (*BaseFlowRegressionOptions.preserved_keys, *TEST_OUTPUT_KEYS)

    def initialize(self, parser: argparse.ArgumentParser) -> None:
        super().initialize(parser)
        parser.add_argument('--which_epoch', type=str, default='best', help='checkpoint label to load')
        parser.add_argument('--n_vis', type=int, default=64,
                            help='[modern] samples of the test split to visualise in vis.jpg of the results '
                                 'folder (0: none)')
        add_test_output_options(parser)


def add_modern_train_options(parser: argparse.ArgumentParser) -> None:
    """Modern training options shared by both train sets (defaults keep the original behaviour)."""
    parser.add_argument('--resume_label', type=str, default=None,
                        help="[modern] with --resume_train, resume from this checkpoint label (e.g. 'best', '5') "
                             "instead of 'latest'")
    parser.add_argument('--auto_resume', action='store_true',
                        help="[modern] resume from 'latest' when the experiment has it, else start fresh (for "
                             "job schedulers that restart the same command)")
    parser.add_argument('--overwrite', action='store_true',
                        help='[modern] start afresh in an experiment folder that holds checkpoints: its contents '
                             'are deleted first (without it, such a start is refused)')
    parser.add_argument('--nan_policy', type=str, default='stop', choices=list(NAN_POLICIES),
                        help='[modern] a non-finite loss or gradient: stop (end training with a message naming the '
                             'step and loss term; nothing is saved) or skip (skip that update, count and log it)')
    parser.add_argument('--save_step_freq', type=int, default=0,
                        help="[modern] when > 0, also save the 'latest' checkpoint every N steps")
    parser.add_argument('--tensorboard', type=int, default=1, choices=BINARY,
                        help='[modern] also write TensorBoard scalars')
    parser.add_argument('--max_steps_per_epoch', type=int, default=0,
                        help='[modern] when > 0, stop each epoch after N iterations (quick runs)')
    parser.add_argument('--val_batches', type=int, default=0,
                        help='[modern] when > 0, validate on the first N batches only (0 = whole split)')
    parser.add_argument('--check_data', type=int, default=0, choices=BINARY,
                        help='[modern] 1: before training, read every image, segmentation and correspondence file '
                             'of every split of --fn_split and check the keypoints and correspondences for NaN and '
                             'range (as scripts/check_dataset.py); any error stops the run before anything is '
                             'written, with a report of all problems')
    add_performance_options(parser)


def add_performance_options(parser: argparse.ArgumentParser) -> None:
    """How the training step runs; the defaults are the faithful float32 path. Multi-GPU training is launched with
    torchrun (see util/distributed.py), not with an option."""
    parser.add_argument('--amp', type=str, default='off', choices=list(AMP_MODES),
                        help='[modern] mixed precision of the network passes: off (float32, faithful), bf16, fp16 '
                             '(with gradient scaling, CUDA); losses, their reductions and metrics stay float32')
    parser.add_argument('--channels_last', type=int, default=0, choices=BINARY,
                        help='[modern] 1: networks in channels-last (NHWC) memory format')
    parser.add_argument('--compile', type=int, default=0, choices=BINARY,
                        help='[modern] 1: torch.compile the networks')
    parser.add_argument('--sync_bn', type=int, default=0, choices=BINARY,
                        help='[modern] under torchrun on CUDA, 1: BatchNorm statistics over the global batch '
                             '(SyncBatchNorm); 0: each process normalises its slice, as the original DataParallel')
