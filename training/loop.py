"""The training loop shared by both stages, written as the paragraphs it runs.

``train(opt, TrainSpec(...))`` loads the data, builds the model, resumes, trains epoch by epoch, evaluates,
visualises and saves. Everything that differs between the flow stage and the pose-transfer stage is in the model
(the :class:`models.base_model.BaseModel` contract) and in :class:`TrainSpec` (validation split, selection metric).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import Sampler
from tqdm import tqdm

from data.data_loader import create_dataset, make_dataloader
from models import create_model
from models.base_model import NonFiniteLossError
from options.base_options import Options
from training.checkpoint import TrainState, load_snapshot, save_snapshot
from training.evaluation import evaluate, save_sample_grid
from training.logger import ProgressClock, SilentLogger, TrainLogger
from training.run_state import RunStart, begin_run
from util import distributed


@dataclass
class TrainSpec:
    """What a training script chooses: the validation split and how the best checkpoint is selected."""
    val_split: str
    select_metric: str  # 'EPE' (flow, lower is better) or 'SSIM' (pose transfer, higher is better)
    select_mode: str    # 'min' or 'max'


def improves(value: float, best: float | None, mode: str) -> bool:
    """Whether ``value`` beats ``best`` (None: nothing yet) under ``mode`` (``'min'`` or ``'max'``); a NaN or
    infinite value never does."""
    if mode not in ('min', 'max'):
        raise ValueError(f"unknown selection mode {mode!r}; valid: 'min', 'max'")
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best if mode == 'min' else value > best


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


def _copy_buffers(model) -> dict[str, dict[str, torch.Tensor]]:
    """Copies of every network's buffers (batch-norm running statistics), taken before a step that may be skipped."""
    return {name: {k: b.detach().clone() for k, b in net.named_buffers()} for name, net in model.nets.items()}


def _restore_buffers(model, buffers: dict[str, dict[str, torch.Tensor]]) -> None:
    with torch.no_grad():
        for name, net in model.nets.items():
            for k, b in net.named_buffers():
                b.copy_(buffers[name][k])


def _data_parallel(model, opt: Options, ctx: distributed.DistContext):
    """The DDP routing of the model's training steps and a snapshot writer that only rank 0 runs."""
    dp = distributed.DataParallelModel(model, ctx, sync_bn=bool(getattr(opt, 'sync_bn', 0)))

    def save_snapshot_main(*args) -> None:
        if ctx.is_main:
            save_snapshot(*args)
    return dp, save_snapshot_main


def train(opt: Options, spec: TrainSpec) -> dict[str, Any]:
    """Train ``opt.dataset_type``'s model; returns a summary (best metric/epoch, last validation metrics)."""
    # Data parallelism (torchrun): join the process group; only rank 0 writes files (util.distributed).
    ctx = distributed.setup_distributed(opt)
    # Fresh start or resume, options checked against the checkpoint; rank 0 records the run.
    run = begin_run(opt, write=ctx.is_main)
    try:
        distributed.barrier(ctx)  # the other ranks read the folder only after rank 0 swept and recorded it
        return _train(run, spec, ctx)
    finally:
        run.close()


