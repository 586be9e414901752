"""Flow regression stage end to end: train, checkpoints, resume, test script."""
from __future__ import annotations

import copy
import json

import pytest
import torch

import test_flow_regression_module
import train_flow_regression_module
from util.weights import safe_torch_load

from tests.helpers import flow_args


def _adam_steps(ckpt: dict) -> set[int]:
    return {int(s['step']) for s in ckpt['model']['optimizers']['optim']['state'].values()}


def test_train_writes_complete_checkpoints_and_logs(demo_root, tmp_path, capsys):
    summary = train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'run', '--n_epoch', '2',
                                                          '--save_epoch_freq', '2', '--check_grad_freq', '3'))
    exp = tmp_path / 'FlowReg_run'
    for name in ('train_opt.json', 'order_line.txt', 'train_log.txt', 'latest_net_netF.pth', 'best_net_netF.pth',
                 '2_net_netF.pth', 'latest_checkpoint.pth', 'best_checkpoint.pth', '2_checkpoint.pth',
                 'vis/train_epoch1.jpg', 'vis/test_epoch2.jpg', 'vis/vis_item_list.txt'):
        assert (exp / name).is_file(), name
    assert not (exp / '1_net_netF.pth').exists()  # --save_epoch_freq 2
    log = (exp / 'train_log.txt').read_text()
    assert '[id: FlowReg_run  iter: 1  epoch: 1  lr: 0.0001]  EPE: ' in log
    assert 'grad_flow: ' in log  # step 3 ran the per-loss gradient check
    items = (exp / 'vis' / 'vis_item_list.txt').read_text().split()
    assert items == ['img_1', 'img_2', 'joint_1', 'joint_2', 'seg_1', 'seg_2', 'flow_tar', 'flow_out', 'vis_tar',
                     'vis_out', 'flow_final']
    ckpt = safe_torch_load(exp / 'latest_checkpoint.pth')
    assert ckpt['state']['epoch'] == 2 and ckpt['state']['step'] == 4 and ckpt['state']['epoch_done']
    assert ckpt['options']['id'] == 'FlowReg_run'
    assert _adam_steps(ckpt) == {4}
    assert summary['best_epoch'] in (1, 2) and summary['step'] == 4
    # Per-network file == the complete checkpoint's copy, in the original key layout.
    net_sd = safe_torch_load(exp / 'latest_net_netF.pth')
    assert net_sd.keys() == ckpt['model']['nets']['netF'].keys()
    assert 'pre_conv.0.0.weight' in net_sd and 'pred_vis.1.weight' in net_sd


def test_resume_continues_exactly_where_training_stopped(demo_root, tmp_path):
    # Reference: 2 epochs in one go, with a learning rate that halves every epoch.
    sched = ['--lr_decay', '1', '--lr_gamma', '0.5', '--n_vis', '0']
    train_flow_regression_module.main(flow_args(demo_root, tmp_path / 'a', 'ref', '--n_epoch', '2', *sched))
    # Same run, stopped after epoch 1 and resumed from 'latest'.
    train_flow_regression_module.main(flow_args(demo_root, tmp_path / 'b', 'res', '--n_epoch', '1', *sched))
    stopped = safe_torch_load(tmp_path / 'b' / 'FlowReg_res' / 'latest_checkpoint.pth')
    assert stopped['state']['epoch'] == 1 and stopped['state']['step'] == 2 and _adam_steps(stopped) == {2}
    train_flow_regression_module.main(flow_args(demo_root, tmp_path / 'b', 'res', '--n_epoch', '2', *sched,
                                                '--resume_train', '--resume_label', 'latest'))
    ref = safe_torch_load(tmp_path / 'a' / 'FlowReg_ref' / 'latest_checkpoint.pth')
    res = safe_torch_load(tmp_path / 'b' / 'FlowReg_res' / 'latest_checkpoint.pth')
    assert res['state'] == {**ref['state'], 'best_metric': res['state']['best_metric']}
    assert res['state']['epoch'] == 2 and res['state']['step'] == 4
    group = res['model']['optimizers']['optim']['param_groups'][0]
    assert group['lr'] == pytest.approx(5e-5) and group['initial_lr'] == pytest.approx(1e-4)
    assert _adam_steps(res) == {4}
    for key, value in ref['model']['nets']['netF'].items():
        assert torch.allclose(value.float(), res['model']['nets']['netF'][key].float(), atol=1e-6), key
    # The resumed log was appended to, not overwritten.
    log = (tmp_path / 'b' / 'FlowReg_res' / 'train_log.txt').read_text()
    assert 'epoch: 1  lr: 0.0001' in log and 'epoch: 2  lr: 5e-05' in log


