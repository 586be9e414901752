"""A non-finite loss or gradient during training: ``--nan_policy stop`` (default) ends training with a message naming
the step and the loss term, ``--nan_policy skip`` skips that update; a non-finite model or metric never becomes
``best``."""
from __future__ import annotations

import copy
import math

import pytest
import torch

import training.loop
from models.flow_regression_model import FlowRegressionModel
from options.flow_regression_options import TrainFlowRegressionOptions
from tests.helpers import flow_args
from training.loop import TrainSpec, improves, train
from util.weights import safe_torch_load

SPEC = TrainSpec(val_split='test', select_metric='EPE', select_mode='min')


def run(demo_root, ckpt, exp_id, *args):
    opt = TrainFlowRegressionOptions().parse(flow_args(demo_root, ckpt, exp_id, '--n_vis', '0', *args), display=False)
    return train(opt, SPEC)


@pytest.fixture
def poisoned_step(monkeypatch):
    """Make training step ``n`` (counted over training calls of ``compute_loss``, not validation) go non-finite:
    ``poison(n, 'loss')`` turns the visibility term into NaN, ``poison(n, 'grad')`` keeps every loss finite but
    makes one parameter's gradient infinite. Records the network (weights and batch-norm statistics) and the
    optimizer state before that step and before the next one."""
    real_loss = FlowRegressionModel.compute_loss
    real_step = FlowRegressionModel.optimize_parameters
    seen = {'train_calls': 0, 'target': None, 'kind': None}

    def compute_loss(self):
        weighted = real_loss(self)
        if not torch.is_grad_enabled():
            return weighted  # validation
        seen['train_calls'] += 1
        if seen['train_calls'] == seen['target']:
            if seen['kind'] == 'loss':
                self.loss['loss_vis'] = self.loss['loss_vis'] * math.nan
                weighted['vis'] = weighted['vis'] * math.nan
            else:
                param = next(self.netF.parameters())
                handle = []
                handle.append(param.register_hook(lambda g: (handle[0].remove(), torch.full_like(g, math.inf))[1]))
        return weighted

    def optimize_parameters(self, check_grad=False):
        step = seen['train_calls'] + 1
        if step in (seen['target'], seen['target'] + 1):  # before the poisoned step and before the next one
            seen['before' if step == seen['target'] else 'after'] = (
                copy.deepcopy(self.netF.state_dict()), copy.deepcopy(self.optimizers['optim'].state_dict()))
        real_step(self, check_grad)

    monkeypatch.setattr(FlowRegressionModel, 'compute_loss', compute_loss)
    monkeypatch.setattr(FlowRegressionModel, 'optimize_parameters', optimize_parameters)

    def poison(n, kind):
        seen['target'], seen['kind'] = n, kind
        return seen

    return poison


def all_finite(state_dict):
    return all(torch.isfinite(t).all() for t in state_dict.values() if t.is_floating_point())


def test_stop_names_the_step_and_the_loss_term(poisoned_step, demo_root, tmp_path):
    poisoned_step(3, 'loss')  # epoch 2, first iteration
    with pytest.raises(FloatingPointError) as info:
        run(demo_root, tmp_path, 'nanstop', '--n_epoch', '2')
    msg = str(info.value)
    assert 'step 3' in msg and 'epoch 2' in msg and 'loss_vis' in msg and 'nan' in msg
    assert '--nan_policy skip' in msg
    # Nothing was saved after the failure: 'latest' and 'best' are the finite end of epoch 1.
    exp = tmp_path / 'FlowReg_nanstop'
    for label in ('latest', 'best'):
        ckpt = safe_torch_load(exp / f'{label}_checkpoint.pth')
        assert ckpt['state']['step'] == 2
        assert all_finite(ckpt['model']['nets']['netF'])
    assert 'step 3' in (exp / 'train_log.txt').read_text()


def test_stop_on_a_non_finite_gradient_with_finite_losses(poisoned_step, demo_root, tmp_path):
    poisoned_step(2, 'grad')
    with pytest.raises(FloatingPointError, match=r'step 2 .*gradient'):
        run(demo_root, tmp_path, 'gradstop', '--n_epoch', '1')


@pytest.mark.parametrize('kind', ['loss', 'grad'])
def test_skip_skips_the_update_counts_it_and_continues(kind, poisoned_step, demo_root, tmp_path):
    seen = poisoned_step(3, kind)
    summary = run(demo_root, tmp_path, f'skip{kind}', '--n_epoch', '2', '--nan_policy', 'skip')
    assert summary['step'] == 4
    # The poisoned step changed neither the weights, nor the batch-norm statistics, nor the optimizer's state.
    (net_before, optim_before), (net_after, optim_after) = seen['before'], seen['after']
    assert all(torch.equal(net_before[k], net_after[k]) for k in net_before)
    assert [s['step'] for s in optim_before['state'].values()] == [s['step'] for s in optim_after['state'].values()]
    exp = tmp_path / f'FlowReg_skip{kind}'
    latest = safe_torch_load(exp / 'latest_checkpoint.pth')
    assert latest['state']['skipped_steps'] == 1
    assert all_finite(latest['model']['nets']['netF'])
    log = (exp / 'train_log.txt').read_text()
    assert 'step 3' in log and 'skipped' in log and ('loss_vis' in log if kind == 'loss' else 'gradient' in log)


def test_a_non_finite_metric_is_never_the_best():
    assert not improves(math.nan, None, 'min') and not improves(math.nan, 1.0, 'max')
    assert not improves(math.inf, None, 'max') and not improves(-math.inf, None, 'min')
    assert improves(0.5, None, 'min')


def test_a_nan_validation_epoch_does_not_become_best(monkeypatch, demo_root, tmp_path):
    epes = iter([math.nan, 0.7, 0.9])
    monkeypatch.setattr(training.loop, 'evaluate', lambda model, loader, n_batches, desc: {'EPE': next(epes)})
    summary = run(demo_root, tmp_path, 'nanval', '--n_epoch', '3', '--max_steps_per_epoch', '1')
    assert (summary['best_epoch'], summary['best_metric']) == (2, 0.7)
    assert 'EPE is nan' in (tmp_path / 'FlowReg_nanval' / 'train_log.txt').read_text()

