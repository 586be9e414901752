"""Dataset and DataLoader factories (SPEC §8.6)."""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

from data.base_dataset import BaseDataset
from data.flow_dataset import FlowDataset
from data.pose_transfer_dataset import PoseTransferDataset

DATASET_TYPES: dict[str, type[BaseDataset]] = {'flow': FlowDataset, 'pose_transfer': PoseTransferDataset}


def create_dataset(opt: Any, split: str) -> BaseDataset:
    """The dataset class selected by ``opt.dataset_type`` over split ``split`` of ``opt.data_root``."""
    try:
        cls = DATASET_TYPES[opt.dataset_type]
    except KeyError:
        raise ValueError(f'unknown dataset_type {opt.dataset_type!r}; valid types are '
                         f'{sorted(DATASET_TYPES)}') from None
    return cls(opt, split)


def create_dataloader(opt: Any, split: str, shuffle: bool | None = None, drop_last: bool | None = None) -> DataLoader:
    """DataLoader as the original (SPEC §8.6).

    Defaults: ``shuffle = (split == 'train' and opt.is_train)``, ``drop_last = opt.is_train`` (so
    validation during training drops the incomplete last batch, test scripts keep it);
    ``batch_size = opt.batch_size``, ``num_workers = opt.num_workers``, ``pin_memory=False``. Under an
    initialised ``torch.distributed`` process group a ``DistributedSampler`` (same shuffle/drop_last)
    splits the data over ranks; call ``loader.sampler.set_epoch(epoch)`` every epoch.
    """
    dataset = create_dataset(opt, split)
    if shuffle is None:
        shuffle = split == 'train' and bool(opt.is_train)
    if drop_last is None:
        drop_last = bool(opt.is_train)
    sampler = None
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        sampler = DistributedSampler(dataset, shuffle=shuffle, drop_last=drop_last)
        shuffle = False
    return DataLoader(dataset, batch_size=opt.batch_size, shuffle=shuffle, sampler=sampler,
                      num_workers=opt.num_workers, drop_last=drop_last, pin_memory=False)
