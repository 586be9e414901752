"""The fashion classifiers' training loop (FashionIS / AttrRec networks)."""
import numpy as np
import pytest
import torch

from metrics.fashion_classifiers import build_classifier
from training.classifier import _training_loader, train_classifier
from util.distributed import SINGLE, DistContext


@pytest.mark.parametrize('task', ['single_label', 'multi_label'])
def test_train_classifier_two_steps(task):
    torch.manual_seed(0)
    model = build_classifier('attr', 5)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    y = torch.tensor([0, 3, 1, 4]) if task == 'single_label' else (torch.rand(4, 5) < 0.5).float()
    loader = [(x[:2], y[:2]), (x[2:], y[2:]), (x[:2], y[:2])]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ends, logs = [], []
    losses = train_classifier(model, loader, task=task, n_epoch=1, lr=1e-3, max_steps_per_epoch=2,
                              display_freq=1, epoch_end=ends.append, log=logs.append)
    assert len(losses) == 1 and np.isfinite(losses[0]) and ends == [0]
    assert sum('step' in line for line in logs) == 2  # stopped after 2 of the 3 batches
    changed = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert 'fc.weight' in changed and 'conv1.weight' in changed
    with pytest.raises(ValueError, match="valid: \\['adam', 'sgd'\\]"):
        train_classifier(model, loader, optim='rmsprop')


def _sample_ids(loader) -> list[list[int]]:
    return [batch[0].tolist() for batch in loader]


def test_process_slices_make_up_the_single_process_batches():
    """Under torchrun, process r's batch k is the r-th half of the one-process run's batch k, in every epoch."""
    dataset = torch.utils.data.TensorDataset(torch.arange(10))
    single = _training_loader(dataset, 4, 0, 7, SINGLE)
    ranks = [_training_loader(dataset, 4, 0, 7, DistContext(rank=r, world_size=2)) for r in (0, 1)]
    for _ in range(2):  # two epochs: a new order each, the same in every process
        expected = _sample_ids(single)
        halves = [_sample_ids(loader) for loader in ranks]
        assert len(expected) == 2 and [a + b for a, b in zip(*halves)] == expected
    assert _sample_ids(single) != expected  # the third epoch's order differs


def test_distributed_loader_refuses_fewer_images_than_the_global_batch():
    dataset = torch.utils.data.TensorDataset(torch.arange(3))
    with pytest.raises(ValueError, match='3 training images are fewer than the global --batch_size 4'):
        _training_loader(dataset, 4, 0, 0, DistContext(rank=0, world_size=2))
    assert _sample_ids(_training_loader(dataset, 4, 0, 0, SINGLE)) != []  # one process keeps the short batch
