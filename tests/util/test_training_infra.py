"""Learning-rate schedule, atomic checkpoint writes and the resumable epoch order."""
from argparse import Namespace

import pytest
import torch

from models.base_model import learning_rate_at
from util.weights import atomic_torch_save, safe_torch_load
from training.loop import EpochSampler


def _opt(**kw):
    base = dict(lr_policy='step', lr_decay=8, lr_gamma=0.5, n_epoch=30, n_epoch_decay=0)
    base.update(kw)
    return Namespace(**base)


def test_step_schedule_matches_the_original_table():
    # The original's step schedule with the flow defaults: 1e-4 for epochs 1-8, 5e-5 for 9-16, 2.5e-5 for 17-24,
    # 1.25e-5 for 25-30.
    opt = _opt()
    expected = {1: 1e-4, 8: 1e-4, 9: 5e-5, 16: 5e-5, 17: 2.5e-5, 24: 2.5e-5, 25: 1.25e-5, 30: 1.25e-5}
    for epoch, lr in expected.items():
        assert learning_rate_at(epoch, 1e-4, opt) == pytest.approx(lr, rel=1e-12), epoch
    # Pose defaults: step 100, gamma 0.1 -> constant for 30 epochs.
    assert {learning_rate_at(e, 2e-4, _opt(lr_decay=100, lr_gamma=0.1)) for e in range(1, 31)} == {2e-4}


@pytest.mark.filterwarnings('ignore:Detected call of')
def test_modern_steplr_would_decay_one_epoch_early():
    # The trap: a modern StepLR stepped at the start of each epoch already decays at epoch 8.
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


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / 'latest_checkpoint.pth'
    atomic_torch_save({'w': torch.arange(4.0)}, path)

    real_save = torch.save

    def crash_midway(obj, f, *args, **kwargs):
        f.write(b'partial garbage')  # some bytes reach the temporary file, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, 'save', crash_midway)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({'w': torch.zeros(4)}, path)
    monkeypatch.setattr(torch, 'save', real_save)

    assert torch.equal(safe_torch_load(path)['w'], torch.arange(4.0))
    assert [p.name for p in tmp_path.iterdir()] == ['latest_checkpoint.pth']  # no temporary file left behind


def test_truncated_checkpoint_error_names_the_file(tmp_path):
    path = tmp_path / 'best_checkpoint.pth'
    atomic_torch_save({'w': torch.randn(100)}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(RuntimeError, match='best_checkpoint.pth'):
        safe_torch_load(path)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        safe_torch_load(tmp_path / 'missing.pth')


def test_epoch_sampler_is_deterministic_and_resumable():
    full = list(EpochSampler(50, seed=3, epoch=2))
    assert sorted(full) == list(range(50))
    assert full == list(EpochSampler(50, seed=3, epoch=2))
    assert full != list(EpochSampler(50, seed=3, epoch=3))
    assert list(EpochSampler(50, seed=3, epoch=2, start=20)) == full[20:]
    assert len(EpochSampler(50, seed=3, epoch=2, start=20)) == 30
    assert list(EpochSampler(5, seed=0, epoch=1, shuffle=False)) == [0, 1, 2, 3, 4]
