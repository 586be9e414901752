"""The training loop: the resumable epoch order, and the learning-rate policies as the loop applies them."""
import pytest

import training.loop
from models.flow_regression_model import FlowRegressionModel
from options.flow_regression_options import TrainFlowRegressionOptions
from tests.helpers import flow_args
from training.loop import EpochSampler, TrainSpec, train


def test_epoch_sampler_is_deterministic_and_resumable():
    full = list(EpochSampler(50, seed=3, epoch=2))
    assert sorted(full) == list(range(50))
    assert full == list(EpochSampler(50, seed=3, epoch=2))
    assert full != list(EpochSampler(50, seed=3, epoch=3))
    assert list(EpochSampler(50, seed=3, epoch=2, start=20)) == full[20:]
    assert len(EpochSampler(50, seed=3, epoch=2, start=20)) == 30
    assert list(EpochSampler(5, seed=0, epoch=1, shuffle=False)) == [0, 1, 2, 3, 4]


@pytest.fixture
def scripted_run(monkeypatch):
    """Train the tiny flow module one step per epoch with a scripted validation EPE; record the learning rate of
    every step. Returns ``run(demo_root, ckpt, exp_id, epe_per_epoch, *args) -> [lr of step 1, 2, ...]``."""
    lrs: list[float] = []
    real_step = FlowRegressionModel.optimize_parameters

    def recording_step(self, check_grad=False):
        lrs.append(self.current_learning_rate())
        real_step(self, check_grad)

    monkeypatch.setattr(FlowRegressionModel, 'optimize_parameters', recording_step)

    def run(demo_root, ckpt, exp_id, epe_per_epoch, *args):
        epes = iter(epe_per_epoch)
        monkeypatch.setattr(training.loop, 'evaluate', lambda model, loader, n_batches, desc: {'EPE': next(epes)})
        # The later '--max_steps_per_epoch 1' / '--n_vis 0' override flow_args' values (argparse keeps the last).
        opt = TrainFlowRegressionOptions().parse(
            flow_args(demo_root, ckpt, exp_id, '--max_steps_per_epoch', '1', '--n_vis', '0', *args), display=False)
        start = len(lrs)
        train(opt, TrainSpec(val_split='test', select_metric='EPE', select_mode='min'))
        return lrs[start:]

    return run


# ReduceLROnPlateau(factor 0.2, threshold 0.01 relative, patience 5), fed with the validation EPE (lower is better):
# the rate drops after the 6th validation in a row without a 1 % improvement over the best.
@pytest.mark.parametrize('epe, expected', [
    ([1.0] * 8, [1e-4] * 7 + [2e-5]),
    ([1.0, 0.999, 0.998, 0.997, 0.996, 0.995, 0.994, 0.993], [1e-4] * 7 + [2e-5]),  # < 1 %: not an improvement
    ([1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5], [1e-4] * 8),  # epoch 6 improves: the patience starts again
], ids=['constant', 'below_threshold', 'improving'])
def test_plateau_policy_drops_the_rate_after_patience_epochs(epe, expected, scripted_run, demo_root, tmp_path):
    lrs = scripted_run(demo_root, tmp_path, 'plateau', epe, '--lr_policy', 'plateau', '--n_epoch', '8')
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_plateau_state_survives_a_resume(scripted_run, demo_root, tmp_path):
    first = scripted_run(demo_root, tmp_path, 'plateau', [1.0] * 4, '--lr_policy', 'plateau', '--n_epoch', '4')
    rest = scripted_run(demo_root, tmp_path, 'plateau', [1.0] * 4, '--lr_policy', 'plateau', '--n_epoch', '8',
                        '--resume_train', '--resume_label', 'latest')
    # The count of epochs without improvement comes back from the checkpoint: the drop still comes at epoch 8.
    assert first + rest == pytest.approx([1e-4] * 7 + [2e-5], rel=1e-12)


def test_lambda_policy_decays_linearly_after_n_epoch(scripted_run, demo_root, tmp_path):
    lrs = scripted_run(demo_root, tmp_path, 'lambda', [1.0] * 5, '--lr_policy', 'lambda', '--n_epoch', '2',
                       '--n_epoch_decay', '3')
    assert lrs == pytest.approx([1e-4, 1e-4, 0.75e-4, 0.5e-4, 0.25e-4], rel=1e-12)
