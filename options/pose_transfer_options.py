"""Pose-transfer option sets: the original's options and defaults, per-dataset presets, modern options.

Per-dataset presets (``POSE_PRESETS``) are parser defaults that the command line can override
(the original forced them). Fixes relative to the original (docs/fidelity.md): Market sets ``fn_pose``
(the original misspelled it ``fn_poes`` and left ``fn_pose`` unset); Market's
``pretrained_flow_id='Flow3d_m1.0.0'`` is only a default, an explicit ``--pretrained_flow_id``
wins; the unused Market key ``G_n_scales`` is not set (it had no effect; old option files that
contain it still merge, the key is ignored). ``pretrained_G_id``/``pretrained_flow_id`` are not
prefixed here: the model accepts both the plain and the prefixed folder name.

Modern options (defaults keep the original behaviour):

* all pose sets: ``--pose_mask_transposed`` (1: the original's transposed pose mask for masked
  SSIM/IS), ``--aug_affine_hw_order`` (``as_written``: the original's H/W order in the
  augmentation translation, 0.5·H for x and 0.5·W for y; ``intended``: centre scaling),
  ``--allow_corr_fallback`` (0: raise on an unreadable correspondence file; 1: zero flow /
  visibility 2, counted and reported, as the original did silently).
* train: ``--vgg_weights`` (path to torchvision's ``vgg19-dcbb9e9d.pth``; without weights the
  model raises unless ``--loss_weight_content 0``), ``--resume_label``, ``--save_step_freq``,
  ``--tensorboard``, ``--max_steps_per_epoch``, ``--val_batches``, ``--check_data`` (0; 1: check every file
  of the dataset first and stop on any error, ``data/dataset_check.py``).
* test: ``--bn_mode`` (``batch``: netG/netPW normalise with test-batch statistics as in the
  original; ``running``: proper eval-mode inference with running statistics), ``--results_dir`` and
  ``--overwrite`` (every test writes a fresh ``test_<split>_<epoch>/`` folder; the original wrote the images
  into ``output/`` of the experiment, mixed with those of earlier runs). ``--output_dir`` was removed with
  ``output/``: giving it is an error that says where the images go now.
"""
from __future__ import annotations

import argparse
from typing import Any, ClassVar

from data.pose_transfer_dataset import AFFINE_HW_ORDERS
from models.factory import ACTIVATIONS, GAN_TYPES, GENERATOR_MODELS
from models.networks import VIS_MODES
from models.pose_transfer_model import BN_MODES
from options.base_options import (BINARY, INIT_TYPES, NORM_TYPES, RUNTIME_KEYS, TEST_OUTPUT_KEYS, BaseOptions,
                                  Options, add_data_options, add_schedule_options, add_test_output_options, warn_line)
from options.flow_regression_options import add_modern_train_options

POSE_ID_PREFIX = 'PoseTransfer_'

POSE_PRESETS: dict[str, dict[str, Any]] = {
    'deepfashion': {
        'data_root': 'datasets/deepfashion/',
        'fn_split': 'Label/pair_split.json',
        'img_dir': 'Img/img/',
        'seg_dir': 'Img/seg/',
        'fn_pose': 'Label/pose_label.pkl',  # OpenPose detections (the flow module used the HMR-adapted file)
        'corr_dir': '3d/hmr/corr/',
    },
    'market': {
        'image_size': [128, 64],
        'joint_radius': 4,
        'G_n_scale': 5,
        'G_n_warp_scale': 4,
        'use_augmentation': 1,
        'data_root': 'datasets/market1501/',
        'fn_split': 'Label/pair_split.json',
        'img_dir': 'Images/img/',
        'seg_dir': 'Images/seg/',
        'fn_pose': 'Label/pose_label.pkl',
        'corr_dir': '3d/hmr/corr/',
        'pretrained_flow_id': 'Flow3d_m1.0.0',
    },
    'demo': {
        'image_size': [128, 64],
        'joint_radius': 4,
        'G_n_scale': 5,
        'G_n_warp_scale': 4,
        'data_root': 'datasets/demo/',
        'fn_split': 'Label/pair_split.json',
        'img_dir': 'Img/img/',
        'seg_dir': 'Img/seg/',
        'fn_pose': 'Label/pose_label.pkl',
        'corr_dir': '3d/hmr/corr/',
        'pretrained_flow_id': 'FlowReg_demo',
    },
}

