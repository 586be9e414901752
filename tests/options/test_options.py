"""Tests of the option sets: the original's defaults, presets, strict parsing, saving and the test-time merge."""
from __future__ import annotations

import copy
import json
import os
import pickle
import re
from pathlib import Path

import pytest
import torch

from options import (ARCH_KEYS, FLOW_PRESETS, POSE_PRESETS, TestFlowRegressionOptions, TestPoseTransferOptions,
                     TrainFlowRegressionOptions, TrainPoseTransferOptions, format_options,
                     merge_train_options, save_options)

ALL_SETS = [TrainFlowRegressionOptions, TestFlowRegressionOptions, TrainPoseTransferOptions, TestPoseTransferOptions]

# Expected defaults, typed in from the original implementation's option definitions (not read from ours).
BASE = {'id': 'default', 'gpu_ids': '0'}
FLOW_BASE = {
    'which_model': 'unet_v2', 'init_type': 'kaiming', 'norm': 'batch', 'nf': 32, 'max_nf': 128,
    'input_type1': 'joint', 'input_type2': 'joint', 'start_scale': 2, 'num_scale': 5, 'flow_loss_type': 'l2',
    'use_ss_flow_loss': 1, 'joint_nc': 18, 'joint_mode': 'binary', 'joint_radius': 8, 'seg_nc': 7,
    'dataset_type': 'flow', 'dataset_name': 'deepfashion', 'image_size': [256, 256], 'batch_size': 8,
    'data_root': None, 'fn_split': None, 'img_dir': None, 'seg_dir': None, 'corr_dir': None, 'fn_pose': None,
    'debug': False, 'aug_shiftx_range': 20, 'aug_shifty_range': 10, 'vis_smooth_rate': 5,
}
FLOW_TRAIN = {
    'resume_train': False, 'last_epoch': 1, 'pretrain_id': '', 'pretrain_epoch': 'latest', 'lr': 1e-4,
    'beta1': 0.9, 'beta2': 0.999, 'weight_decay': 4e-4, 'lr_policy': 'step', 'n_epoch': 30, 'n_epoch_decay': 0,
    'lr_decay': 8, 'lr_gamma': 0.5, 'display_freq': 10, 'test_epoch_freq': 1, 'save_epoch_freq': 5,
    'vis_epoch_freq': 1, 'check_grad_freq': 100, 'n_vis': 64, 'loss_weight_flow': 1.0, 'loss_weight_vis': 1.0,
    'loss_weight_flow_ss': 5.0,
}
FLOW_TEST = {'which_epoch': 'best'}
POSE_BASE = {
    'init_type': 'kaiming', 'use_dropout': 0, 'which_model_G': 'dual_unet', 'pretrained_G_id': None,
    'pretrained_G_epoch': 'best', 'G_nf': 32, 'G_max_nf': 128, 'G_n_scale': 7, 'G_norm': 'batch',
    'G_activation': 'relu', 'G_pose_type': 'joint_2', 'G_appearance_type': 'img_1', 'G_feat_warp': 1,
    'G_n_warp_scale': 5, 'G_vis_mode': 'residual', 'G_no_end_norm': 0, 'G_pix_warp': 0,
    'G_pix_warp_input_type': 'img_out_G+img_warp+vis_out+flow_out', 'G_pix_warp_detach': 1, 'D_nf': 64,
    'D_n_layers': 3, 'gan_type': 'dcgan', 'D_input_type_real': 'img_1+img_2+joint_2',
    'D_input_type_fake': 'img_1+img_out+joint_2', 'flow_on_the_fly': 1, 'F_input_type': 'joint_1+joint_2',
    'pretrained_flow_id': 'FlowReg_0.1', 'pretrained_flow_epoch': 'best', 'joint_nc': 18, 'joint_mode': 'binary',
    'joint_radius': 8, 'seg_nc': 7, 'dataset_type': 'pose_transfer', 'dataset_name': 'deepfashion',
    'image_size': [256, 256], 'batch_size': 8, 'data_root': None, 'fn_split': None, 'img_dir': None,
    'seg_dir': None, 'corr_dir': None, 'fn_pose': None, 'debug': False, 'use_augmentation': 0,
    'aug_scale_range': 1.2, 'aug_shiftx_range': 10, 'aug_shifty_range': 10, 'aug_color_jit': 0,
    'vis_smooth_rate': 5,
}
POSE_TRAIN = {
    'resume_train': False, 'last_epoch': 1, 'small_val_set': 1, 'lr': 2e-4, 'beta1': 0.5, 'beta2': 0.999,
    'weight_decay': 0, 'lr_D': 2e-5, 'weight_decay_D': 4e-4, 'lr_policy': 'step', 'n_epoch': 30,
    'n_epoch_decay': 0, 'lr_decay': 100, 'lr_gamma': 0.1, 'display_freq': 10, 'test_epoch_freq': 1,
    'save_epoch_freq': 1, 'vis_epoch_freq': 1, 'check_grad_freq': 100, 'n_vis': 64, 'epoch_add_gan': 6,
    'loss_weight_l1': 1.0, 'loss_weight_content': 1.0, 'loss_weight_style': 0, 'loss_weight_gan': 0.01,
    'shifted_style_loss': 1, 'vgg_content_weights': [0.125] * 5, 'vgg_content_mode': 'balance',
}
POSE_TEST = {'which_epoch': 'best', 'data_split': 'test', 'n_test_batch': -1, 'n_vis': 64, 'save_output': False,
             'masked': False}
