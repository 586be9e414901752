"""Datasets (flow regression, pose transfer), the DataLoader factory, the synthetic demo generator and downloads.

``create_dataset`` / ``make_dataloader`` live in ``data.data_loader``; they are re-exported here lazily so that
``import data.synthetic`` (the generator CLI) does not import torch.
"""
from __future__ import annotations

from typing import Any

__all__ = ['create_dataset', 'make_dataloader']


def __getattr__(name: str) -> Any:
    if name in __all__:
        from data import data_loader
        return getattr(data_loader, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