def test_resume_from_original_layout_epoch_files(demo_root, tmp_path, monkeypatch):
    """The original resumed from ``<epoch>_net_netF.pth`` + ``<epoch>_optim_optim.pth``: the resumed run starts
    from those files' weights and optimizer state (not from our complete checkpoint lying next to them)."""
    from models.flow_regression_model import FlowRegressionModel
    args = flow_args(demo_root, tmp_path, 'orig', '--n_epoch', '1', '--n_vis', '0')
    train_flow_regression_module.main(args)
    exp = tmp_path / 'FlowReg_orig'
    assert not (exp / '1_checkpoint.pth').exists()  # --save_epoch_freq 5: no numbered snapshot of ours
    # Write the original's files from 'latest', changed so that what the resume reads can be told apart from it.
    latest = safe_torch_load(exp / 'latest_checkpoint.pth')
    net_file = {k: v + 0.25 if v.is_floating_point() else v for k, v in latest['model']['nets']['netF'].items()}
    optim_file = copy.deepcopy(latest['model']['optimizers']['optim'])
    for state in optim_file['state'].values():
        state['exp_avg'] = state['exp_avg'] * 2 + 1e-3
        state['exp_avg_sq'] = state['exp_avg_sq'] * 3 + 1e-6
    optim_file['param_groups'][0]['initial_lr'] = 3e-4
    torch.save(net_file, exp / '1_net_netF.pth', _use_new_zipfile_serialization=False)
    torch.save(optim_file, exp / '1_optim_optim.pth')

    real_step = FlowRegressionModel.optimize_parameters
    seen = []

    def capture_first(self, check_grad=False):
        if not seen:  # the state the resumed run starts from, before its first update
            seen.append((copy.deepcopy(self.netF.state_dict()), copy.deepcopy(self.optimizers['optim'].state_dict())))
        real_step(self, check_grad)

    monkeypatch.setattr(FlowRegressionModel, 'optimize_parameters', capture_first)
    summary = train_flow_regression_module.main(
        flow_args(demo_root, tmp_path, 'orig', '--n_epoch', '2', '--n_vis', '0', '--resume_train',
                  '--last_epoch', '1'))
    assert summary['epoch'] == 2 and summary['step'] == 4
    weights, optim = seen[0]
    assert weights.keys() == net_file.keys()
    for key, value in net_file.items():
        assert torch.equal(weights[key], value), key
    assert optim['state'].keys() == optim_file['state'].keys()
    for index, state in optim_file['state'].items():
        for name in ('step', 'exp_avg', 'exp_avg_sq'):
            assert torch.equal(optim['state'][index][name], state[name]), (index, name)
    # The rate of epoch 2 follows the file's initial rate (step schedule: no decay before epoch 9).
    assert optim['param_groups'][0]['initial_lr'] == 3e-4 and optim['param_groups'][0]['lr'] == 3e-4
    assert _adam_steps(safe_torch_load(exp / 'latest_checkpoint.pth')) == {4}


def test_resume_without_checkpoint_fails_clearly(demo_root, tmp_path):
    with pytest.raises(FileNotFoundError, match='latest_checkpoint.pth'):
        train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'none', '--resume_train',
                                                    '--resume_label', 'latest'))


def test_test_script_prints_epe_and_writes_grid(demo_root, flow_checkpoints, capsys):
    capsys.readouterr()
    result = test_flow_regression_module.main(['--id', 'tiny', '--which_epoch', 'best', '--gpu_ids', '-1',
                                               '--checkpoints_dir', str(flow_checkpoints), '--num_workers', '0',
                                               '--batch_size', '4', '--n_vis', '4'])
    out = capsys.readouterr().out
    assert '[model_id: FlowReg_tiny  epoch: best]  EPE: ' in out
    assert result['metrics']['EPE'] > 0 and result['n_pairs'] == 12
    results = flow_checkpoints / 'FlowReg_tiny' / 'test_test_best'
    assert sorted(p.name for p in results.iterdir()) == ['metrics.json', 'test_opt.json', 'vis.jpg',
                                                         'vis_item_list.txt']
    saved = json.loads((results / 'metrics.json').read_text())
    assert saved['metrics']['EPE'] == pytest.approx(result['metrics']['EPE'])
    assert result['json'] == str(results / 'metrics.json') and saved['visual_grid'] == str(results / 'vis.jpg')