ORIGINAL_DEFAULTS = {
    TrainFlowRegressionOptions: {**BASE, **FLOW_BASE, **FLOW_TRAIN},
    TestFlowRegressionOptions: {**BASE, **FLOW_BASE, **FLOW_TEST},
    TrainPoseTransferOptions: {**BASE, **POSE_BASE, **POSE_TRAIN},
    TestPoseTransferOptions: {**BASE, **POSE_BASE, **POSE_TEST},
}
# Dataset-dependent keys checked separately (the deepfashion preset fills the paths).
PRESET_FILLED = {'data_root', 'fn_split', 'img_dir', 'seg_dir', 'corr_dir', 'fn_pose'}


@pytest.fixture(autouse=True)
def no_cuda(monkeypatch):
    """Any CUDA query fails the test unless a test installs its own fake."""
    def forbidden(*args, **kwargs):
        raise AssertionError('CUDA was queried although no GPU id was requested')
    monkeypatch.setattr(torch.cuda, 'is_available', forbidden)
    monkeypatch.setattr(torch.cuda, 'device_count', forbidden)


def parse(cls, *args, **kwargs):
    """Parse with the CPU selected unless the test passes --gpu_ids itself; no display, no files."""
    args = list(args)
    if not any(a.startswith('--gpu_ids') for a in args):
        args = ['--gpu_ids', '-1', *args]
    kwargs.setdefault('display', False)
    kwargs.setdefault('save', False)
    return cls().parse(args, **kwargs)


# ------------------------------------------------------------------------------------------- defaults

@pytest.mark.parametrize('cls', ALL_SETS)
def test_parser_defaults_match_spec_tables(cls):
    parser = cls().parser
    for key, expected in ORIGINAL_DEFAULTS[cls].items():
        assert parser.get_default(key) == expected, key


@pytest.mark.parametrize('cls', ALL_SETS)
def test_parsed_defaults_and_derived_values(cls):
    opt = parse(cls)
    expected = {k: v for k, v in ORIGINAL_DEFAULTS[cls].items() if k not in PRESET_FILLED | {'id', 'gpu_ids'}}
    assert {k: vars(opt)[k] for k in expected} == expected
    assert opt.is_train == cls.__name__.startswith('Train')
    assert opt.gpu_ids == [] and opt.device == torch.device('cpu')
    assert opt.checkpoints_dir == 'checkpoints'
    assert opt.num_workers == min(4, os.cpu_count() or 0)
    assert opt.seed == 0
    assert opt.id == ('FlowReg_default' if 'Flow' in cls.__name__ else 'PoseTransfer_default')


def test_modern_option_defaults():
    ft = parse(TrainFlowRegressionOptions)
    pt = parse(TrainPoseTransferOptions)
    ps = parse(TestPoseTransferOptions)
    fs = parse(TestFlowRegressionOptions)
    for opt in (ft, pt):
        assert (opt.save_step_freq, opt.tensorboard, opt.max_steps_per_epoch, opt.val_batches) == (0, 1, 0, 0)
        assert opt.check_data == 0
        assert opt.resume_label is None
    assert pt.vgg_weights is None
    assert ps.bn_mode == 'batch'
    for opt in (pt, ps):
        assert opt.pose_mask_transposed == 1 and opt.aug_affine_hw_order == 'as_written'
    for opt in (ft, fs, pt, ps):
        assert opt.allow_corr_fallback == 0 and opt.strict_seg == 0
    assert parse(TrainFlowRegressionOptions, '--strict_seg', '1').strict_seg == 1
    assert 'bn_mode' not in vars(pt) and 'save_step_freq' not in vars(ps)
    for opt in (ps, fs):
        assert (opt.results_dir, opt.overwrite) == (None, False)
    assert 'output_dir' not in vars(ps)