# vgg_content_mode -> content-loss weights of relu1_1..relu5_1 (the original's tables); 'special' keeps the CLI list.
VGG_CONTENT_WEIGHTS: dict[str, list[float]] = {
    'balance': [0.125, 0.125, 0.125, 0.125, 0.125],
    'imbalance': [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0],
}

POSE_PRESERVED_KEYS = ('gpu_ids', 'is_train', 'batch_size', 'which_epoch', 'n_vis', 'debug', *RUNTIME_KEYS,
                       'bn_mode', 'pose_mask_transposed')

# Options of the dual-path generator that the plain U-Net generator does not use.
UNET_IGNORED_KEYS = ('G_feat_warp', 'G_vis_mode', 'G_n_warp_scale', 'G_no_end_norm')


class BasePoseTransferOptions(BaseOptions):
    """Options shared by pose-transfer training and testing."""

    id_prefix: ClassVar[str] = POSE_ID_PREFIX
    presets: ClassVar[dict[str, dict[str, Any]]] = POSE_PRESETS
    preserved_keys: ClassVar[tuple[str, ...]] = tuple(dict.fromkeys(POSE_PRESERVED_KEYS))
    description: ClassVar[str] = 'Pose transfer model options'

    def initialize(self, parser: argparse.ArgumentParser) -> None:
        super().initialize(parser)
        # generator
        parser.add_argument('--init_type', type=str, default='kaiming', choices=INIT_TYPES,
                            help='weight initialisation')
        parser.add_argument('--use_dropout', type=int, default=0, choices=BINARY,
                            help='dropout in the decoder residual blocks')
        parser.add_argument('--which_model_G', type=str, default='dual_unet', choices=list(GENERATOR_MODELS),
                            help='generator architecture')
        parser.add_argument('--pretrained_G_id', type=str, default=None,
                            help="experiment folder of a generator to start from (with or without the "
                                 "'PoseTransfer_' prefix)")
        parser.add_argument('--pretrained_G_epoch', type=str, default='best',
                            help='checkpoint label of pretrained_G_id')
        parser.add_argument('--G_nf', type=int, default=32, help='generator first-layer width')
        parser.add_argument('--G_max_nf', type=int, default=128, help='generator maximum width')
        parser.add_argument('--G_n_scale', type=int, default=7, help='generator scales')
        parser.add_argument('--G_norm', type=str, default='batch', choices=NORM_TYPES, help='generator normalisation')
        parser.add_argument('--G_activation', type=str, default='relu', choices=list(ACTIVATIONS),
                            help='generator activation (leaky_relu has slope 0.1)')
        parser.add_argument('--G_pose_type', type=str, default='joint_2',
                            help="generator pose input, '+'-joined tensor names")
        parser.add_argument('--G_appearance_type', type=str, default='img_1',
                            help="generator appearance input, '+'-joined tensor names")
        parser.add_argument('--G_feat_warp', type=int, default=1, choices=BINARY,
                            help='warp appearance features with the flow')
        parser.add_argument('--G_n_warp_scale', type=int, default=5, help='warp features at scales below this')
        parser.add_argument('--G_vis_mode', type=str, default='residual',
                            choices=list(VIS_MODES),
                            help='how visibility gates the warped features')
        parser.add_argument('--G_no_end_norm', type=int, default=0, choices=BINARY,
                            help='no norm at the end of the last bottleneck-side residual block')
        parser.add_argument('--G_pix_warp', type=int, default=0, choices=BINARY,
                            help='pixel warping: train netPW to blend the output with the warped source (training needs '
                                 '--pretrained_G_id: the generator is frozen; dual_unet only)')
        parser.add_argument('--G_pix_warp_input_type', type=str, default='img_out_G+img_warp+vis_out+flow_out',
                            help="netPW input, '+'-joined tensor names")
        parser.add_argument('--G_pix_warp_detach', type=int, default=1, choices=BINARY,
                            help='detach the generator output in the pixel-warping blend')
        # discriminator
        parser.add_argument('--D_nf', type=int, default=64, help='discriminator first-layer width')
        parser.add_argument('--D_n_layers', type=int, default=3, help='discriminator layers')
        parser.add_argument('--gan_type', type=str, default='dcgan', choices=list(GAN_TYPES), help='GAN loss')
        parser.add_argument('--D_input_type_real', type=str, default='img_1+img_2+joint_2',
                            help="discriminator input for real pairs, '+'-joined tensor names")
        parser.add_argument('--D_input_type_fake', type=str, default='img_1+img_out+joint_2',
                            help="discriminator input for fake pairs, '+'-joined tensor names")
        # flow
        parser.add_argument('--flow_on_the_fly', type=int, default=1, choices=BINARY,
                            help='1: flow from the pretrained flow module; 0: ground-truth flow from the data')
        parser.add_argument('--F_input_type', type=str, default='joint_1+joint_2', help='flow module input')
        parser.add_argument('--pretrained_flow_id', type=str, default='FlowReg_0.1',
                            help="experiment folder of the flow module (with or without the 'FlowReg_' prefix)")
        parser.add_argument('--pretrained_flow_epoch', type=str, default='best',
                            help='checkpoint label of the flow module')
        add_data_options(parser, dataset_type='pose_transfer')
        parser.add_argument('--use_augmentation', type=int, default=0, choices=BINARY,
                            help='random affine augmentation of the target side (training split only)')
        parser.add_argument('--aug_scale_range', type=float, default=1.2, help='augmentation scale range')
        parser.add_argument('--aug_shiftx_range', type=int, default=10, help='augmentation shift range in x')
        parser.add_argument('--aug_shifty_range', type=int, default=10, help='augmentation shift range in y')
        parser.add_argument('--aug_color_jit', type=int, default=0, choices=BINARY, help='hue jitter')
        parser.add_argument('--vis_smooth_rate', type=int, default=5,
                            help='median filter size for the visibility map (0 disables)')
        parser.add_argument('--aug_affine_hw_order', type=str, default='as_written', choices=list(AFFINE_HW_ORDERS),
                            help='[modern] augmentation translation: as_written uses 0.5*H for x and 0.5*W for '
                                 'y like the original; intended scales about the image centre')
        parser.add_argument('--pose_mask_transposed', type=int, default=1, choices=BINARY,
                            help='[modern] 1: draw the masked-SSIM pose mask with (x, y) used as (row, col) '
                                 'like the original; 0: the geometrically correct mask')


    def check_consistency(self, opt: Options) -> None:
        super().check_consistency(opt)
        ignored = [f'--{k}' for k in UNET_IGNORED_KEYS if k in opt.explicit_keys]
        if opt.which_model_G == 'unet' and ignored:
            warn_line(f'--which_model_G unet has no flow input: {", ".join(ignored)} '
                      f'{"is" if len(ignored) == 1 else "are"} ignored (the generator sees '
                      f'{opt.G_appearance_type}+{opt.G_pose_type} concatenated, no warped features)')


