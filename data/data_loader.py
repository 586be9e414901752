"""The dataset factory and the one DataLoader factory of the project."""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from data.base_dataset import BaseDataset
from data.flow_dataset import FlowDataset
from data.pose_transfer_dataset import PoseTransferDataset
from util.memory import retain_freed_memory

DATASET_TYPES: dict[str, type[BaseDataset]] = {'flow': FlowDataset, 'pose_transfer': PoseTransferDataset}


def create_dataset(opt: Any, split: str) -> BaseDataset:
    """The dataset class selected by ``opt.dataset_type`` over split ``split`` of ``opt.data_root``.

    ``opt.strict_seg`` is passed on explicitly (segmentation labels outside the classes: error or warning).
    """
    try:
        cls = DATASET_TYPES[opt.dataset_type]
    except KeyError:
        raise ValueError(f'unknown dataset_type {opt.dataset_type!r}; valid types are '
                         f'{sorted(DATASET_TYPES)}') from None
    return cls(opt, split, strict_seg=bool(opt.strict_seg))


def _loader_worker_init(worker_id: int) -> None:
    retain_freed_memory()  # items are large arrays: keep freed memory instead of faulting it in again per sample


def make_dataloader(dataset: Dataset, batch_size: int, *, num_workers: int = 0, shuffle: bool = False,
                    drop_last: bool = False, sampler: Sampler | None = None, seed: int | None = None,
                    pin_memory: bool = False) -> DataLoader:
    """Every DataLoader of the project (training, validation, test, visual grids) is made here.

    Args:
        shuffle: random order from a generator seeded with ``seed`` (ignored when ``sampler`` gives the order).
        drop_last: drop the incomplete last batch (training, and validation during training, as the original);
            test passes keep it.
        sampler: an explicit order (the training loop's resumable epoch order).
        seed: seeds the loader's generator (shuffle order and the worker seeds), so a run is reproducible.
        pin_memory: page-locked batches for faster host-to-GPU copies (training on CUDA).

    Worker processes keep freed memory for the next item (``util.memory.retain_freed_memory``); the values are
    unchanged.
    """
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    # Not persistent workers: the training loop builds one loader per epoch (the epoch's order and worker seeds).
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle if sampler is None else False,
                      sampler=sampler, num_workers=num_workers, drop_last=drop_last, pin_memory=pin_memory,
                      generator=generator, persistent_workers=False,
                      worker_init_fn=_loader_worker_init if num_workers > 0 else None)