@pytest.mark.parametrize('cls', [TestFlowRegressionOptions, TestPoseTransferOptions])
def test_where_a_test_writes_never_comes_from_the_training(tmp_path, cls):
    """A training started with --overwrite (or an edited train_opt.json) must not make its tests overwrite."""
    train_cls = TrainFlowRegressionOptions if cls is TestFlowRegressionOptions else TrainPoseTransferOptions
    saved = {**parse(train_cls, '--id', 'x').to_dict(), 'overwrite': True, 'results_dir': '/elsewhere'}
    exp = tmp_path / f'{cls.id_prefix}x'
    exp.mkdir()
    (exp / 'train_opt.json').write_text(json.dumps(saved))
    opt = merge_train_options(parse(cls, '--id', 'x', '--checkpoints_dir', str(tmp_path)))
    assert (opt.overwrite, opt.results_dir) == (False, None)
    opt = merge_train_options(parse(cls, '--id', 'x', '--checkpoints_dir', str(tmp_path), '--overwrite',
                                    '--results_dir', 'mine'))
    assert (opt.overwrite, opt.results_dir) == (True, 'mine')


def test_removed_output_dir_is_an_error_saying_what_replaced_it(capsys):
    with pytest.raises(SystemExit):
        parse(TestPoseTransferOptions, '--output_dir', 'out')
    assert '--output_dir was removed' in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- presets

DF_FLOW = {'image_size': [256, 256], 'num_scale': 5, 'joint_radius': 8, 'aug_shiftx_range': 20,
           'aug_shifty_range': 10, 'data_root': 'datasets/deepfashion/', 'img_dir': 'Img/img/',
           'seg_dir': 'Img/seg/', 'fn_pose': 'Label/pose_label_adapt.pkl',
           'fn_split': 'Label/pair_split_clean.json', 'corr_dir': '3d/hmr/corr/'}
MARKET_FLOW = {'image_size': [128, 64], 'num_scale': 4, 'joint_radius': 4, 'aug_shiftx_range': 5,
               'aug_shifty_range': 5, 'data_root': 'datasets/market1501/', 'img_dir': 'Images/img/',
               'seg_dir': 'Images/seg/', 'fn_pose': 'Label/pose_label.pkl', 'fn_split': 'Label/pair_split.json',
               'corr_dir': '3d/hmr/corr/'}
DEMO_FLOW = {'image_size': [128, 64], 'num_scale': 4, 'joint_radius': 4, 'aug_shiftx_range': 5,
             'aug_shifty_range': 5, 'data_root': 'datasets/demo/', 'img_dir': 'Img/img/', 'seg_dir': 'Img/seg/',
             'fn_pose': 'Label/pose_label_adapt.pkl', 'fn_split': 'Label/pair_split_clean.json',
             'corr_dir': '3d/hmr/corr/'}
DF_POSE = {'image_size': [256, 256], 'joint_radius': 8, 'G_n_scale': 7, 'G_n_warp_scale': 5, 'use_augmentation': 0,
           'data_root': 'datasets/deepfashion/', 'fn_split': 'Label/pair_split.json', 'img_dir': 'Img/img/',
           'seg_dir': 'Img/seg/', 'fn_pose': 'Label/pose_label.pkl', 'corr_dir': '3d/hmr/corr/',
           'pretrained_flow_id': 'FlowReg_0.1'}
MARKET_POSE = {'image_size': [128, 64], 'joint_radius': 4, 'G_n_scale': 5, 'G_n_warp_scale': 4,
               'use_augmentation': 1, 'data_root': 'datasets/market1501/', 'fn_split': 'Label/pair_split.json',
               'img_dir': 'Images/img/', 'seg_dir': 'Images/seg/', 'fn_pose': 'Label/pose_label.pkl',
               'corr_dir': '3d/hmr/corr/', 'pretrained_flow_id': 'Flow3d_m1.0.0'}
DEMO_POSE = {'image_size': [128, 64], 'joint_radius': 4, 'G_n_scale': 5, 'G_n_warp_scale': 4, 'use_augmentation': 0,
             'data_root': 'datasets/demo/', 'fn_split': 'Label/pair_split.json', 'img_dir': 'Img/img/',
             'seg_dir': 'Img/seg/', 'fn_pose': 'Label/pose_label.pkl', 'corr_dir': '3d/hmr/corr/',
             'pretrained_flow_id': 'FlowReg_demo'}


