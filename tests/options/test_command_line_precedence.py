"""Which value wins when a test command line meets the experiment's saved ``train_opt.json``.

Architecture options come from the experiment (a different explicit value is an error naming both values); data
and run options given explicitly on the command line win over the saved ones and are announced in one line; every
other option keeps the saved value. "Explicit" means typed on the command line, even when equal to the default.
"""
from __future__ import annotations

import pytest
import torch

from options import (TestFlowRegressionOptions, TestPoseTransferOptions, TrainFlowRegressionOptions,
                     TrainPoseTransferOptions, merge_train_options, save_options)


@pytest.fixture(autouse=True)
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)


def parse(cls, *args):
    return cls().parse(['--gpu_ids', '-1', *args], display=False, save=False)


def write_experiment(ckpt, cls, *args):
    opt = parse(cls, '--checkpoints_dir', str(ckpt), *args)
    save_options(opt, opt.expr_dir / 'train_opt.json')
    return opt


def test_parse_records_the_options_given_explicitly():
    opt = parse(TrainPoseTransferOptions, '--dataset_name', 'market', '--lr=0.5', '--debug', '--G_nf', '32')
    # --G_nf 32 equals the default but was typed: it counts as explicit; preset values do not.
    assert opt.explicit_keys == {'gpu_ids', 'dataset_name', 'lr', 'debug', 'G_nf'}
    assert 'image_size' not in opt.explicit_keys and 'G_n_scale' not in opt.explicit_keys


def test_explicit_keys_survive_copies():
    import copy
    import pickle
    opt = parse(TestFlowRegressionOptions, '--nf', '8')
    for clone in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert clone.explicit_keys == {'gpu_ids', 'nf'}


def test_data_options_from_the_command_line_win_and_are_announced(tmp_path, capsys):
    write_experiment(tmp_path, TrainFlowRegressionOptions, '--id', 'f', '--dataset_name', 'demo', '--nf', '8',
                     '--data_root', '/data/demo_a/')
    test_opt = parse(TestFlowRegressionOptions, '--id', 'f', '--checkpoints_dir', str(tmp_path), '--data_root',
                     '/nonexistent', '--vis_smooth_rate', '3')
    opt = merge_train_options(test_opt)
    assert opt.data_root == '/nonexistent' and opt.vis_smooth_rate == 3
    assert opt.nf == 8 and opt.dataset_name == 'demo'  # not given: from the experiment
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if 'command line' in line]
    assert len(lines) == 1, out
    assert "data_root='/nonexistent' (saved '/data/demo_a/')" in lines[0]
    assert "vis_smooth_rate=3 (saved 5)" in lines[0]


def test_nothing_is_announced_without_overrides(tmp_path, capsys):
    write_experiment(tmp_path, TrainFlowRegressionOptions, '--id', 'f', '--dataset_name', 'demo')
    # --dataset_name demo equals the saved value: not an override
    merge_train_options(parse(TestFlowRegressionOptions, '--id', 'f', '--checkpoints_dir', str(tmp_path),
                              '--dataset_name', 'demo'))
    assert 'command line' not in capsys.readouterr().out


@pytest.mark.parametrize('args, message', [
    (['--G_nf', '16'], "--G_nf 16 differs from the experiment's G_nf 8"),
    (['--image_size', '256', '256'], "--image_size [256, 256] differs from the experiment's image_size [128, 64]"),
    (['--which_model_G', 'unet'], "--which_model_G 'unet' differs from the experiment's which_model_G 'dual_unet'"),
])
def test_a_different_architecture_on_the_command_line_is_an_error(tmp_path, args, message):
    write_experiment(tmp_path, TrainPoseTransferOptions, '--id', 'p', '--dataset_name', 'demo', '--G_nf', '8')
    test_opt = parse(TestPoseTransferOptions, '--id', 'p', '--checkpoints_dir', str(tmp_path), *args)
    with pytest.raises(ValueError) as info:
        merge_train_options(test_opt)
    assert message in str(info.value)
    assert 'train_opt.json' in str(info.value)


def test_the_same_architecture_value_on_the_command_line_is_fine(tmp_path):
    write_experiment(tmp_path, TrainPoseTransferOptions, '--id', 'p', '--dataset_name', 'demo', '--G_nf', '8')
    opt = merge_train_options(parse(TestPoseTransferOptions, '--id', 'p', '--checkpoints_dir', str(tmp_path),
                                    '--G_nf', '8', '--image_size', '128', '64'))
    assert opt.G_nf == 8 and opt.image_size == [128, 64]


def test_an_explicit_dataset_brings_its_preset_paths(tmp_path, capsys):
    write_experiment(tmp_path, TrainPoseTransferOptions, '--id', 'p', '--dataset_name', 'deepfashion',
                     '--image_size', '128', '64')
    opt = merge_train_options(parse(TestPoseTransferOptions, '--id', 'p', '--checkpoints_dir', str(tmp_path),
                                    '--dataset_name', 'market', '--image_size', '128', '64'))
    assert opt.dataset_name == 'market'
    assert (opt.data_root, opt.img_dir, opt.fn_pose) == ('datasets/market1501/', 'Images/img/', 'Label/pose_label.pkl')
    assert "dataset_name='market' (saved 'deepfashion')" in capsys.readouterr().out


def test_options_not_given_keep_the_saved_values(tmp_path):
    write_experiment(tmp_path, TrainPoseTransferOptions, '--id', 'p', '--dataset_name', 'demo',
                     '--pretrained_flow_id', 'FlowReg_mine', '--data_root', '/d/')
    opt = merge_train_options(parse(TestPoseTransferOptions, '--id', 'p', '--checkpoints_dir', str(tmp_path)))
    assert (opt.pretrained_flow_id, opt.data_root, opt.dataset_name) == ('FlowReg_mine', '/d/', 'demo')
