"""Network weight files: the original's per-network file names, safe loading, strict state_dict checking, and
atomic saving.

An experiment folder holds, per label (``latest``, ``best``, an epoch number), the original's per-network files
``<label>_net_<name>.pth`` (one ``state_dict`` of CPU tensors, exactly the authors' format, so their released
models and ours are interchangeable), in folders made by the original code its optimizer files
``<label>_optim_<name>.pth`` (read on resume, never written here), and our complete checkpoint
``<label>_checkpoint.pth`` (see ``training/checkpoint.py``).

Our networks keep the authors' state_dict key names, so no key-mapping table is needed. Two differences between
what the released files contain and what ``nn.Module.load_state_dict`` expects are handled by
:func:`load_state_dict_compat`:

* PyTorch 0.4.0 BatchNorm had no ``num_batches_tracked`` buffer: missing entries are filled with 0.
* ``DualUnetGenerator`` registers one downsample module under two names (``encp_{l}_downsample`` and
  ``enca_{l}_downsample``). If a file holds different tensors under the two names, the original code ended up with
  the ``enca_`` values (loaded last); here, generally, for every tensor reachable under several names the value of
  the name that comes *last* in ``net.state_dict()`` order wins.

Anything else (missing or unexpected keys, shape mismatches) is an error listing the keys. Every file is read with
``torch.load(weights_only=True)``, so a weight file cannot run code.
"""
from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn as nn

from util.io import atomic_target, write_error

logger = logging.getLogger(__name__)

_MAX_LISTED = 20


class StateDictMismatchError(RuntimeError):
    """A state_dict does not fit a network (missing/unexpected keys or wrong shapes)."""


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


def _listing(title: str, keys: list[str]) -> str:
    shown = ', '.join(keys[:_MAX_LISTED])
    more = f' ... (+{len(keys) - _MAX_LISTED} more)' if len(keys) > _MAX_LISTED else ''
    return f'{len(keys)} {title}: {shown}{more}'


def _alias_groups(net: nn.Module) -> list[list[str]]:
    """State_dict keys that name the same tensor (shared modules), each group in state_dict order."""
    groups: dict[int, list[str]] = {}
    for key, tensor in net.state_dict(keep_vars=True).items():
        groups.setdefault(id(tensor), []).append(key)
    return [keys for keys in groups.values() if len(keys) > 1]


def load_state_dict_compat(net: nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True, *,
                           strip_data_parallel_prefix: bool = False, skip_prefixes: tuple[str, ...] = (),
                           source: str | os.PathLike | None = None) -> IncompatibleKeys:
    """Load an original-format (or our own) state_dict into ``net``: the one strict state_dict checker.

    Args:
        net: the network; its tensors are overwritten in place.
        state_dict: key -> tensor, as saved by PyTorch 0.4.0 (no ``num_batches_tracked``) or 2.x.
        strict: raise :class:`StateDictMismatchError` on missing or unexpected keys. With
            ``strict=False`` the matching keys are loaded and the others returned.
        strip_data_parallel_prefix: when every key starts with ``module.`` (a file saved from
            ``DataParallel``, as the authors' fashion classifiers may be), drop that prefix first.
        skip_prefixes: keys starting with one of these are left out on both sides (for example ``('fc.',)``
            to initialise everything but a new classification layer from ImageNet weights).
        source: the file the state_dict came from, named in error messages.

    Returns:
        ``IncompatibleKeys(missing_keys, unexpected_keys)`` (both empty after a strict load).
    """
    where = f'{source}: ' if source is not None else ''
    if not isinstance(state_dict, Mapping) or not state_dict or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        raise StateDictMismatchError(f'{where}does not hold a state_dict (a non-empty mapping of names to '
                                     f'tensors); got {type(state_dict).__name__}')
    metadata = getattr(state_dict, '_metadata', None)
    sd = OrderedDict(state_dict)
    if strip_data_parallel_prefix and all(k.startswith('module.') for k in sd):
        sd = OrderedDict((k[len('module.'):], v) for k, v in sd.items())
    if skip_prefixes:
        sd = OrderedDict((k, v) for k, v in sd.items() if not k.startswith(skip_prefixes))
    expected = OrderedDict((k, v) for k, v in net.state_dict(keep_vars=True).items()
                           if not k.startswith(skip_prefixes))

    # 1. PyTorch 0.4.0 files lack the BatchNorm batch counter; start it at 0 like PyTorch does.
    for key, tensor in expected.items():
        if key.endswith('.num_batches_tracked') and key not in sd:
            sd[key] = torch.zeros_like(tensor, device='cpu')

    # 2. Shared modules: the name loaded last wins; give every alias that value.
    for group in _alias_groups(net):
        present = [k for k in group if k in sd]
        if not present:
            continue
        winner = present[-1]
        for key in present[:-1]:
            if sd[key].shape == sd[winner].shape and not torch.equal(sd[key].cpu(), sd[winner].cpu()):
                logger.warning('state_dict entries %s and %s (one shared tensor) differ; using %s',
                               key, winner, winner)
        if strict and len(present) < len(group):
            continue  # reported as missing below, as the original would fail here
        for key in group:
            sd[key] = sd[winner]

    # 3. Key and shape checks with a readable error.
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong_shape = [f'{k} (file {tuple(sd[k].shape)}, network {tuple(expected[k].shape)})'
                   for k in expected if k in sd and sd[k].shape != expected[k].shape]
    problems = []
    if strict and missing:
        problems.append(_listing('missing keys', missing))
    if strict and unexpected:
        problems.append(_listing('unexpected keys', unexpected))
    if wrong_shape:
        problems.append(_listing('shape mismatches', wrong_shape))
    if problems:
        hint = ''
        if unexpected and all(k.startswith(('module.', '_orig_mod.')) for k in unexpected):
            hint = ('\nThe keys carry a DataParallel/compile prefix; save the state_dict of the unwrapped '
                    'module instead.')
        raise StateDictMismatchError(f'{where}state_dict does not match {type(net).__name__}:\n  '
                                     + '\n  '.join(problems) + hint)

    to_load = OrderedDict((k, v) for k, v in sd.items() if k in expected)
    if metadata is not None:
        to_load._metadata = metadata  # per-module versions, for modules that convert old formats
    net.load_state_dict(to_load, strict=strict and not skip_prefixes)
    return IncompatibleKeys(missing, unexpected)


