"""--amp bf16/fp16, --channels_last, --sync_bn through the training scripts (CPU)."""
from __future__ import annotations

import math
import re

import pytest
import torch

import train_flow_regression_module
import train_pose_transfer_model
from models.losses import random_vgg19_features
from util.weights import safe_torch_load

from tests.helpers import flow_args
from tests.scripts.test_pose_pipeline import ABLATIONS, pose_args


def assert_finite_run(exp, net_names):
    log = (exp / 'train_log.txt').read_text()
    # '[id: ...]  loss: 0.1234 ...' (without a terminal a '[elapsed: ...  eta: ...]' block follows the values)
    values = [float(v) for line in log.splitlines() if line.startswith('[')
              for v in re.findall(r'\w+: (\S+)', line.split(']', 1)[1].split('[', 1)[0])]
    assert values and all(math.isfinite(v) for v in values), log
    ckpt = safe_torch_load(exp / 'latest_checkpoint.pth')
    for name in net_names:
        sd = ckpt['model']['nets'][name]
        assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point()), name
        assert all(v.dtype != torch.bfloat16 for v in sd.values()), 'weights stay float32'
    return ckpt


@pytest.mark.slow
def test_flow_trains_in_bf16_without_non_finite_values(demo_root, tmp_path):
    summary = train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'bf16', '--n_epoch', '1', '--amp',
                                                          'bf16', '--check_grad_freq', '2', '--n_vis', '0'))
    assert summary['step'] == 2 and math.isfinite(summary['last_metrics']['EPE'])
    assert_finite_run(tmp_path / 'FlowReg_bf16', ['netF'])


@pytest.mark.slow
def test_pose_trains_in_bf16_with_gan_and_vgg(demo_root, flow_checkpoints, tmp_path):
    vgg_file = tmp_path / 'vgg19-dcbb9e9d.pth'
    torch.save({f'features.{k}': v for k, v in random_vgg19_features(0).state_dict().items()}, vgg_file)
    args = pose_args(demo_root, flow_checkpoints, 'bf16', *ABLATIONS['no_pixel_warping'], '--n_epoch', '1',
                     '--epoch_add_gan', '1', '--amp', 'bf16', '--check_grad_freq', '1', '--vgg_weights',
                     str(vgg_file), '--n_vis', '0', '--max_steps_per_epoch', '1', content_weight='1')
    train_pose_transfer_model.main(args)
    assert_finite_run(flow_checkpoints / 'PoseTransfer_bf16', ['netG', 'netD'])


@pytest.mark.slow
def test_flow_fp16_saves_and_resumes_its_grad_scaler(demo_root, tmp_path):
    args = flow_args(demo_root, tmp_path, 'fp16', '--amp', 'fp16', '--channels_last', '1', '--n_vis', '0')
    train_flow_regression_module.main([*args, '--n_epoch', '1'])
    ckpt = assert_finite_run(tmp_path / 'FlowReg_fp16', ['netF'])
    scale = ckpt['model']['grad_scalers']['optim']['scale']
    assert scale > 0
    summary = train_flow_regression_module.main([*args, '--n_epoch', '2', '--resume_train', '--resume_label',
                                                 'latest'])
    assert summary['step'] == 4
    assert_finite_run(tmp_path / 'FlowReg_fp16', ['netF'])


def test_sync_bn_on_cpu_is_a_clear_error(demo_root, tmp_path):
    with pytest.raises(ValueError, match='--sync_bn 1 needs CUDA'):
        train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'sbn', '--sync_bn', '1'))


def _weights(exp, names):
    nets = safe_torch_load(exp / 'latest_checkpoint.pth')['model']['nets']
    return {f'{n}.{k}': v for n in names for k, v in nets[n].items()}


@pytest.mark.slow
def test_maps_on_device_trains_bit_identically(demo_root, flow_checkpoints, tmp_path, monkeypatch):
    """--maps_on_device 1 (heatmaps and one-hot maps drawn by the model) trains to the same weights, with the
    flow module's shift augmentation and the generator's affine augmentation and GAN."""
    import models.base_model
    drawn = []
    draw = models.base_model.draw_device_maps
    monkeypatch.setattr(models.base_model, 'draw_device_maps', lambda batch, *a: drawn.append(1) or draw(batch, *a))
    runs, draws = {}, {}
    for flag in ('0', '1'):
        drawn.clear()
        train_flow_regression_module.main(flow_args(demo_root, tmp_path, f'maps{flag}', '--n_epoch', '1',
                                                    '--maps_on_device', flag, '--n_vis', '0'))
        args = pose_args(demo_root, flow_checkpoints, f'maps{flag}', *ABLATIONS['no_pixel_warping'], '--n_epoch',
                         '1', '--epoch_add_gan', '1', '--use_augmentation', '1', '--maps_on_device', flag,
                         '--n_vis', '0')
        train_pose_transfer_model.main(args)
        runs[flag] = {**_weights(tmp_path / f'FlowReg_maps{flag}', ['netF']),
                      **_weights(flow_checkpoints / f'PoseTransfer_maps{flag}', ['netG', 'netD'])}
        draws[flag] = len(drawn)
    assert draws['0'] == 0 and draws['1'] == 6  # per model: 2 training steps and 1 validation batch
    assert runs['0'].keys() == runs['1'].keys()
    assert all(torch.equal(runs['0'][k], runs['1'][k]) for k in runs['0'])