@pytest.mark.parametrize('cls, name, expected', [
    (TrainFlowRegressionOptions, 'deepfashion', DF_FLOW), (TestFlowRegressionOptions, 'market', MARKET_FLOW),
    (TrainFlowRegressionOptions, 'market', MARKET_FLOW), (TrainFlowRegressionOptions, 'demo', DEMO_FLOW),
    (TrainPoseTransferOptions, 'deepfashion', DF_POSE), (TrainPoseTransferOptions, 'market', MARKET_POSE),
    (TestPoseTransferOptions, 'market', MARKET_POSE), (TrainPoseTransferOptions, 'demo', DEMO_POSE),
    (TestPoseTransferOptions, 'demo', DEMO_POSE),
])
def test_dataset_presets(cls, name, expected):
    opt = parse(cls, '--dataset_name', name)
    assert {k: vars(opt)[k] for k in expected} == expected
    assert 'fn_poes' not in vars(opt) and 'G_n_scales' not in vars(opt)


@pytest.mark.parametrize('args', [
    ['--dataset_name', 'market', '--joint_radius', '6'],
    ['--joint_radius', '6', '--dataset_name', 'market'],
    ['--joint_radius=6', '--dataset_name=market'],
])
def test_command_line_overrides_preset(args):
    opt = parse(TrainFlowRegressionOptions, *args)
    assert opt.joint_radius == 6
    assert opt.num_scale == 4 and opt.image_size == [128, 64] and opt.data_root == 'datasets/market1501/'


def test_preset_overrides_of_paths_and_sizes():
    opt = parse(TrainPoseTransferOptions, '--dataset_name', 'market', '--image_size', '64', '32',
                '--use_augmentation', '0', '--data_root', '/data/m/')
    assert opt.image_size == [64, 32] and opt.use_augmentation == 0 and opt.data_root == '/data/m/'
    assert opt.G_n_scale == 5


def test_market_pretrained_flow_id_default_and_explicit_value():
    assert parse(TrainPoseTransferOptions, '--dataset_name', 'market').pretrained_flow_id == 'Flow3d_m1.0.0'
    opt = parse(TrainPoseTransferOptions, '--dataset_name', 'market', '--pretrained_flow_id', 'FlowReg_mine')
    assert opt.pretrained_flow_id == 'FlowReg_mine'


def test_presets_do_not_leak_between_parses():
    maker = TrainPoseTransferOptions()
    assert maker.parse(['--gpu_ids', '-1', '--dataset_name', 'market'], display=False, save=False).G_n_scale == 5
    opt = maker.parse(['--gpu_ids', '-1'], display=False, save=False)
    assert opt.G_n_scale == 7 and opt.image_size == [256, 256] and opt.pretrained_flow_id == 'FlowReg_0.1'
    assert POSE_PRESETS['market']['image_size'] == [128, 64]


def test_presets_are_not_mutated_through_the_namespace():
    opt = parse(TrainFlowRegressionOptions, '--dataset_name', 'market')
    opt.image_size.append(3)
    assert FLOW_PRESETS['market']['image_size'] == [128, 64]


def test_unknown_preset_key_raises(monkeypatch):
    monkeypatch.setitem(POSE_PRESETS['market'], 'fn_poes', 'Label/pose_label.pkl')
    with pytest.raises(ValueError, match='fn_poes'):
        parse(TrainPoseTransferOptions, '--dataset_name', 'market')
    # other datasets are unaffected
    assert parse(TrainPoseTransferOptions).fn_pose == 'Label/pose_label.pkl'


def test_preset_value_outside_choices_raises(monkeypatch):
    monkeypatch.setitem(FLOW_PRESETS['demo'], 'joint_mode', 'disc')
    with pytest.raises(ValueError, match='joint_mode'):
        parse(TestFlowRegressionOptions, '--dataset_name', 'demo')


# ------------------------------------------------------------------------------------------- strictness

@pytest.mark.parametrize('args', [
    ['--no_such_option', '1'], ['--lrr', '0.1'], ['--n_epo', '3'], ['--dataset', 'market'], ['stray'],
    ['--lr_gam', '0.5'], ['--epoch_add', '3'],
])
def test_unknown_or_abbreviated_option_is_an_error(args, capsys):
    with pytest.raises(SystemExit) as info:
        parse(TrainPoseTransferOptions, *args)
    assert info.value.code == 2


