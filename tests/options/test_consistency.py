"""Option combinations that cannot do what they say are errors, or a one-line warning saying what happens instead."""
from __future__ import annotations

import pytest
import torch

from options import (TestPoseTransferOptions, TrainFlowRegressionOptions, TrainPoseTransferOptions)


@pytest.fixture(autouse=True)
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)


def parse(cls, *args):
    return cls().parse(['--gpu_ids', '-1', *args], display=False, save=False)


def parse_error(cls, capsys, *args) -> str:
    with pytest.raises(SystemExit) as info:
        parse(cls, *args)
    assert info.value.code == 2
    return capsys.readouterr().err


def test_pixel_warping_needs_a_pretrained_generator(capsys):
    err = parse_error(TrainPoseTransferOptions, capsys, '--G_pix_warp', '1')
    assert '--G_pix_warp 1' in err and '--pretrained_G_id' in err
    assert parse(TrainPoseTransferOptions, '--G_pix_warp', '1', '--pretrained_G_id', 'x').G_pix_warp == 1
    # testing a full model needs no pretrained generator: its own netG file is loaded
    assert parse(TestPoseTransferOptions, '--G_pix_warp', '1').G_pix_warp == 1


def test_unet_generator_with_pixel_warping_is_an_error(capsys):
    err = parse_error(TrainPoseTransferOptions, capsys, '--which_model_G', 'unet', '--G_pix_warp', '1',
                      '--pretrained_G_id', 'x')
    assert '--which_model_G unet' in err and '--G_pix_warp' in err


def test_unet_generator_warns_once_about_ignored_flow_options(capsys):
    parse(TrainPoseTransferOptions, '--which_model_G', 'unet', '--G_feat_warp', '1', '--G_vis_mode', 'none')
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith('WARNING: --which_model_G unet')
    assert '--G_feat_warp' in lines[0] and '--G_vis_mode' in lines[0] and 'ignored' in lines[0]
    # the defaults of the warp options are not a request: no warning
    parse(TrainPoseTransferOptions, '--which_model_G', 'unet')
    assert capsys.readouterr().err == ''


@pytest.mark.parametrize('cls', [TrainFlowRegressionOptions, TrainPoseTransferOptions])
def test_zero_epochs_is_an_error(cls, capsys):
    assert '--n_epoch' in parse_error(cls, capsys, '--n_epoch', '0')
    assert '--n_epoch_decay' in parse_error(cls, capsys, '--n_epoch_decay', '-1')


@pytest.mark.parametrize('cls, args', [
    (TrainFlowRegressionOptions, ['--loss_weight_flow', '0', '--loss_weight_vis', '0', '--loss_weight_flow_ss', '0']),
    (TrainFlowRegressionOptions, ['--loss_weight_flow', '0', '--loss_weight_vis', '0', '--use_ss_flow_loss', '0']),
    (TrainPoseTransferOptions, ['--loss_weight_l1', '0', '--loss_weight_content', '0', '--loss_weight_gan', '0']),
])
def test_all_zero_loss_weights_are_an_error(cls, args, capsys):
    err = parse_error(cls, capsys, *args)
    assert 'loss' in err and 'nothing to train' in err


def test_negative_loss_weight_is_an_error(capsys):
    assert '--loss_weight_l1' in parse_error(TrainPoseTransferOptions, capsys, '--loss_weight_l1', '-1')


def test_several_gpus_warn_how_to_use_them(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    opt = TrainPoseTransferOptions().parse(['--gpu_ids', '0,1'], display=False)
    assert opt.device == torch.device('cuda:0')
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'WARNING: --gpu_ids 0,1' in err and 'torchrun' in err
    TrainPoseTransferOptions().parse(['--gpu_ids', '1'], display=False)
    assert capsys.readouterr().err == ''
