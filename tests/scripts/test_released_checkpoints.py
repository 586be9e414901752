"""Experiment folders laid out like the authors' ``pretrained_models.tgz`` test like ours.

The real archive cannot be downloaded here, so each test writes such a folder: a Python-2-era ``train_opt.json``
(no modern keys, an unused extra key, ``gpu_ids`` as saved on a GPU machine, Market's ``fn_pose: null``),
network files saved in the legacy (pre-zip) format without ``num_batches_tracked`` (PyTorch 0.4.0), and the flow
model folder the options name, with its own ``train_opt.json``.
"""
from __future__ import annotations

import json

import pytest
import torch

import test_pose_transfer
from data.synthetic import DemoConfig, generate_demo_dataset
from inference.pipeline import PoseTransferPipeline
from models.factory import define_flow_network, define_generator, define_pixel_warping_network
from options.base_options import merge_train_options
from options.flow_regression_options import TrainFlowRegressionOptions
from options.pose_transfer_options import TestPoseTransferOptions, TrainPoseTransferOptions
from util.framing import framing_params

from tests.inference.helpers import rotate_arms, skeleton, synthetic_photo

# Options this project added; the authors' files do not have them.
MODERN_KEYS = {'checkpoints_dir', 'num_workers', 'seed', 'save_step_freq', 'tensorboard', 'max_steps_per_epoch',
               'val_batches', 'vgg_weights', 'resume_label', 'aug_affine_hw_order', 'allow_corr_fallback',
               'pose_mask_transposed'}
DEMO_PATHS = {'img_dir': 'Img/img/', 'seg_dir': 'Img/seg/', 'corr_dir': '3d/hmr/corr/'}


def original_json(opt, **changes) -> str:
    saved = {k: v for k, v in opt.to_dict().items() if k not in MODERN_KEYS}
    saved.update(gpu_ids=[0], **changes)
    # The original wrote indent 0 with ', ' separators from Python 2.
    return json.dumps(saved, indent=0, separators=(',', ': '), sort_keys=True)


def legacy_save(net: torch.nn.Module, path) -> dict:
    sd = {k: v.clone() for k, v in net.state_dict().items() if not k.endswith('num_batches_tracked')}
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    return sd


def build_released(ckpt, data_root, dataset_name, flow_id, flow_model, pix_warp: bool):
    """Write ``PoseTransfer_x.5`` (``pix_warp``) or ``x.4`` and the flow folder ``flow_id`` under ``ckpt``."""
    torch.manual_seed(0)
    flow_opt = TrainFlowRegressionOptions().parse(['--id', flow_id, '--dataset_name', dataset_name, '--which_model',
                                                   flow_model, '--gpu_ids', '-1'], display=False, save=False)
    (ckpt / flow_id).mkdir(parents=True)
    (ckpt / flow_id / 'train_opt.json').write_text(original_json(flow_opt, pretrain_id=''))
    legacy_save(define_flow_network(flow_opt), ckpt / flow_id / 'best_net_netF.pth')

    pose_id = 'PoseTransfer_m0.5' if dataset_name == 'market' else 'PoseTransfer_0.5'
    pose_opt = TrainPoseTransferOptions().parse(
        ['--id', pose_id, '--dataset_name', dataset_name, '--which_model_G', 'dual_unet', '--G_feat_warp', '1',
         '--G_vis_mode', 'residual', '--G_pix_warp', str(int(pix_warp)), '--pretrained_flow_id', flow_id,
         *(['--pretrained_G_id', pose_id.replace('.5', '.4')] if pix_warp else []), '--gpu_ids', '-1'],
        display=False, save=False)
    extra = {'data_root': str(data_root), **DEMO_PATHS}
    if dataset_name == 'market':
        extra.update(fn_pose=None, G_n_scales=5)  # the original's typo left fn_pose null; unused extra key
    (ckpt / pose_id).mkdir()
    (ckpt / pose_id / 'train_opt.json').write_text(original_json(pose_opt, **extra))
    files = {'netG': legacy_save(define_generator(pose_opt), ckpt / pose_id / 'best_net_netG.pth')}
    if pix_warp:
        files['netPW'] = legacy_save(define_pixel_warping_network(pose_opt), ckpt / pose_id / 'best_net_netPW.pth')
    return pose_id, files


