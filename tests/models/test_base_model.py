"""The shared model bookkeeping: learning-rate schedules and the per-loss gradient check."""
from argparse import Namespace

import pytest
import torch
from torch import nn

from models.base_model import BaseModel, learning_rate_at, step_learning_rate


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


def bare_model(tmp_path, **opt) -> BaseModel:
    """A BaseModel with two Adam optimizers (``optim`` at 1e-3, ``optim_D`` at 1e-4) over two scalars."""
    model = BaseModel(Namespace(device='cpu', is_train=True, expr_dir=tmp_path, **opt))
    model.optimizers = {'optim': model._make_optimizer([nn.Parameter(torch.zeros(1))], 1e-3, (0.5, 0.999), 0),
                        'optim_D': model._make_optimizer([nn.Parameter(torch.zeros(1))], 1e-4, (0.5, 0.999), 0)}
    return model


def rates(model: BaseModel) -> dict[str, float]:
    return {name: optim.param_groups[0]['lr'] for name, optim in model.optimizers.items()}


def test_update_learning_rate_applies_each_optimizers_own_base_rate(tmp_path):
    model = bare_model(tmp_path, lr_policy='lambda', n_epoch=2, n_epoch_decay=3)
    assert model.update_learning_rate(1) == pytest.approx(1e-3)
    assert rates(model) == pytest.approx({'optim': 1e-3, 'optim_D': 1e-4})
    assert model.update_learning_rate(4) == pytest.approx(0.5e-3)
    assert rates(model) == pytest.approx({'optim': 0.5e-3, 'optim_D': 0.5e-4})
    # The base rates live in the optimizers (so a resume keeps them) and are not changed by the schedule.
    assert {n: o.param_groups[0]['initial_lr'] for n, o in model.optimizers.items()} == pytest.approx(
        {'optim': 1e-3, 'optim_D': 1e-4})


@pytest.mark.parametrize('mode, worse, better', [('min', 1.0, 0.5), ('max', 0.5, 0.9)])
def test_plateau_schedule_steps_on_the_metric_in_the_models_direction(mode, worse, better, tmp_path):
    model = bare_model(tmp_path, lr_policy='plateau')
    model.setup_plateau(mode)
    assert set(model.plateau) == {'optim', 'optim_D'}
    model.update_learning_rate(50)  # the epoch schedule leaves plateau-driven rates alone
    assert rates(model) == pytest.approx({'optim': 1e-3, 'optim_D': 1e-4})
    model.step_plateau(worse)
    for _ in range(5):  # patience: five validations without improvement are tolerated
        model.step_plateau(worse)
    model.step_plateau(better)  # an improvement in the model's direction resets the count
    for _ in range(5):
        model.step_plateau(better)
    assert rates(model) == pytest.approx({'optim': 1e-3, 'optim_D': 1e-4})
    model.step_plateau(better)  # the sixth in a row without improvement: factor 0.2
    assert rates(model) == pytest.approx({'optim': 2e-4, 'optim_D': 2e-5})
    # The schedule's state is part of the training state (the resume test of the loop relies on it).
    assert model.training_state()['plateau']['optim']['num_bad_epochs'] == 0


def test_plateau_is_off_under_other_policies(tmp_path):
    model = bare_model(tmp_path, lr_policy='step')
    model.setup_plateau('min')
    assert model.plateau == {}


# --- per-loss gradient norms ------------------------------------------------------------------------------------
class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 2, 1)
        self.frozen = nn.Conv2d(2, 2, 1)
        self.frozen.requires_grad_(False)

    def forward(self, x):
        return self.frozen(self.conv2(torch.relu(self.conv1(x))))


def weighted_losses(net: nn.Module, other: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Three weighted losses; the first reaches only ``conv2.bias`` (the other parameters have no gradient yet when
    the second loss is back-propagated); the last also reaches a network that is not checked."""
    out = net(x)
    return {'bias': 3.0 * net.conv2.bias.pow(2).sum(),
            'l1': 2.0 * out.abs().mean(),
            'l2': 0.5 * (other(out) ** 2).mean()}


def test_grad_check_norms_equal_independent_per_loss_gradients(tmp_path):
    torch.manual_seed(0)
    net, other = TinyNet(), nn.Conv2d(2, 2, 1)
    x = torch.randn(2, 3, 8, 8)
    params = [p for p in net.parameters() if p.requires_grad]
    assert len(params) == 4  # conv1/conv2 weight and bias; the frozen layer is not counted

    # Reference: each weighted loss differentiated on its own, sum over parameters of the L2 norm of its gradient.
    losses = weighted_losses(net, other, x)
    expected = {}
    for name, loss in losses.items():
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        expected[f'grad_{name}'] = sum(float(g.norm(2)) for g in grads if g is not None)
    assert expected['grad_bias'] == pytest.approx(float((6.0 * net.conv2.bias.detach()).norm(2)), rel=1e-6)

    norms = bare_model(tmp_path).backward_with_grad_check(weighted_losses(net, other, x), net)
    assert list(norms) == ['grad_bias', 'grad_l1', 'grad_l2']
    assert norms == pytest.approx(expected, rel=1e-5)
    assert len(set(norms.values())) == 3  # three different numbers, not one total repeated
    accumulated = [p.grad.clone() for p in params]
    assert net.frozen.weight.grad is None

    # The accumulated gradient equals that of one combined backward: the optimisation step is unaffected.
    net.zero_grad(set_to_none=True)
    sum(weighted_losses(net, other, x).values()).backward()
    for p, acc in zip(params, accumulated):
        assert torch.allclose(acc, p.grad, rtol=1e-5, atol=1e-8)