class TrainPoseTransferOptions(BasePoseTransferOptions):
    """Pose-transfer training options."""

    is_train: ClassVar[bool] = True
    opt_file_name: ClassVar[str] = 'train_opt.json'

    def initialize(self, parser: argparse.ArgumentParser) -> None:
        super().initialize(parser)
        parser.add_argument('--small_val_set', type=int, default=1, choices=BINARY,
                            help="validate on split 'test_small' (1) or 'test' (0)")
        add_schedule_options(parser, lr=2e-4, beta1=0.5, weight_decay=0, lr_decay=100, lr_gamma=0.1,
                             save_epoch_freq=1, what='generator (or netPW)')
        parser.add_argument('--lr_D', type=float, default=2e-5, help='discriminator learning rate')
        parser.add_argument('--weight_decay_D', type=float, default=4e-4, help='discriminator weight decay')
        # losses
        parser.add_argument('--epoch_add_gan', type=int, default=6, help='GAN loss active from this epoch on')
        parser.add_argument('--loss_weight_l1', type=float, default=1.0, help='L1 loss weight')
        parser.add_argument('--loss_weight_content', type=float, default=1.0,
                            help='VGG content loss weight (0 needs no VGG weights)')
        parser.add_argument('--loss_weight_style', type=float, default=0, help='VGG style loss weight')
        parser.add_argument('--loss_weight_gan', type=float, default=0.01, help='GAN loss weight')
        parser.add_argument('--shifted_style_loss', type=int, default=1, choices=BINARY,
                            help='use the shifted-Gram style loss')
        parser.add_argument('--vgg_content_weights', type=float, nargs='+', default=[0.125] * 5,
                            help="content weights of relu1_1..relu5_1 (used with --vgg_content_mode special)")
        parser.add_argument('--vgg_content_mode', type=str, default='balance',
                            choices=['balance', 'imbalance', 'special'],
                            help='balance: 0.125 each; imbalance: 1/32, 1/16, 1/8, 1/4, 1; '
                                 'special: keep --vgg_content_weights')
        parser.add_argument('--vgg_weights', type=str, default=None,
                            help="[modern] path to torchvision's vgg19-dcbb9e9d.pth for the content/style "
                                 "loss; None looks in <torch hub dir>/checkpoints/ (never downloads)")
        add_modern_train_options(parser)

    def auto_set(self, opt: Options) -> None:
        super().auto_set(opt)
        if opt.vgg_content_mode in VGG_CONTENT_WEIGHTS:
            opt.vgg_content_weights = list(VGG_CONTENT_WEIGHTS[opt.vgg_content_mode])

    def check_consistency(self, opt: Options) -> None:
        super().check_consistency(opt)
        if opt.G_pix_warp and opt.which_model_G == 'unet':
            self.parser.error('--which_model_G unet does not use the pixel-warping network: with --G_pix_warp 1 '
                              'only netPW would be optimised and nothing would learn; use --which_model_G '
                              'dual_unet (or --G_pix_warp 0)')
        if opt.G_pix_warp and not opt.pretrained_G_id:
            self.parser.error('--G_pix_warp 1 trains only the pixel-warping network on a frozen generator, so it '
                              'needs the trained generator: add --pretrained_G_id <w/o-pixel-warping experiment> '
                              '(and --pretrained_G_epoch); without it the generator would stay random')
        weights = {'--loss_weight_l1': opt.loss_weight_l1, '--loss_weight_content': opt.loss_weight_content,
                   '--loss_weight_style': opt.loss_weight_style, '--loss_weight_gan': opt.loss_weight_gan}
        if not any(weights.values()):
            self.parser.error(f'{", ".join(weights)} are all 0: the generator loss would be 0, nothing to train')


