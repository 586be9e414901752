"""scripts/check_dataset.py and the training scripts' --check_data 1: all data problems reported before training."""
from __future__ import annotations

import shutil

import pytest

import check_dataset
import train_flow_regression_module
import train_pose_transfer_model
from data.dataset_check import DatasetCheckError
from tests.helpers import PLANTED_CATEGORIES, common_args, flow_args, plant_defects


@pytest.fixture
def broken_demo(demo_root, tmp_path):
    root = tmp_path / 'broken'
    shutil.copytree(demo_root, root)
    return root, plant_defects(root)


def test_script_passes_a_clean_dataset(demo_root, capsys):
    assert check_dataset.main(['--dataset_name', 'demo', '--data_root', str(demo_root), '--num_workers', '0']) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith('dataset OK')
    assert '2 split file(s)' in out  # both stages' split files of the preset


def test_script_reports_every_problem_and_exits_1(broken_demo, capsys):
    root, planted = broken_demo
    argv = ['--dataset_name', 'demo', '--data_root', str(root), '--num_workers', '2', '--max_examples', '1']
    assert check_dataset.main(argv) == 1
    out = capsys.readouterr().out
    for name, (category, is_error) in PLANTED_CATEGORIES.items():
        assert f'{"ERROR" if is_error else "warning"}: {category}: 1\n    ' in out, name
        assert planted[name] in out, name
    assert out.rstrip().endswith('10 error(s) in 10 categories, 2 warning(s)')
    # --strict_seg 1: the out-of-range segmentation labels become an error as well
    assert check_dataset.main([*argv, '--strict_seg', '1']) == 1
    assert capsys.readouterr().out.rstrip().endswith('11 error(s) in 11 categories, 1 warning(s)')


def test_script_names_the_download_command_for_a_missing_folder(tmp_path, capsys):
    assert check_dataset.main(['--dataset_name', 'market', '--data_root', str(tmp_path / 'market')]) == 1
    assert 'bash scripts/download_market1501.sh' in capsys.readouterr().out


def test_training_with_check_data_stops_before_writing_anything(broken_demo, tmp_path, capsys):
    root, planted = broken_demo
    ckpt = tmp_path / 'ckpt'
    with pytest.raises(DatasetCheckError, match=rf'{root}.*8 error\(s\)'):
        train_flow_regression_module.main(flow_args(root, ckpt, 'chk', '--n_epoch', '1', '--check_data', '1'))
    out = capsys.readouterr().out
    assert planted['NaN correspondence'] in out and planted['empty image'] in out
    # the pose stage checks its own split and pose file (pair_split.json with pose_label.pkl: the pose defects too)
    pose_argv = ['--id', 'chk', *common_args(root, ckpt), '--pretrained_flow_id', 'FlowReg_none', '--check_data', '1']
    with pytest.raises(DatasetCheckError, match=r'10 error\(s\)'):
        train_pose_transfer_model.main(pose_argv)
    assert planted['NaN keypoints'] in capsys.readouterr().out
    assert not ckpt.exists()  # no experiment folder, options file or checkpoint was written


@pytest.mark.slow
def test_training_with_check_data_on_clean_data_trains(demo_root, tmp_path, capsys):
    summary = train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'chk', '--n_epoch', '1',
                                                          '--n_vis', '0', '--check_data', '1'))
    assert 'dataset OK' in capsys.readouterr().out
    assert (tmp_path / 'FlowReg_chk' / 'latest_checkpoint.pth').is_file(), summary