@pytest.fixture(scope='module')
def df_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('df256') / 'demo'
    generate_demo_dataset(root, DemoConfig(seed=1, image_size=(256, 256), n_train_identities=1, n_test_identities=1,
                                           images_per_identity=2, test_pairs_per_identity=2, n_test_small=1),
                          workers=1, verbose=False)
    return root


@pytest.mark.parametrize('size', ['market', 'deepfashion'])
def test_released_folder_tests_like_ours(size, demo_root, df_root, tmp_path, capsys):
    if size == 'market':
        pose_id, files = build_released(tmp_path, demo_root, 'market', 'Flow3d_m1.0.0', 'unet_v2', pix_warp=True)
    else:
        pose_id, files = build_released(tmp_path, df_root, 'deepfashion', 'FlowReg_0.1', 'unet', pix_warp=True)
    argv = ['--id', pose_id, '--which_epoch', 'best', '--gpu_ids', '-1', '--checkpoints_dir', str(tmp_path),
            '--num_workers', '0', '--batch_size', '2', '--n_test_batch', '1', '--n_vis', '2', '--save_output']
    result = test_pose_transfer.main(argv + (['--masked'] if size == 'market' else []))
    out = capsys.readouterr().out
    assert f'[model_id: {pose_id}  epoch: best]  PSNR: ' in out
    assert len(list((tmp_path / pose_id / 'test_test_best' / 'images').glob('*.jpg'))) == 2
    assert 0 <= result['metrics']['SSIM'] <= 1

    # The model really carries the released weights (strict load, shared downsample, 0.4.0 BatchNorm keys).
    opt = merge_train_options(TestPoseTransferOptions().parse(argv, display=False, save=False))
    assert opt.image_size == ([128, 64] if size == 'market' else [256, 256])
    assert opt.fn_pose == 'Label/pose_label.pkl'
    from models.pose_transfer_model import PoseTransferModel
    model = PoseTransferModel(opt)
    for name, saved in files.items():
        live = getattr(model, name).state_dict()
        for key, value in saved.items():
            assert torch.equal(live[key], value), (name, key)
    assert model.netF.training is False
    assert model.netG.training is True  # original test-time semantics: batch-statistics BatchNorm


@pytest.mark.parametrize('size', ['market', 'deepfashion'])
def test_released_folder_reposes_a_photo(size, demo_root, df_root, tmp_path):
    """The inference pipeline loads a released-layout folder (its flow folder beside it) with eval-mode BatchNorm
    and reposes a photo it frames itself at the model's size."""
    if size == 'market':
        pose_id, files = build_released(tmp_path, demo_root, 'market', 'Flow3d_m1.0.0', 'unet_v2', pix_warp=True)
    else:
        pose_id, files = build_released(tmp_path, df_root, 'deepfashion', 'FlowReg_0.1', 'unet', pix_warp=True)
    pipe = PoseTransferPipeline.from_pretrained(tmp_path / pose_id, device='cpu')
    height, width = (128, 64) if size == 'market' else (256, 256)
    assert pipe.image_size == (height, width) and pipe.which_epoch == 'best' and pipe.bn_mode == 'running'
    assert pipe.framing == framing_params(size)
    assert not pipe.model.netG.training and not pipe.model.netPW.training
    for name, saved in files.items():
        live = getattr(pipe.model, name).state_dict()
        assert all(torch.equal(live[key], value) for key, value in saved.items()), name
    pose = skeleton(200, 60, 1.5)
    photo = synthetic_photo(pose, 360, 480)
    result = pipe(photo, rotate_arms(pose, 50), source_keypoints=pose, return_intermediates=True, paste_back=True)
    assert result.image.shape == (height, width, 3) and result.pasted.shape == photo.shape
    assert result.intermediates.flow.shape == (height, width, 2)
