"""The training loop shared by both stages, written as the paragraphs it runs.

``train(opt, TrainSpec(...))`` loads the data, builds the model, resumes, trains epoch by epoch, evaluates,
visualises and saves. Everything that differs between the flow stage and the pose-transfer stage is in the model
(:mod:`models.base_model` contract) and in :class:`TrainSpec` (validation split, selection metric).
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from util.checkpoint import (atomic_torch_save, checkpoint_path, cpu_state_dict, network_path, optimizer_path,
                             safe_torch_load)
from util.logger import TrainLogger
from util.visualizer import save_visual_grid

CHECKPOINT_FORMAT = 'intrinsic-flow-checkpoint/1'


@dataclass
class TrainSpec:
    """What a training script chooses: the validation split and how the best checkpoint is selected."""
    val_split: str
    select_metric: str  # 'EPE' (flow, lower is better) or 'SSIM' (pose transfer, higher is better)
    select_mode: str    # 'min' or 'max'


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class EpochSampler(Sampler[int]):
    """A shuffled order that depends only on ``(seed, epoch)``, optionally starting part-way through.

    This is what makes a mid-epoch resume exact: the resumed run sees the same order and skips the batches already
    done without loading them.
    """

    def __init__(self, n: int, seed: int, epoch: int, shuffle: bool = True, start: int = 0):
        self.n, self.seed, self.epoch, self.shuffle, self.start = n, seed, epoch, shuffle, start

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start:])

    def __len__(self) -> int:
        return max(self.n - self.start, 0)


def make_loader(dataset, opt, *, shuffle: bool, drop_last: bool, sampler=None, seed: int | None = None) -> DataLoader:
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(dataset, batch_size=opt.batch_size, shuffle=shuffle if sampler is None else False,
                      sampler=sampler, num_workers=opt.num_workers, drop_last=drop_last, pin_memory=False,
                      generator=generator, persistent_workers=False)


# ------------------------------------------------------------------------------------------------ evaluation
def evaluate(model, loader, max_batches: int = 0, desc: str = 'eval', **test_kwargs) -> dict[str, float]:
    """Mean over batches of the per-batch errors (each batch weighted equally, as the original)."""
    sums: dict[str, float] = {}
    n = 0
    for i, data in enumerate(tqdm(loader, desc=desc, leave=False, disable=None)):
        if max_batches and i >= max_batches:
            break
        model.set_input(data)
        model.test(compute_loss=True, **test_kwargs)
        for k, v in model.get_current_errors().items():
            sums[k] = sums.get(k, 0.0) + float(v)
        n += 1
    if n == 0:
        raise RuntimeError('evaluation ran on no batch: the split is smaller than one batch '
                           '(lower --batch_size or use a larger split)')
    return {k: v / n for k, v in sums.items()}


def collect_visuals(model, loader, n_batches: int) -> dict[str, tuple[torch.Tensor, str]]:
    """Run ``n_batches`` batches through ``model.test()`` and concatenate their visual panels (on CPU)."""
    rows: dict[str, tuple[list[torch.Tensor], str]] = {}
    for i, data in enumerate(loader):
        if i >= n_batches:
            break
        model.set_input(data)
        model.test(compute_loss=False)
        for name, (tensor, kind) in model.get_current_visuals().items():
            rows.setdefault(name, ([], kind))[0].append(tensor.detach().cpu())
    return {name: (torch.cat(ts), kind) for name, (ts, kind) in rows.items()}


def save_visuals(model, loader, n_vis: int, batch_size: int, path: Path) -> Path | None:
    n_batches = min(n_vis // batch_size, len(loader)) if n_vis > 0 else 0
    if n_batches == 0:
        return None
    save_visual_grid(path, collect_visuals(model, loader, n_batches))
    return path


# ----------------------------------------------------------------------------------------------- checkpoints
def options_to_dict(opt) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, torch.device) else v) for k, v in vars(opt).items()}


def save_snapshot(model, opt, label: str | int, state: TrainState) -> None:
    """Per-network files (original format) first, then the complete checkpoint (ours), each atomic."""
    expr_dir = Path(opt.checkpoints_dir) / opt.id
    for name, net in model.networks_to_save().items():
        atomic_torch_save(cpu_state_dict(net), network_path(expr_dir, label, name))
    atomic_torch_save({
        'format': CHECKPOINT_FORMAT,
        'model': model.training_state(),
        'state': dataclasses.asdict(state),
        'options': options_to_dict(opt),
        'torch_rng': torch.get_rng_state(),
    }, checkpoint_path(expr_dir, label))


def load_snapshot(model, opt, label: str | int, steps_per_epoch: int) -> TrainState:
    """Resume from ``label``: our complete checkpoint, or an original-format folder (net + optim files)."""
    expr_dir = Path(opt.checkpoints_dir) / opt.id
    ckpt_file = checkpoint_path(expr_dir, label)
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
    from models.networks import load_network
    for name, net in model.networks_to_save().items():
        load_network(net, network_path(expr_dir, label, name))
    for name, optim in model.optimizers.items():
        path = optimizer_path(expr_dir, label, name)
        if path.is_file():
            optim.load_state_dict(safe_torch_load(path, 'optimizer'))
        elif name != 'optim_D':  # optim_D only exists once the GAN term is active (SPEC §14.1)
            raise FileNotFoundError(f'cannot resume: optimizer file {path} not found')
    epoch = int(label)
    return TrainState(epoch=epoch, step=steps_per_epoch * epoch, batches_done=0, epoch_done=True)


# ------------------------------------------------------------------------------------------------- training
def train(opt, spec: TrainSpec) -> dict[str, Any]:
    """Train ``opt.dataset_type``'s model; returns a summary (best metric/epoch, last validation metrics)."""
    from data.data_loader import create_dataloader, create_dataset
    from models.factory import create_model

    seed_everything(opt.seed)
    expr_dir = Path(opt.checkpoints_dir) / opt.id

    # Load training set. The training order is owned by EpochSampler so that resuming is exact.
    train_set = create_dataset(opt, 'train')
    if len(train_set) < opt.batch_size:
        raise ValueError(f'training split has {len(train_set)} pairs, fewer than --batch_size {opt.batch_size}')
    steps_per_epoch = len(train_set) // opt.batch_size
    if opt.max_steps_per_epoch > 0:
        steps_per_epoch = min(steps_per_epoch, opt.max_steps_per_epoch)
    val_loader = create_dataloader(opt, spec.val_split)

    # Construct networks.
    model = create_model(opt)

    # Resume.
    state = TrainState()
    if opt.resume_train:
        label = opt.resume_label if opt.resume_label else opt.last_epoch
        state = load_snapshot(model, opt, label, steps_per_epoch)
        print(f'resumed from {expr_dir}/{label}: epoch {state.epoch} ({"done" if state.epoch_done else "in progress"}),'
              f' step {state.step}')
    logger = TrainLogger(expr_dir, tensorboard=bool(opt.tensorboard), resume=bool(opt.resume_train))
    n_epochs = opt.n_epoch + opt.n_epoch_decay
    first_epoch = state.epoch + 1 if state.epoch_done else state.epoch
    last_metrics: dict[str, float] = {}

    # Train.
    for epoch in range(first_epoch, n_epochs + 1):
        model.update_learning_rate(epoch)
        model.on_epoch_start(epoch)
        # Augmentations draw from np.random: seed it per epoch (loader workers get seeds derived from the loader's
        # generator) so that an epoch sees the same augmentations whether or not training was resumed before it.
        np.random.seed((opt.seed * 7919 + epoch) % 2**32)
        start = state.batches_done if (epoch == state.epoch and not state.epoch_done) else 0
        sampler = EpochSampler(len(train_set), opt.seed, epoch, start=start * opt.batch_size)
        loader = make_loader(train_set, opt, shuffle=False, drop_last=True, sampler=sampler,
                             seed=opt.seed * 7919 + epoch)
        state.epoch, state.epoch_done, state.batches_done = epoch, False, start
        bar = tqdm(total=steps_per_epoch, initial=start, desc=f'epoch {epoch}/{n_epochs}', disable=None)
        for data in loader:
            if state.batches_done >= steps_per_epoch:
                break
            state.step += 1
            state.batches_done += 1
            model.train_mode()
            model.set_input(data)
            check = opt.check_grad_freq > 0 and state.step % opt.check_grad_freq == 0
            model.optimize_parameters(check_grad=check)
            bar.update(1)
            if state.step % opt.display_freq == 0:
                info = {'id': opt.id, 'iter': state.step, 'epoch': epoch, 'lr': f'{model.current_learning_rate():g}'}
                logger.log(info, model.get_current_errors(), step=state.step, tag='train')
            if opt.save_step_freq > 0 and state.step % opt.save_step_freq == 0:
                save_snapshot(model, opt, 'latest', state)
        bar.close()
        state.epoch_done = True

        # Evaluate metrics and keep the best checkpoint.
        if epoch % opt.test_epoch_freq == 0:
            model.eval_mode()
            last_metrics = evaluate(model, val_loader, opt.val_batches, desc=f'validate {spec.val_split}')
            logger.log({'id': opt.id, 'epoch': epoch, 'split': spec.val_split}, last_metrics, step=state.step,
                       tag='val')
            metric = last_metrics[spec.select_metric]
            better = (state.best_metric is None
                      or (metric < state.best_metric if spec.select_mode == 'min' else metric > state.best_metric))
            if better:
                state.best_metric, state.best_epoch = metric, epoch
                save_snapshot(model, opt, 'best', state)
                logger.message(f'best {spec.select_metric} {metric:.4f} at epoch {epoch}: saved label "best"')
            model.step_plateau(metric)

        # Visualise samples from the training and the validation split.
        if epoch % opt.vis_epoch_freq == 0 and opt.n_vis > 0:
            model.eval_mode()
            vis_dir = expr_dir / 'vis'
            train_vis_loader = make_loader(train_set, opt, shuffle=True, drop_last=True, seed=opt.seed + epoch)
            for tag, vis_loader in (('train', train_vis_loader), ('test', val_loader)):
                path = save_visuals(model, vis_loader, opt.n_vis, opt.batch_size, vis_dir / f'{tag}_epoch{epoch}.jpg')
                if path is not None:
                    logger.image(f'vis/{tag}', path, state.step)

        # Save snapshots.
        if epoch % opt.save_epoch_freq == 0:
            save_snapshot(model, opt, epoch, state)
        save_snapshot(model, opt, 'latest', state)

    if state.best_epoch is not None:
        logger.message(f'best {spec.select_metric}: {state.best_metric:.4f} at epoch {state.best_epoch}')
    logger.close()
    return {'best_metric': state.best_metric, 'best_epoch': state.best_epoch, 'last_metrics': last_metrics,
            'step': state.step, 'epoch': state.epoch, 'learning_rate': model.current_learning_rate()}