class TestPoseTransferOptions(BasePoseTransferOptions):
    """Pose-transfer test options."""

    __test__ = False  # not a pytest test class despite the name
    is_train: ClassVar[bool] = False
    opt_file_name: ClassVar[str] = 'test_opt.json'
    preserved_keys: ClassVar[tuple[str, ...]] = (*BasePoseTransferOptions.preserved_keys, *TEST_OUTPUT_KEYS)

    def initialize(self, parser: argparse.ArgumentParser) -> None:
        super().initialize(parser)
        parser.add_argument('--which_epoch', type=str, default='best', help='checkpoint label to load')
        parser.add_argument('--data_split', type=str, default='test', help='key of the split file to test on')
        parser.add_argument('--n_test_batch', type=int, default=-1,
                            help='batches to test; negative: whole split; 0: skip the test pass')
        parser.add_argument('--n_vis', type=int, default=64, help='samples to visualise (0: none)')
        parser.add_argument('--save_output', action='store_true', help='write the generated images')
        add_test_output_options(parser)
        # Removed: the images go to images/ of the results folder. Kept only to say so (no key unless given).
        parser.add_argument('--output_dir', type=str, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        parser.add_argument('--masked', action='store_true', help='also compute masked SSIM')
        parser.add_argument('--bn_mode', type=str, default='batch', choices=list(BN_MODES),
                            help='[modern] batch: netG/netPW normalise with test-batch statistics like the '
                                 'original (results depend on batch size and order); running: eval-mode '
                                 'inference with the running statistics')

    def auto_set(self, opt: Options) -> None:
        super().auto_set(opt)
        if 'output_dir' in vars(opt):
            self.parser.error(f'--output_dir was removed (got {opt.output_dir!r}): each test now writes a fresh '
                              f'folder test_<split>_<epoch>/ with the generated images in its images/; choose where '
                              f'that folder goes with --results_dir DIR (default: the experiment folder)')
