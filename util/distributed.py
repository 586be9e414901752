"""Data-parallel training with ``torch.distributed`` (launched by ``torchrun``): the process group, the rank's
share of every global batch, and the wrapping of the trained networks.

A run is distributed exactly when ``torchrun`` set ``RANK`` and ``WORLD_SIZE`` (``WORLD_SIZE > 1``); otherwise every
function here is the identity of the single-process path. Backends: NCCL on CUDA (one GPU per process,
``cuda:<LOCAL_RANK>``), gloo on the CPU.

Semantics kept from the original's ``DataParallel``:

* ``--batch_size`` is the global batch; each process takes ``batch_size / world_size`` samples. Global batch ``k``
  of an epoch is the same set of samples as in a single-process run, and process ``r`` takes its ``r``-th
  contiguous slice (:class:`RankSlice`), so a replica's BatchNorm normalises the same samples as the original's
  replica ``r``.
* BatchNorm buffers: DistributedDataParallel broadcasts rank 0's buffers at every forward; rank 0's running
  statistics are the saved ones (DataParallel kept replica 0's).
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` processes, ``local_rank`` on its node."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes logs, grids, checkpoints and TensorBoard events."""
        return self.rank == 0


SINGLE = DistContext()


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == '':
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f'environment variable {name}={value!r} is not an integer (set by torchrun)') from None


def context_from_env() -> DistContext:
    """The :class:`DistContext` that ``torchrun`` describes in ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (no group is
    created here). Unset or ``WORLD_SIZE=1``: the single process."""
    rank, world, local = _env_int('RANK'), _env_int('WORLD_SIZE'), _env_int('LOCAL_RANK')
    if rank is None and world is None:
        return SINGLE
    if rank is None or world is None:
        raise ValueError('RANK and WORLD_SIZE must be set together (launch with torchrun, which sets both)')
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f'invalid RANK={rank} / WORLD_SIZE={world}')
    return DistContext(rank=rank, world_size=world, local_rank=rank if local is None else local)


def is_main_process() -> bool:
    """Whether this process may write files (rank 0, or no torchrun)."""
    return context_from_env().is_main


def rank_seed(seed: int, rank: int) -> int:
    """Per-process seed derived from ``--seed``: rank 0 keeps ``seed`` (the single-process stream)."""
    return seed if rank == 0 else seed + 1_000_003 * rank


def per_rank_batch(batch_size: int, ctx: DistContext) -> int:
    """``batch_size`` (global, as the original's DataParallel) split over the processes; must divide."""
    if batch_size % ctx.world_size:
        raise ValueError(f'--batch_size {batch_size} is the global batch and must be divisible by the number of '
                         f'processes ({ctx.world_size}); pick a multiple of {ctx.world_size}')
    return batch_size // ctx.world_size


def torchrun_hint(script: str = 'scripts/train_pose_transfer_model.py', n: int = 2) -> str:
    return (f'torchrun --standalone --nproc_per_node {n} {script} --gpu_ids 0 ... '
            f'(each process uses GPU LOCAL_RANK; --batch_size stays the global batch)')


def check_multi_gpu_launch(gpu_ids: list[int], ctx: DistContext) -> None:
    """``--gpu_ids 0,1`` in a single process would train on one GPU only: raise saying how to launch instead."""
    if len(gpu_ids) > 1 and not ctx.enabled:
        raise ValueError(f'--gpu_ids {",".join(map(str, gpu_ids))}: one process trains on one GPU. For data-parallel '
                         f'training on {len(gpu_ids)} GPUs launch one process per GPU with torchrun, e.g.\n  '
                         f'CUDA_VISIBLE_DEVICES={",".join(map(str, gpu_ids))} '
                         f'{torchrun_hint(n=len(gpu_ids))}\nor pass a single GPU id.')


def init_process_group(ctx: DistContext, device: torch.device) -> torch.device:
    """Join the process group (NCCL for CUDA, gloo for the CPU); returns this process's device."""
    if not ctx.enabled:
        return device
    if device.type == 'cuda':
        if ctx.local_rank >= torch.cuda.device_count():
            raise ValueError(f'LOCAL_RANK {ctx.local_rank} but only {torch.cuda.device_count()} CUDA device(s) are '
                             f'visible: use --nproc_per_node <= the number of GPUs')
        device = torch.device(f'cuda:{ctx.local_rank}')
        torch.cuda.set_device(device)
        backend = 'nccl'
    else:
        backend = 'gloo'
    if not dist.is_initialized():
        kwargs = {'device_id': device} if backend == 'nccl' else {}
        dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world_size,
                                timeout=datetime.timedelta(minutes=30), **kwargs)
    return device


def destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def mean_over_ranks(value: float, ctx: DistContext) -> float:
    """The mean of ``value`` over the processes (a float on every rank); single process: ``value``."""
    if not ctx.enabled:
        return value
    total = torch.tensor([float(value)], dtype=torch.float64)
    if dist.get_backend() == 'nccl':
        total = total.cuda()
    dist.all_reduce(total)
    return float(total.item()) / ctx.world_size