def test_flow_test_results_are_fresh_or_refused(flow_checkpoints, tmp_path):
    args = ['--id', 'tiny', '--gpu_ids', '-1', '--checkpoints_dir', str(flow_checkpoints), '--num_workers', '0',
            '--batch_size', '4', '--n_vis', '0', '--results_dir', str(tmp_path)]
    test_flow_regression_module.main(args)
    assert sorted(p.name for p in (tmp_path / 'test_test_best').iterdir()) == ['metrics.json', 'test_opt.json']
    with pytest.raises(FileExistsError, match='--overwrite'):
        test_flow_regression_module.main(args + ['--n_vis', '4'])
    test_flow_regression_module.main(args + ['--n_vis', '4', '--overwrite'])
    assert (tmp_path / 'test_test_best' / 'vis.jpg').is_file()
    with pytest.raises(FileNotFoundError, match='did you mean FlowReg_tiny'):
        test_flow_regression_module.main(['--id', 'tinny', '--gpu_ids', '-1', '--checkpoints_dir',
                                          str(flow_checkpoints)])
    assert not (flow_checkpoints / 'FlowReg_tinny').exists()


def test_crash_mid_epoch_loses_only_the_work_since_the_last_save(demo_root, tmp_path, monkeypatch):
    from models.flow_regression_model import FlowRegressionModel
    real_step = FlowRegressionModel.optimize_parameters
    calls = {'n': 0}

    def crash_at_fourth(self, check_grad=False):
        calls['n'] += 1
        if calls['n'] == 4:
            raise KeyboardInterrupt  # killed during iteration 4 (epoch 2, second batch)
        real_step(self, check_grad)

    args = flow_args(demo_root, tmp_path, 'crash', '--n_epoch', '2', '--n_vis', '0', '--save_step_freq', '1')
    monkeypatch.setattr(FlowRegressionModel, 'optimize_parameters', crash_at_fourth)
    with pytest.raises(KeyboardInterrupt):
        train_flow_regression_module.main(args)
    monkeypatch.setattr(FlowRegressionModel, 'optimize_parameters', real_step)
    exp = tmp_path / 'FlowReg_crash'
    latest = safe_torch_load(exp / 'latest_checkpoint.pth')
    assert latest['state']['step'] == 3 and latest['state']['epoch'] == 2
    assert latest['state']['batches_done'] == 1 and not latest['state']['epoch_done']
    summary = train_flow_regression_module.main(args + ['--resume_train', '--resume_label', 'latest'])
    assert summary['epoch'] == 2 and summary['step'] == 4  # the remaining batch of epoch 2, not a whole epoch
    assert _adam_steps(safe_torch_load(exp / 'latest_checkpoint.pth')) == {4}


def test_test_script_uses_the_data_root_of_the_command_line(flow_checkpoints, tmp_path):
    """The saved train_opt.json used to override --data_root silently, so this tested on the saved data, exit 0."""
    missing = tmp_path / 'nonexistent'
    with pytest.raises(FileNotFoundError, match=f'dataset root {missing}'):
        test_flow_regression_module.main(['--id', 'tiny', '--gpu_ids', '-1', '--checkpoints_dir',
                                          str(flow_checkpoints), '--num_workers', '0', '--data_root', str(missing),
                                          '--results_dir', str(tmp_path / 'results')])


def test_test_script_refuses_a_different_architecture(flow_checkpoints):
    with pytest.raises(ValueError, match="--nf 16 differs from the experiment's nf 8"):
        test_flow_regression_module.main(['--id', 'tiny', '--gpu_ids', '-1', '--checkpoints_dir',
                                          str(flow_checkpoints), '--num_workers', '0', '--nf', '16'])
