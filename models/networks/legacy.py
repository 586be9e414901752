"""Loading network weights in the authors' format (SPEC §4.12).

Our modules keep the original state_dict key names, so no key-mapping table is needed. Two
differences between what the released files contain and what ``nn.Module.load_state_dict``
expects are handled here:

* PyTorch 0.4.0 BatchNorm had no ``num_batches_tracked`` buffer: missing entries are filled with 0.
* ``DualUnetGenerator`` registers one downsample module under two names (``encp_{l}_downsample``
  and ``enca_{l}_downsample``). If a file holds different tensors under the two names, the
  original code ended up with the ``enca_`` values (loaded last); here, generally, for every
  tensor reachable under several names the value of the name that comes *last* in
  ``net.state_dict()`` order wins.

Anything else (missing or unexpected keys, shape mismatches) is an error listing the keys.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn as nn

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


def load_state_dict_compat(net: nn.Module, state_dict: Mapping[str, torch.Tensor],
                           strict: bool = True) -> IncompatibleKeys:
    """Load an original-format (or our own) state_dict into ``net``.

    Args:
        net: the network; its tensors are overwritten in place.
        state_dict: key -> tensor, as saved by PyTorch 0.4.0 (no ``num_batches_tracked``) or 2.x.
        strict: raise :class:`StateDictMismatchError` on missing or unexpected keys. With
            ``strict=False`` the matching keys are loaded and the others returned.

    Returns:
        ``IncompatibleKeys(missing_keys, unexpected_keys)`` (both empty after a strict load).
    """
    expected = net.state_dict(keep_vars=True)
    sd = OrderedDict(state_dict)
    metadata = getattr(state_dict, '_metadata', None)

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
        raise StateDictMismatchError(f'state_dict does not match {type(net).__name__}:\n  '
                                     + '\n  '.join(problems) + hint)

    to_load = OrderedDict((k, v) for k, v in sd.items() if k in expected)
    if metadata is not None:
        to_load._metadata = metadata  # per-module versions, for modules that convert old formats
    net.load_state_dict(to_load, strict=strict)
    return IncompatibleKeys(missing, unexpected)


def load_network(net: nn.Module, path: str | Path, strict: bool = True) -> IncompatibleKeys:
    """Load a network file (``.pth`` holding a state_dict) into ``net``.

    Reads both the legacy pre-zip format written by the original code (PyTorch 0.4.0 / Python 2.7)
    and the zip format of current PyTorch, on the CPU, with ``weights_only=True``; then applies
    :func:`load_state_dict_compat`. Errors name the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'network file not found: {path}')
    try:
        state_dict = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for corrupt or foreign files
        raise RuntimeError(f'cannot read network file {path}: {exc}') from exc
    if not isinstance(state_dict, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        raise StateDictMismatchError(f'{path} does not hold a state_dict (a mapping of names to tensors); '
                                     f'got {type(state_dict).__name__}')
    try:
        return load_state_dict_compat(net, state_dict, strict=strict)
    except StateDictMismatchError as exc:
        raise StateDictMismatchError(f'{path}: {exc}') from exc