@pytest.mark.parametrize('cls, args', [
    (TrainFlowRegressionOptions, ['--norm', 'none']),
    (TrainFlowRegressionOptions, ['--which_model', 'resnet']),
    (TrainFlowRegressionOptions, ['--init_type', 'he']),
    (TrainFlowRegressionOptions, ['--lr_policy', 'cosine']),
    (TrainFlowRegressionOptions, ['--flow_loss_type', 'l3']),
    (TrainFlowRegressionOptions, ['--joint_mode', 'soft']),
    (TrainFlowRegressionOptions, ['--use_ss_flow_loss', '2']),
    (TestFlowRegressionOptions, ['--dataset_name', 'celeba']),
    (TrainPoseTransferOptions, ['--gan_type', 'wgan']),
    (TrainPoseTransferOptions, ['--G_vis_mode', 'gate']),
    (TrainPoseTransferOptions, ['--which_model_G', 'resnet']),
    (TrainPoseTransferOptions, ['--G_norm', 'none']),
    (TrainPoseTransferOptions, ['--vgg_content_mode', 'equal']),
    (TrainPoseTransferOptions, ['--tensorboard', '2']),
    (TestPoseTransferOptions, ['--bn_mode', 'eval']),
    (TestPoseTransferOptions, ['--aug_affine_hw_order', 'swapped']),
    (TestPoseTransferOptions, ['--gpu_ids', 'a,b']),
    (TestPoseTransferOptions, ['--image_size', '64']),
    (TestPoseTransferOptions, ['--batch_size', '0']),
    (TrainPoseTransferOptions, ['--num_workers', '-1']),
    (TrainPoseTransferOptions, ['--lr', 'fast']),
])
def test_invalid_values_are_errors(cls, args, capsys):
    with pytest.raises(SystemExit) as info:
        parse(cls, *args)
    assert info.value.code == 2


def test_namespace_rejects_new_keys_but_allows_existing_ones():
    opt = parse(TrainPoseTransferOptions)
    opt.lr = 1e-3
    assert opt.lr == 1e-3
    with pytest.raises(AttributeError, match="did you mean lr"):
        opt.lrr = 1e-3
    with pytest.raises(AttributeError, match='which_epoch'):
        opt.which_epoch = 'best'  # train sets have last_epoch, not which_epoch
    with pytest.raises(AttributeError, match='no option'):
        _ = opt.G_nff
    opt.define('extra_key', 3)
    assert opt.extra_key == 3
    assert '_frozen' not in vars(opt) and '_option_set' not in vars(opt)


def test_namespace_pickles_and_copies_with_its_guard():
    opt = parse(TestPoseTransferOptions)
    for clone in (pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt)):
        assert clone == opt and clone.device == torch.device('cpu')
        with pytest.raises(AttributeError):
            clone.typo_key = 1


# ------------------------------------------------------------------------------------------- derived values

@pytest.mark.parametrize('cls, raw, expected', [
    (TrainFlowRegressionOptions, '0.5', 'FlowReg_0.5'),
    (TestFlowRegressionOptions, 'FlowReg_0.5', 'FlowReg_0.5'),
    (TrainPoseTransferOptions, 'm0.5', 'PoseTransfer_m0.5'),
    (TestPoseTransferOptions, 'PoseTransfer_m0.5', 'PoseTransfer_m0.5'),
])
def test_id_prefix(cls, raw, expected):
    assert parse(cls, '--id', raw).id == expected


def test_pretrained_ids_are_not_prefixed():
    opt = parse(TrainPoseTransferOptions, '--pretrained_G_id', 'id_pose_4', '--pretrained_flow_id', 'flow_1')
    assert opt.pretrained_G_id == 'id_pose_4' and opt.pretrained_flow_id == 'flow_1'


@pytest.mark.parametrize('mode, expected', [
    ('balance', [0.125] * 5),
    ('imbalance', [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0]),
    ('special', [0.5, 0.25, 1.0, 2.0, 0.0]),
])
def test_vgg_content_mode(mode, expected):
    opt = parse(TrainPoseTransferOptions, '--vgg_content_mode', mode, '--vgg_content_weights', '0.5', '0.25', '1', '2',
                '0')
    assert opt.vgg_content_weights == expected


def test_cpu_ids_never_touch_cuda():
    # the autouse fixture makes any CUDA query fail
    for args in (['--gpu_ids', '-1'], ['--gpu_ids=-1,-2']):
        opt = parse(TrainFlowRegressionOptions, *args)
        assert opt.gpu_ids == [] and opt.device == torch.device('cpu')


