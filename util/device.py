"""The one place that turns a ``--gpu_ids`` value into a ``torch.device``.

Every command line of the project takes GPU ids the original's way (``0``, ``0,1``, ``-1`` for the CPU). This
module parses them and picks the device; it never writes ``CUDA_VISIBLE_DEVICES`` (the original's scripts did,
which changes the meaning of every later GPU index in the process) and never creates a CUDA context.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

import torch


def parse_gpu_ids(value: str | int | Iterable[int] | None) -> list[int]:
    """``'0,1'`` -> ``[0, 1]``; negative ids are dropped, so ``'-1'`` (and ``''``/None) -> ``[]``, the CPU.

    Usable as an argparse ``type``: a malformed value raises ``argparse.ArgumentTypeError``.
    """
    if value is None:
        return []
    if isinstance(value, int):
        value = [value]
    if isinstance(value, str):
        items = [s.strip() for s in value.split(',') if s.strip() != '']
        try:
            ids = [int(s) for s in items]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid --gpu_ids {value!r}: expected comma-separated integers such as '0' or '0,1' "
                f"('-1' selects the CPU)") from None
    else:
        ids = [int(i) for i in value]
    return [i for i in ids if i >= 0]


def resolve_device(gpu_ids: str | Iterable[int] | None) -> tuple[torch.device, list[int]]:
    """Pick the device for ``gpu_ids``; returns ``(device, gpu_ids actually used)``.

    No ids -> the CPU, without touching CUDA. Ids given but CUDA unavailable -> a warning on stderr and the CPU
    (the returned id list is then empty), so the README's ``--gpu_ids 0`` commands still run on a CPU machine.
    Otherwise ``cuda:<first id>``; an id beyond the visible devices is an error.
    """
    ids = parse_gpu_ids(gpu_ids)
    if not ids:
        return torch.device('cpu'), []
    if not torch.cuda.is_available():
        print(f'WARNING: --gpu_ids {",".join(map(str, ids))} requested but CUDA is not available; '
              f'running on the CPU (pass --gpu_ids -1 to select the CPU explicitly).', file=sys.stderr)
        return torch.device('cpu'), []
    count = torch.cuda.device_count()
    bad = [i for i in ids if i >= count]
    if bad:
        raise ValueError(f'--gpu_ids {ids} names GPU(s) {bad} but only {count} CUDA device(s) are '
                         f'visible (valid ids: 0..{count - 1}, or -1 for the CPU)')
    return torch.device(f'cuda:{ids[0]}'), ids


def select_device(gpu_ids: str | Iterable[int] | None) -> torch.device:
    """:func:`resolve_device` without the id list (for the metric scripts)."""
    return resolve_device(gpu_ids)[0]
