"""scripts/evaluate.py on the output of a tiny trained demo model (test script -> evaluate under both protocols ->
combined table), and scripts/reproduce_released.sh's check of the released models."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import evaluate
import test_pose_transfer
import train_pose_transfer_model
from training.released_models import RELEASED_MODELS, missing_for_model

from tests.helpers import common_args
from tests.metrics.weights_helpers import alexnet_weights, fidelity_inception_weights, torchvision_inception_weights

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def demo_test_json(demo_root, flow_checkpoints) -> Path:
    """A tiny pose-transfer model (one epoch of two steps) tested on the demo split with --save_output."""
    ckpt = flow_checkpoints
    train_pose_transfer_model.main(['--id', 'evaldemo', *common_args(demo_root, ckpt), '--pretrained_flow_id',
                                    'FlowReg_tiny', '--G_nf', '8', '--G_max_nf', '16', '--D_nf', '8', '--batch_size',
                                    '2', '--max_steps_per_epoch', '2', '--val_batches', '1', '--n_vis', '0',
                                    '--loss_weight_content', '0', '--n_epoch', '1'])
    result = test_pose_transfer.main(['--id', 'evaldemo', '--which_epoch', 'best', '--gpu_ids', '-1',
                                      '--checkpoints_dir', str(ckpt), '--num_workers', '0', '--save_output',
                                      '--masked', '--n_vis', '0'])
    return Path(result['json'])


@pytest.mark.slow
def test_evaluate_cli_on_the_demo_model_output(demo_test_json, tmp_path_factory, tmp_path, capsys):
    test = json.loads(demo_test_json.read_text())
    images = Path(test['output_dir'])
    results = images.parent  # the test results folder test_test_best/ (its images/ are what evaluate.py scores)
    assert (results.name, images.name) == ('test_test_best', 'images') and len(list(images.glob('*.jpg'))) == 12
    weights = ['--inception_weights', str(fidelity_inception_weights(tmp_path_factory)),
               '--fid_weights', str(torchvision_inception_weights(tmp_path_factory)),
               '--alexnet_weights', str(alexnet_weights(tmp_path_factory)), '--no_progress']
    reports = {}
    for protocol in ('intrinsic_flow', 'gfla'):
        out = tmp_path / f'{protocol}.json'
        report = evaluate.main(['--test_json', str(demo_test_json), '--protocol', protocol, '--out', str(out),
                                *weights])
        saved = json.loads(out.read_text())
        assert saved['metrics'].keys() == report['metrics'].keys() and saved['images']['n_used'] == 12
        assert saved['label'] == 'PoseTransfer_evaldemo' and saved['dataset_name'] == 'demo'
        assert saved['skipped_metrics'] == {}
        reports[protocol] = saved
    # The test pass's own SSIM compared the model output before JPEG; from the saved JPEGs the value moves a little.
    assert abs(reports['intrinsic_flow']['metrics']['ssim']['value'] - test['metrics']['SSIM']) < 0.02
    assert set(reports['gfla']['metrics']) == {'fid', 'lpips', 'mask_lpips', 'ssim', 'ssim_gauss', 'psnr'}

    capsys.readouterr()
    table = evaluate.main(['--combine', str(tmp_path / 'intrinsic_flow.json'), str(tmp_path / 'gfla.json'),
                           '--md_out', str(tmp_path / 'table.md')])
    lines = (tmp_path / 'table.md').read_text().splitlines()
    assert table.splitlines() == lines and len(lines) == 4
    assert lines[0].startswith('| model | protocol | images | SSIM | SSIM (Gaussian) | masked SSIM | PSNR | LPIPS |')
    assert lines[2].startswith('| PoseTransfer_evaldemo | intrinsic_flow | 12 |')

    # Default report path: next to the results folder, named after it and the protocol.
    report = evaluate.main(['--results_dir', str(results), '--dataset_name', 'demo', '--data_root',
                            test['options']['data_root'], '--metrics', 'ssim,psnr', '--no_progress'])
    assert Path(report['json']) == results.parent / 'eval_test_test_best_intrinsic_flow.json'


def test_evaluate_cli_errors_and_listing(tmp_path, capsys):
    text = evaluate.main(['--list_protocols'])
    assert 'intrinsic_flow:' in text and 'gfla:' in text and 'gfla_256x176:' in text
    assert 'ssim: window=51' in text
    (tmp_path / 'empty').mkdir()
    with pytest.raises(evaluate.EvaluationError, match='no images'):
        evaluate.main(['--results_dir', str(tmp_path / 'empty'), '--dataset_name', 'demo'])
    with pytest.raises(evaluate.EvaluationError, match='pass --results_dir'):
        evaluate.main(['--protocol', 'gfla'])
    (tmp_path / 'no_output.json').write_text(json.dumps({'output_dir': None}))
    with pytest.raises(evaluate.EvaluationError, match='without --save_output'):
        evaluate.main(['--test_json', str(tmp_path / 'no_output.json')])
    with pytest.raises(SystemExit):
        evaluate.main(['--results_dir', str(tmp_path), '--protocol', 'nope'])


def test_released_models_check_lists_what_is_missing(tmp_path):
    missing = missing_for_model('0.5', tmp_path / 'checkpoints', root=tmp_path)
    assert missing == [f"{tmp_path / 'checkpoints' / 'PoseTransfer_0.5'}/ (pretrained model PoseTransfer_0.5: "
                       f"bash scripts/download_models.sh)"]
    assert len(RELEASED_MODELS) == 10
    env = {**os.environ, 'PYTHON': sys.executable}
    proc = subprocess.run(['bash', str(REPO / 'scripts' / 'reproduce_released.sh'), '--checkpoints_dir',
                           str(tmp_path / 'checkpoints'), '--models', '0.5 m0.5', '--dry_run'],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 1
    assert 'PoseTransfer_0.5 (deepfashion, full): missing' in proc.stdout
    assert 'PoseTransfer_m0.5 (market, full): missing' in proc.stdout
    assert 'nothing was run' in proc.stderr


def test_released_models_check_names_each_missing_file(tmp_path):
    """A model folder without its networks, flow module and dataset: every missing item with its command."""
    exp = tmp_path / 'checkpoints' / 'PoseTransfer_m0.5'
    exp.mkdir(parents=True)
    (exp / 'train_opt.json').write_text(json.dumps({'G_pix_warp': 1, 'dataset_name': 'market',
                                                    'pretrained_flow_id': 'FlowReg_m0.1'}))
    missing = missing_for_model('m0.5', tmp_path / 'checkpoints', root=tmp_path)
    assert [m.split(' (')[0] for m in missing] == [
        str(exp / 'best_net_netG.pth'), str(exp / 'best_net_netPW.pth'),
        f"{tmp_path / 'checkpoints' / 'FlowReg_m0.1'}", str(tmp_path / 'datasets' / 'market1501')]
    assert missing[0].endswith('bash scripts/download_models.sh)')
    assert missing[-1].endswith('bash scripts/download_market1501.sh)')