def _train(run: RunStart, spec: TrainSpec, ctx: distributed.DistContext) -> dict[str, Any]:
    opt = run.opt
    seed_everything(opt.seed)
    expr_dir = opt.expr_dir

    # Load training set. The training order is owned by EpochSampler so that resuming is exact.
    train_set = create_dataset(opt, 'train')
    if len(train_set) < opt.batch_size:
        raise ValueError(f'training split has {len(train_set)} pairs, fewer than --batch_size {opt.batch_size}')
    steps_per_epoch = len(train_set) // opt.batch_size
    if opt.max_steps_per_epoch > 0:
        steps_per_epoch = min(steps_per_epoch, opt.max_steps_per_epoch)
    val_set = create_dataset(opt, spec.val_split)
    # Validation during training drops the incomplete last batch (batch statistics of a tiny batch are noise).
    val_loader = make_dataloader(val_set, opt.batch_size, num_workers=opt.num_workers, drop_last=True)

    # Construct networks.
    model = create_model(opt)

    # Resume.
    state = TrainState()
    if run.resume_label is not None:
        label = run.resume_label
        state = load_snapshot(model, opt, label, steps_per_epoch)
        print(f'resumed from {expr_dir}/{label}: epoch {state.epoch} ({"done" if state.epoch_done else "in progress"}),'
              f' step {state.step}')
    dp, save_snapshot_main = _data_parallel(model, opt, ctx)
    logger = (TrainLogger(expr_dir, tensorboard=bool(opt.tensorboard), resume=run.resume_label is not None)
              if ctx.is_main else SilentLogger())
    for line in run.log_lines:
        logger.message(line)
    n_epochs = opt.n_epoch + opt.n_epoch_decay
    clock = ProgressClock(first_step=state.step, last_step=n_epochs * steps_per_epoch)
    first_epoch = state.epoch + 1 if state.epoch_done else state.epoch
    last_metrics: dict[str, float] = {}

    # Train.
    for epoch in range(first_epoch, n_epochs + 1):
        model.update_learning_rate(epoch)
        model.on_epoch_start(epoch)
        # Augmentations draw from np.random: seed it per epoch (loader workers get seeds derived from the loader's
        # generator) so that an epoch sees the same augmentations whether or not training was resumed before it.
        # Under torchrun every process draws from its own seed (rank 0: the single-process seed).
        epoch_seed = distributed.rank_seed(opt.seed * 7919 + epoch, ctx.rank)
        np.random.seed(epoch_seed % 2**32)
        start = state.batches_done if (epoch == state.epoch and not state.epoch_done) else 0
        sampler = EpochSampler(len(train_set), opt.seed, epoch, start=start * opt.batch_size)
        if ctx.enabled:  # this process's slice of every global batch
            sampler = distributed.RankSlice(sampler, opt.batch_size, ctx)
        loader = make_dataloader(train_set, opt.batch_size // ctx.world_size, num_workers=opt.num_workers,
                                 drop_last=True, sampler=sampler, seed=epoch_seed,
                                 pin_memory=opt.device.type == 'cuda')
        state.epoch, state.epoch_done, state.batches_done = epoch, False, start
        bar = tqdm(total=steps_per_epoch, initial=start, desc=f'epoch {epoch}/{n_epochs}',
                   disable=None if ctx.is_main else True)
        for data in loader:
            if state.batches_done >= steps_per_epoch:
                break
            state.step += 1
            state.batches_done += 1
            model.train_mode()
            model.set_input(data)
            check = opt.check_grad_freq > 0 and state.step % opt.check_grad_freq == 0
            buffers = _copy_buffers(model) if opt.nan_policy == 'skip' else None
            try:
                with dp.step():
                    model.optimize_parameters(check_grad=check)
            except NonFiniteLossError as err:
                where = f'step {state.step} (epoch {epoch}, iteration {state.batches_done}/{steps_per_epoch})'
                if opt.nan_policy == 'stop':
                    message = (f'{where}: {err}. Training stopped (--nan_policy stop); nothing was saved after '
                               f"this step, the labels saved before ('latest', 'best', ...) are kept and finite. "
                               f'Continue from \'latest\' with --resume_train --nan_policy skip to skip such '
                               f'updates, or start a new --id with a lower --lr')
                    logger.message(message)
                    logger.close()
                    raise NonFiniteLossError(message) from None
                _restore_buffers(model, buffers)  # batch-norm statistics of the skipped batch are dropped too
                state.skipped_steps += 1
                logger.message(f'{where}: {err}: skipped this update (--nan_policy skip; {state.skipped_steps} '
                               f'skipped so far)')
            bar.update(1)
            if state.step % opt.display_freq == 0:
                info = {'id': opt.id, 'iter': state.step, 'epoch': epoch, 'lr': f'{model.current_learning_rate():g}'}
                logger.log(info, model.get_current_errors(), step=state.step, tag='train',
                           progress=clock.fields(state.step) if bar.disable else None)
            if opt.save_step_freq > 0 and state.step % opt.save_step_freq == 0:
                save_snapshot_main(model, opt, 'latest', state)
            run.stop_if_requested(model, state)
        bar.close()
        state.epoch_done = True

        # Evaluate metrics and keep the best checkpoint.
        if epoch % opt.test_epoch_freq == 0:
            model.eval_mode()
            # Rank 0 validates the whole global batch (numbers equal a single-process validation); all ranks
            # receive the metrics, so the best-checkpoint and plateau decisions agree.
            if ctx.is_main:
                last_metrics = evaluate(model, val_loader, opt.val_batches, desc=f'validate {spec.val_split}')
            last_metrics = distributed.broadcast_object(last_metrics, ctx)
            logger.log({'id': opt.id, 'epoch': epoch, 'split': spec.val_split}, last_metrics, step=state.step,
                       tag='val')
            metric = last_metrics[spec.select_metric]
            if not math.isfinite(metric):
                logger.message(f'validation {spec.select_metric} is {metric}: epoch {epoch} cannot become "best"')
            elif improves(metric, state.best_metric, spec.select_mode):
                state.best_metric, state.best_epoch = metric, epoch
                save_snapshot_main(model, opt, 'best', state)
                logger.message(f'best {spec.select_metric} {metric:.4f} at epoch {epoch}: saved label "best"')
            model.step_plateau(metric)

        # Visualise samples from the training and the validation split.
        if epoch % opt.vis_epoch_freq == 0 and opt.n_vis > 0 and ctx.is_main:
            model.eval_mode()
            # Training samples: a seeded random choice per epoch; validation samples: the first of the split.
            train_vis_loader = make_dataloader(train_set, opt.batch_size, num_workers=opt.num_workers, shuffle=True,
                                               drop_last=True, seed=opt.seed + epoch)
            for tag, vis_loader in (('train', train_vis_loader), ('test', val_loader)):
                path = save_sample_grid(model, vis_loader, opt.n_vis, expr_dir / 'vis' / f'{tag}_epoch{epoch}.jpg')
                if path is not None:
                    logger.image(f'vis/{tag}', path, state.step)

        # Save snapshots.
        if epoch % opt.save_epoch_freq == 0:
            save_snapshot_main(model, opt, epoch, state)
        save_snapshot_main(model, opt, 'latest', state)
        run.stop_if_requested(model, state, saved=True)

    if state.best_epoch is not None:
        logger.message(f'best {spec.select_metric}: {state.best_metric:.4f} at epoch {state.best_epoch}')
    logger.close()
    distributed.barrier(ctx)
    distributed.destroy_process_group()
    return {'model': model, 'best_metric': state.best_metric, 'best_epoch': state.best_epoch,
            'last_metrics': last_metrics, 'step': state.step, 'epoch': state.epoch,
            'learning_rate': model.current_learning_rate()}