def load_network(net: nn.Module, path: str | Path, strict: bool = True) -> IncompatibleKeys:
    """Load a network file (``.pth`` holding a state_dict) into ``net``.

    Reads both the legacy pre-zip format written by the original code (PyTorch 0.4.0 / Python 2.7)
    and the zip format of current PyTorch, on the CPU, with ``weights_only=True``; then applies
    :func:`load_state_dict_compat`. Errors name the file.
    """
    return load_state_dict_compat(net, safe_torch_load(path, 'network'), strict=strict, source=path)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` through a temporary file, fsync and an atomic rename (see ``util.io``).

    A failed write (e.g. a full disk, which torch reports as ``inline_container.cc`` without a path) raises an
    ``OSError`` naming ``path`` and the cause; the previous file stays as it was.
    """
    try:
        with atomic_target(path) as tmp, open(tmp, 'wb') as f:
            torch.save(obj, f)
    except RuntimeError as e:  # torch's serializer wraps the OSError of the failed write
        raise write_error(path, e) from e
    return Path(path)


def safe_torch_load(path: str | os.PathLike, what: str = 'checkpoint') -> Any:
    """``torch.load`` with ``weights_only=True`` on CPU, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{what} file not found: {path}')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # re-raised with the file name; torch's messages do not include it
        raise RuntimeError(f'could not load {what} file {path}: {exc}') from exc


def cpu_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``module.state_dict()`` (the live network is never moved between devices)."""
    return {k: v.detach().to('cpu', copy=True) for k, v in module.state_dict().items()}


def network_path(expr_dir: str | os.PathLike, label: str | int, name: str) -> Path:
    return Path(expr_dir) / f'{label}_net_{name}.pth'


def optimizer_path(expr_dir: str | os.PathLike, label: str | int, name: str) -> Path:
    return Path(expr_dir) / f'{label}_optim_{name}.pth'


def checkpoint_path(expr_dir: str | os.PathLike, label: str | int) -> Path:
    return Path(expr_dir) / f'{label}_checkpoint.pth'


def optimizer_state_to_cpu(state: dict) -> dict:
    """Move every tensor of an optimizer ``state_dict`` to CPU (so a CUDA run's checkpoint loads anywhere)."""
    def move(x):
        if isinstance(x, torch.Tensor):
            return x.detach().to('cpu', copy=True)
        if isinstance(x, dict):
            return {k: move(v) for k, v in x.items()}
        if isinstance(x, list):
            return [move(v) for v in x]
        return x
    return move(state)
