"""The fashion classifiers' training loop (FashionIS / AttrRec networks)."""
import numpy as np
import pytest
import torch

from metrics.fashion_classifiers import build_classifier
from training.classifier import train_classifier


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