def broadcast_object(obj, ctx: DistContext):
    """Rank 0's ``obj`` (picklable, from our own processes only) on every rank."""
    if not ctx.enabled:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class RankSlice(Sampler[int]):
    """This rank's share of each global batch of ``base`` (any index sampler, e.g. the resumable epoch order).

    ``base`` yields global batches of ``global_batch`` consecutive indices; rank ``r`` takes indices
    ``[r * b, (r + 1) * b)`` of each, ``b = global_batch / world_size``. An incomplete last global batch is dropped
    (training drops it anyway). ``set_epoch`` is forwarded to ``base`` when it has one.
    """

    def __init__(self, base: Sampler[int], global_batch: int, ctx: DistContext):
        self.base, self.global_batch, self.ctx = base, global_batch, ctx
        self.local_batch = per_rank_batch(global_batch, ctx)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.base, 'set_epoch'):
            self.base.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        lo = self.ctx.rank * self.local_batch
        batch: list[int] = []
        for index in self.base:
            batch.append(index)
            if len(batch) == self.global_batch:
                yield from batch[lo:lo + self.local_batch]
                batch = []

    def __len__(self) -> int:
        return (len(self.base) // self.global_batch) * self.local_batch


def wrap_data_parallel(net: nn.Module, ctx: DistContext, device: torch.device, sync_bn: bool = False) -> nn.Module:
    """``net`` in DistributedDataParallel (parameters broadcast from rank 0 now, gradients averaged in backward).

    sync_bn: BatchNorm layers become SyncBatchNorm (statistics over the global batch; CUDA only). The conversion
    keeps the parameter objects, so optimizers built on ``net`` stay valid; ``net`` itself is modified in place.
    """
    if sync_bn:
        if device.type != 'cuda':
            raise ValueError('--sync_bn 1 needs CUDA (SyncBatchNorm has no CPU implementation); use --sync_bn 0')
        _convert_sync_bn_in_place(net)
    kwargs = {'device_ids': [device.index]} if device.type == 'cuda' else {}
    return nn.parallel.DistributedDataParallel(net, **kwargs)


def _convert_sync_bn_in_place(net: nn.Module) -> None:
    for name, child in list(net.named_children()):
        converted = nn.SyncBatchNorm.convert_sync_batchnorm(child)
        if converted is not child:
            setattr(net, name, converted)


def trained_networks(nets: dict[str, nn.Module], optimizers: dict) -> dict[str, nn.Module]:
    """The networks of ``nets`` that an optimizer of ``optimizers`` updates (frozen networks are left out)."""
    owned = {id(p) for o in optimizers.values() for g in o.param_groups for p in g['params']}
    return {name: net for name, net in nets.items() if any(id(p) in owned for p in net.parameters())}


def setup_distributed(opt) -> DistContext:
    """Called once at the start of training: reads torchrun's environment, refuses ``--gpu_ids 0,1`` without
    torchrun, checks ``--sync_bn``, joins the process group and sets ``opt.device``/``opt.gpu_ids`` to this
    process's device. Single process: only the checks."""
    ctx = context_from_env()
    check_multi_gpu_launch(list(opt.gpu_ids), ctx)
    if getattr(opt, 'sync_bn', 0):
        if opt.device.type != 'cuda':
            raise ValueError('--sync_bn 1 needs CUDA (SyncBatchNorm has no CPU implementation); use --sync_bn 0')
        if not ctx.enabled:
            raise ValueError('--sync_bn 1 synchronises BatchNorm across torchrun processes; a single process has '
                             f'nothing to synchronise. Launch with {torchrun_hint()} or use --sync_bn 0')
    per_rank_batch(opt.batch_size, ctx)
    if ctx.enabled:
        opt.device = init_process_group(ctx, opt.device)
        opt.gpu_ids = [opt.device.index] if opt.device.type == 'cuda' else []
    return ctx


class DataParallelModel:
    """Routes a model's training step through DistributedDataParallel wrappers of its trained networks.

    Each trained network (``trained_networks``) is wrapped once, separately (generator, pixel-warping network,
    discriminator); frozen networks (the flow network of the pose stage, a frozen generator) are not. Inside
    :meth:`step` the model attribute of each wrapped network (``model.netG`` ...) is the wrapper and
    ``model.data_parallel`` is True; outside it, evaluation, visualisation and checkpoints see the plain modules.
    Single process: :meth:`step` changes nothing.
    """

    def __init__(self, model, ctx: DistContext, sync_bn: bool = False):
        self.model, self.ctx = model, ctx
        self.wrappers: dict[str, nn.Module] = {}
        if ctx.enabled:
            for name, net in trained_networks(model.nets, model.optimizers).items():
                self.wrappers[name] = wrap_data_parallel(net, ctx, model.device, sync_bn=sync_bn)

    def step(self):
        return _Routing(self.model, self.wrappers)


class _Routing:
    def __init__(self, model, wrappers: dict[str, nn.Module]):
        self.model, self.wrappers, self.plain = model, wrappers, {}

    def __enter__(self):
        if self.wrappers:
            self.plain = {name: getattr(self.model, name) for name in self.wrappers}
            for name, wrapper in self.wrappers.items():
                setattr(self.model, name, wrapper)
            self.model.data_parallel = True
        return self.model

    def __exit__(self, *exc) -> None:
        for name, net in self.plain.items():
            setattr(self.model, name, net)
        if self.wrappers:
            self.model.data_parallel = False
