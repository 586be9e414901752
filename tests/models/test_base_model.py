"""The shared model bookkeeping: learning-rate schedules."""
from argparse import Namespace

import pytest
import torch

from models.base_model import learning_rate_at, step_learning_rate


def _opt(**kw):
    base = dict(lr_policy='step', lr_decay=8, lr_gamma=0.5, n_epoch=30, n_epoch_decay=0)
    base.update(kw)
    return Namespace(**base)


def test_step_schedule_matches_the_original_table():
    # The original's flow schedule (step 8, gamma 0.5, 30 epochs): 1e-4 for epochs 1-8, 5e-5 for 9-16, 2.5e-5 for
    # 17-24, 1.25e-5 for 25-30.
    opt = _opt()
    expected = {1: 1e-4, 8: 1e-4, 9: 5e-5, 16: 5e-5, 17: 2.5e-5, 24: 2.5e-5, 25: 1.25e-5, 30: 1.25e-5}
    for epoch, lr in expected.items():
        assert learning_rate_at(epoch, 1e-4, opt) == pytest.approx(lr, rel=1e-12), epoch
    # Pose defaults: step 100, gamma 0.1 -> constant for 30 epochs.
    assert {learning_rate_at(e, 2e-4, _opt(lr_decay=100, lr_gamma=0.1)) for e in range(1, 31)} == {2e-4}


@pytest.mark.filterwarnings('ignore:Detected call of')
def test_modern_steplr_would_decay_one_epoch_early():
    # The trap of porting the schedule: a modern StepLR stepped at the start of each epoch already decays at epoch 8
    # (the original, on PyTorch 0.4, decayed after epoch 8).
    p = torch.nn.Parameter(torch.zeros(1))
    optim = torch.optim.SGD([p], lr=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(optim, step_size=8, gamma=0.5)
    lrs = []
    for _ in range(1, 10):
        sched.step()
        lrs.append(optim.param_groups[0]['lr'])
    assert lrs[7] == pytest.approx(5e-5)  # epoch 8 with StepLR
    assert learning_rate_at(8, 1e-4, _opt()) == pytest.approx(1e-4)  # ours keeps the original's rate


def test_lambda_schedule_decays_linearly_after_n_epoch():
    opt = _opt(lr_policy='lambda', n_epoch=3, n_epoch_decay=4)
    lrs = [learning_rate_at(e, 1.0, opt) for e in range(1, 8)]
    assert lrs == pytest.approx([1, 1, 1, 0.8, 0.6, 0.4, 0.2])


def test_unknown_policy_and_epoch_zero_raise():
    with pytest.raises(ValueError, match='lr_policy'):
        learning_rate_at(1, 1.0, _opt(lr_policy='cosine'))
    with pytest.raises(ValueError, match='1-based'):
        learning_rate_at(0, 1.0, _opt())


def test_step_learning_rate():
    # 1-based epochs: the rate drops after every lr_decay epochs.
    assert [step_learning_rate(1e-4, e, 10, 0.1) for e in (1, 10, 11, 26)] == pytest.approx([1e-4, 1e-4, 1e-5, 1e-6])
    with pytest.raises(ValueError, match='1-based'):
        step_learning_rate(1e-4, 0, 10, 0.1)
