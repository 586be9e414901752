"""Snapshots of a training run: the original's per-network files plus one complete checkpoint per label.

For every label (``latest``, ``best``, an epoch number) a snapshot writes

* ``<label>_net_<name>.pth`` for each network the model saves at this point (the authors' format, see
  :mod:`util.weights`), then
* ``<label>_checkpoint.pth``: one dict holding everything needed to resume: ``format``, the model's networks,
  optimizers and schedulers (``model.training_state()``), the :class:`TrainState`, the options and the torch RNG.

Every file is written atomically (temporary file, fsync, rename). The complete checkpoint is written last, so a
label whose complete checkpoint exists has all its network files. Resuming reads our complete checkpoint or, for
folders made by the original code, its ``<epoch>_net_<name>.pth`` / ``<epoch>_optim_<name>.pth`` files.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from models.base_model import BaseModel
from options.base_options import Options
from util.weights import (atomic_torch_save, checkpoint_path, cpu_state_dict, load_network, network_path,
                          optimizer_path, safe_torch_load)

CHECKPOINT_FORMAT = 'intrinsic-flow-checkpoint/1'


@dataclass
class TrainState:
    """Where training stands; saved in every complete checkpoint.

    ``epoch`` is the 1-based epoch in progress (or just finished when ``epoch_done``); ``batches_done`` counts the
    iterations of that epoch already run, so a checkpoint taken mid-epoch resumes at the next batch.
    """
    epoch: int = 0
    step: int = 0
    batches_done: int = 0
    epoch_done: bool = True
    best_metric: float | None = None
    best_epoch: int | None = None


def save_snapshot(model: BaseModel, opt: Options, label: str | int, state: TrainState) -> None:
    """Per-network files (original format) first, then the complete checkpoint (ours), each atomic."""
    for name, net in model.networks_to_save().items():
        atomic_torch_save(cpu_state_dict(net), network_path(opt.expr_dir, label, name))
    atomic_torch_save({
        'format': CHECKPOINT_FORMAT,
        'model': model.training_state(),
        'state': dataclasses.asdict(state),
        'options': opt.to_dict(),
        'torch_rng': torch.get_rng_state(),
    }, checkpoint_path(opt.expr_dir, label))


def load_snapshot(model: BaseModel, opt: Options, label: str | int, steps_per_epoch: int) -> TrainState:
    """Resume from ``label``: our complete checkpoint, or an original-format folder (net + optim files)."""
    ckpt_file = checkpoint_path(opt.expr_dir, label)
    if ckpt_file.is_file():
        ckpt = safe_torch_load(ckpt_file)
        if ckpt.get('format') != CHECKPOINT_FORMAT:
            raise RuntimeError(f'{ckpt_file} is not a complete intrinsic-flow checkpoint '
                               f'(format {ckpt.get("format")!r}, expected {CHECKPOINT_FORMAT!r})')
        model.load_training_state(ckpt['model'])
        torch.set_rng_state(ckpt['torch_rng'])
        return TrainState(**ckpt['state'])
    # The original's layout: <epoch>_net_<name>.pth and <epoch>_optim_<name>.pth, integer epochs only.
    if not str(label).isdigit():
        raise FileNotFoundError(f'cannot resume: {ckpt_file} not found (the original format only has integer '
                                f'epoch labels; pass --resume_label <epoch> or check --id)')
    for name, net in model.nets.items():
        path = network_path(opt.expr_dir, label, name)
        # The original writes netD (and optim_D) only once the GAN term is active; before that it has no file.
        if name == 'netD' and not path.is_file():
            continue
        load_network(net, path)
    for name, optim in model.optimizers.items():
        path = optimizer_path(opt.expr_dir, label, name)
        if path.is_file():
            optim.load_state_dict(safe_torch_load(path, 'optimizer'))
        elif name != 'optim_D':  # the original writes optim_D only once the GAN term is active
            raise FileNotFoundError(f'cannot resume: optimizer file {path} not found')
    epoch = int(label)
    return TrainState(epoch=epoch, step=steps_per_epoch * epoch, batches_done=0, epoch_done=True)