def test_gpu_ids_without_cuda_warn_and_use_cpu(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: calls.append('is_available') or False)
    env_before = os.environ.get('CUDA_VISIBLE_DEVICES')
    opt = parse(TestPoseTransferOptions, '--gpu_ids', '0')
    assert opt.device == torch.device('cpu') and opt.gpu_ids == []
    assert calls == ['is_available']
    assert 'CUDA is not available' in capsys.readouterr().err
    assert os.environ.get('CUDA_VISIBLE_DEVICES') == env_before


def test_gpu_ids_with_cuda_select_first_listed_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    env_before = os.environ.get('CUDA_VISIBLE_DEVICES')
    opt = parse(TrainPoseTransferOptions, '--gpu_ids', '1,-1,0')
    assert opt.gpu_ids == [1, 0] and opt.device == torch.device('cuda:1')
    assert os.environ.get('CUDA_VISIBLE_DEVICES') == env_before
    with pytest.raises(ValueError, match='only 2 CUDA device'):
        parse(TrainPoseTransferOptions, '--gpu_ids', '2')


# ------------------------------------------------------------------------------------------- display / help

def test_display_block(capsys):
    opt = parse(TestFlowRegressionOptions, '--id', 'x', display=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == '------------ Options -------------'
    assert lines[-1] == '-------------- End ----------------'
    keys = [line.split(': ', 1)[0] for line in lines[1:-1]]
    assert keys == sorted(vars(opt)) and 'id: FlowReg_x' in lines and 'device: cpu' in lines
    assert format_options(opt).splitlines() == lines


@pytest.mark.parametrize('cls', ALL_SETS)
def test_help_lists_every_original_option(cls, capsys):
    with pytest.raises(SystemExit) as info:
        cls().parse(['--help'], display=False, save=False)
    assert info.value.code == 0
    out = capsys.readouterr().out
    for key in ORIGINAL_DEFAULTS[cls]:
        assert f'--{key} ' in out or f'--{key}\n' in out, key
    assert 'default:' in out  # ArgumentDefaultsHelpFormatter


def test_help_shows_preset_defaults(capsys):
    with pytest.raises(SystemExit):
        TrainPoseTransferOptions().parse(['--dataset_name', 'market', '--help'], display=False, save=False)
    assert 'Flow3d_m1.0.0' in capsys.readouterr().out


# ------------------------------------------------------------------------------------------- saving

def test_save_options_writes_one_key_per_line(tmp_path):
    args = ['--gpu_ids', '-1', '--checkpoints_dir', str(tmp_path), '--id', 'p1', '--dataset_name', 'market']
    opt = TrainPoseTransferOptions().parse(args, display=False)
    exp = tmp_path / 'PoseTransfer_p1'
    save_options(opt, exp / 'train_opt.json')
    text = (exp / 'train_opt.json').read_text()
    lines = text.strip().splitlines()
    assert lines[0] == '{' and lines[-1] == '}'
    assert '"pretrained_G_id": null,' in lines
    assert '"image_size": [' in lines and '128,' in lines and '64' in lines  # list, one item per line
    assert '"gpu_ids": [],' in lines
    assert '"is_train": true,' in lines
    assert not any(line.startswith(' ') for line in lines)  # indent 0
    assert all(line.count('": ') <= 1 for line in lines)  # at most one key per line
    saved = json.loads(text)
    assert 'device' not in saved
    assert saved == {k: v for k, v in vars(opt).items() if k != 'device'}


@pytest.mark.parametrize('cls', ALL_SETS)
def test_parsing_writes_nothing(cls, tmp_path, monkeypatch):
    """Option files are written when a run starts (a resume must not rewrite the first run's train_opt.json, a
    typo'd test id must not create a folder)."""
    monkeypatch.setattr('sys.argv', ['scripts/x.py'])
    opt = cls().parse(['--gpu_ids', '-1', '--checkpoints_dir', str(tmp_path), '--id', 'f'], display=False)
    assert list(tmp_path.iterdir()) == []
    assert opt.command_line == ['scripts/x.py', '--gpu_ids', '-1', '--checkpoints_dir', str(tmp_path), '--id', 'f']


def test_save_false_writes_nothing(tmp_path):
    parse(TrainFlowRegressionOptions, '--checkpoints_dir', str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_save_options_rejects_unserialisable_values(tmp_path):
    opt = parse(TestFlowRegressionOptions)
    opt.define('bad', {1, 2})
    with pytest.raises(TypeError, match='bad'):
        save_options(opt, tmp_path / 'o.json')


# ------------------------------------------------------------------------------------------- merging

def write_train_options(tmp_path: Path, cls, *args) -> Path:
    opt = cls().parse(['--gpu_ids', '-1', '--checkpoints_dir', str(tmp_path), *args], display=False)
    save_options(opt, opt.expr_dir / 'train_opt.json')
    return tmp_path


def test_merge_pose_train_options(tmp_path):
    write_train_options(tmp_path, TrainPoseTransferOptions, '--id', 'p2', '--dataset_name', 'market',
                        '--which_model_G', 'unet', '--G_nf', '16', '--batch_size', '4', '--n_vis', '10', '--debug',
                        '--G_vis_mode', 'soft_gate', '--pose_mask_transposed', '0', '--allow_corr_fallback', '1')
    test_opt = parse(TestPoseTransferOptions, '--id', 'p2', '--checkpoints_dir', str(tmp_path), '--batch_size', '2',
                     '--n_vis', '3', '--which_epoch', '5', '--masked', '--bn_mode', 'running', '--data_split',
                     'test_small')
    snapshot = copy.deepcopy(vars(test_opt))
    opt = merge_train_options(test_opt)
    assert vars(test_opt) == snapshot  # input untouched
    # architecture and data come from training
    assert (opt.which_model_G, opt.G_nf, opt.G_vis_mode) == ('unet', 16, 'soft_gate')
    assert (opt.dataset_name, opt.image_size, opt.G_n_scale, opt.data_root) == ('market', [128, 64], 5,
                                                                                 'datasets/market1501/')
    # preserved keys and test-only keys keep the test command line
    assert (opt.batch_size, opt.n_vis, opt.which_epoch, opt.debug) == (2, 3, '5', False)
    assert (opt.is_train, opt.gpu_ids, opt.device) == (False, [], torch.device('cpu'))
    assert (opt.masked, opt.bn_mode, opt.data_split, opt.save_output) == (True, 'running', 'test_small', False)
    assert (opt.pose_mask_transposed, opt.allow_corr_fallback) == (1, 0)
    assert opt.id == 'PoseTransfer_p2'
    # train-only keys are not added
    assert 'lr' not in vars(opt) and 'vgg_content_weights' not in vars(opt)
    with pytest.raises(AttributeError):
        opt.lr = 1.0


def test_strict_seg_is_a_run_option_of_the_test_command_line(tmp_path):
    write_train_options(tmp_path, TrainFlowRegressionOptions, '--id', 's1', '--strict_seg', '1')
    assert merge_train_options(parse(TestFlowRegressionOptions, '--id', 's1', '--checkpoints_dir',
                                     str(tmp_path))).strict_seg == 0
    assert merge_train_options(parse(TestFlowRegressionOptions, '--id', 's1', '--checkpoints_dir', str(tmp_path),
                                     '--strict_seg', '1')).strict_seg == 1


def test_merge_flow_train_options(tmp_path):
    write_train_options(tmp_path, TrainFlowRegressionOptions, '--id', 'f2', '--which_model', 'unet',
                        '--dataset_name', 'demo', '--nf', '8', '--batch_size', '16', '--debug')
    test_opt = parse(TestFlowRegressionOptions, '--id', 'FlowReg_f2', '--checkpoints_dir', str(tmp_path))
    opt = merge_train_options(test_opt, tmp_path / 'FlowReg_f2' / 'train_opt.json')
    assert (opt.which_model, opt.nf, opt.num_scale, opt.dataset_name) == ('unet', 8, 4, 'demo')
    assert (opt.batch_size, opt.debug, opt.which_epoch, opt.is_train) == (8, False, 'best', False)


def old_market_pose_json() -> dict:
    """An option file like the original Python-2 code wrote for a Market model (typo, unused keys)."""
    data = {k: v for k, v in {**BASE, **POSE_BASE, **POSE_TRAIN}.items()}
    data.update({
        'id': 'PoseTransfer_m0.4', 'gpu_ids': [0], 'is_train': True, 'dataset_name': 'market',
        'image_size': [128, 64], 'joint_radius': 4, 'G_n_scale': 5, 'G_n_warp_scale': 4, 'G_n_scales': 5,
        'use_augmentation': 1, 'data_root': 'datasets/market1501', 'fn_split': 'Label/pair_split.json',
        'img_dir': 'Images/img/', 'seg_dir': 'Images/seg/', 'corr_dir': '3d/hmr/corr/', 'fn_pose': None,
        'fn_poes': 'Label/pose_label.pkl', 'pretrained_flow_id': 'Flow3d_m1.0.0', 'niter': 30,
    })
    del data['G_vis_mode']  # an architecture key the old file lacks
    return data


def test_merge_old_style_json(tmp_path):
    path = tmp_path / 'PoseTransfer_m0.4' / 'train_opt.json'
    path.parent.mkdir()
    path.write_text(json.dumps(old_market_pose_json(), indent=0, separators=(',', ': ')))
    test_opt = parse(TestPoseTransferOptions, '--id', 'm0.4', '--checkpoints_dir', str(tmp_path))
    with pytest.warns(UserWarning, match="'G_vis_mode'") as record:
        opt = merge_train_options(test_opt)
    assert len(record) == 1
    assert opt.G_vis_mode == 'residual'  # current default, as the warning says
    assert opt.fn_pose == 'Label/pose_label.pkl'  # null falls back to the market preset
    assert opt.data_root == 'datasets/market1501' and opt.pretrained_flow_id == 'Flow3d_m1.0.0'
    assert opt.gpu_ids == [] and opt.is_train is False
    for key in ('fn_poes', 'G_n_scales', 'niter', 'lr'):
        assert key not in vars(opt)


def test_merge_complete_json_does_not_warn(tmp_path, recwarn):
    write_train_options(tmp_path, TrainPoseTransferOptions, '--id', 'full')
    merge_train_options(parse(TestPoseTransferOptions, '--id', 'full', '--checkpoints_dir', str(tmp_path)))
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize('key, value, message', [
    ('G_vis_mode', 'gate', 'not one of'),
    ('image_size', 128, 'should be a list'),
    ('G_nf', '32', 'should be an integer'),
    ('G_feat_warp', None, 'null'),
    ('debug', 1, 'true or false'),
])
def test_merge_rejects_bad_values(tmp_path, key, value, message):
    data = old_market_pose_json()
    data['G_vis_mode'] = 'residual'
    data[key] = value
    path = tmp_path / 'x.json'
    path.write_text(json.dumps(data))
    test_opt = parse(TestPoseTransferOptions)
    if key == 'debug':  # preserved keys are not read from the file at all
        assert merge_train_options(test_opt, path).debug is False
        return
    with pytest.raises(ValueError, match=f"{key}.*{message}"):
        merge_train_options(test_opt, path)


def test_missing_train_options_file(tmp_path):
    (tmp_path / 'PoseTransfer_other').mkdir()
    test_opt = parse(TestPoseTransferOptions, '--id', 'nope', '--checkpoints_dir', str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        merge_train_options(test_opt)
    msg = str(info.value)
    assert str(tmp_path / 'PoseTransfer_nope' / 'train_opt.json') in msg
    assert '--id' in msg and 'PoseTransfer_other' in msg


def test_missing_experiment_lists_close_names_first(tmp_path):
    for name in ('PoseTransfer_demo_4', 'PoseTransfer_demo_5', 'PoseTransfer_abl_1', 'PoseTransfer_nogan',
                 'FlowReg_demo'):
        (tmp_path / name).mkdir()
    with pytest.raises(FileNotFoundError) as info:
        merge_train_options(parse(TestPoseTransferOptions, '--id', 'demo_6', '--checkpoints_dir', str(tmp_path)))
    msg = str(info.value)
    # compared without the shared PoseTransfer_ prefix, so unrelated ids of the same stage are not "close"
    close = re.search(r'did you mean ([^?]*)\?', msg).group(1)
    assert sorted(close.split(', ')) == ['PoseTransfer_demo_4', 'PoseTransfer_demo_5']
    with pytest.raises(FileNotFoundError) as info:
        merge_train_options(parse(TestPoseTransferOptions, '--id', 'zzz', '--checkpoints_dir', str(tmp_path)))
    assert 'did you mean' not in str(info.value) and 'PoseTransfer_nogan' in str(info.value)


def test_merge_needs_an_option_set_for_plain_namespaces(tmp_path):
    import argparse
    with pytest.raises(TypeError, match='option_set'):
        merge_train_options(argparse.Namespace(id='x', checkpoints_dir=str(tmp_path)))


def test_arch_keys_are_options():
    known = set()
    for cls in ALL_SETS:
        known |= {a.dest for a in cls().parser._actions}
    assert set(ARCH_KEYS) <= known
