"""scripts/convert_labels.py on the demo dataset and a hand-made attribute-label pickle."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import convert_labels
from data.data_loader import create_dataset
from metrics.attr_rec import load_attr_labels
from metrics.inception_score import load_pose_labels
from options.flow_regression_options import TrainFlowRegressionOptions
from options.pose_transfer_options import TrainPoseTransferOptions
from util.io import load_pickle, save_pickle


def _items(root: Path) -> list[dict]:
    common = ['--dataset_name', 'demo', '--data_root', str(root), '--gpu_ids', '-1', '--num_workers', '0']
    items = []
    for cls in (TrainFlowRegressionOptions, TrainPoseTransferOptions):
        ds = create_dataset(cls().parse(common, display=False, save=False), 'test')
        items += [ds[0], ds[len(ds) - 1]]
    return items


def test_demo_labels_convert_and_read_identically(demo_root: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / 'demo'
    shutil.copytree(demo_root, root)
    before = _items(root)
    assert convert_labels.main(['--data_root', str(root)]) == 0
    out = capsys.readouterr().out
    for name in ('pose_label', 'pose_label_adapt'):
        converted = root / 'Label' / f'{name}.json'
        assert f'wrote {converted}' in out
        pickled = load_pickle(root / 'Label' / f'{name}.pkl')
        np.testing.assert_array_equal(np.asarray(list(load_pose_labels(converted).values())),
                                      np.asarray(list(pickled.values()), dtype=np.float64))
    after = _items(root)
    assert 'reading ' in capsys.readouterr().out
    for a, b in zip(before, after):
        for key, value in a.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, b[key]), key
    # The pickles are not needed any more.
    for pkl in (root / 'Label').glob('*.pkl'):
        pkl.unlink()
    for a, b in zip(before, _items(root)):
        assert torch.equal(a['joint_c_1'], b['joint_c_1']) and torch.equal(a['joint_2'], b['joint_2'])


def test_attr_labels_and_reruns(tmp_path: Path, capsys, code_running_pickle) -> None:
    rng = np.random.default_rng(0)
    labels = {f'fashionWOMENid{k:08d}_1front': (rng.random(347) < 0.05).astype(np.int64) for k in range(20)}
    pkl = save_pickle({'label': labels, 'entry': [f'attr{a}' for a in range(347)]}, tmp_path / 'attr_label.pkl')
    expected = load_attr_labels(pkl)
    assert convert_labels.main([str(pkl)]) == 0
    assert f'wrote {tmp_path / "attr_label.npz"} (20 ids' in capsys.readouterr().out
    got = load_attr_labels(pkl)
    assert got[1] == expected[1] and list(got[0]) == list(expected[0])
    assert all(np.array_equal(got[0][k], v) and got[0][k].dtype == v.dtype for k, v in expected[0].items())
    assert convert_labels.main([str(pkl)]) == 0
    assert 'is up to date' in capsys.readouterr().out
    # A bad file is reported, the others are still converted, the exit status says so.
    evil, marker = code_running_pickle(tmp_path / 'evil.pkl', lambda e: {'x': e})
    pose = save_pickle({'a': [[1.0, 2.0]] * 18}, tmp_path / 'pose.pkl')
    assert convert_labels.main([str(evil), str(pose), str(tmp_path / 'missing.pkl')]) == 1
    captured = capsys.readouterr()
    assert 'evil.pkl' in captured.err and 'posix.system' in captured.err and 'missing.pkl' in captured.err
    assert (tmp_path / 'pose.json').is_file() and not marker.exists()
    with pytest.raises(SystemExit):
        convert_labels.main(['--data_root', str(tmp_path / 'nowhere')])
