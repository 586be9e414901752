"""Checkpoint files: atomic writes, safe loads, and the original's per-network file names.

An experiment folder ``checkpoints/<id>/`` holds, for every label (``latest``, ``best``, integer epochs):

* ``<label>_net_<name>.pth``: one network's ``state_dict`` (CPU tensors), exactly the original's format, so the
  authors' released models and ours are interchangeable;
* ``<label>_checkpoint.pth`` (ours): everything needed to resume in one file (networks, optimizers, scheduler,
  epoch, step, best metric, options, RNG states). It is written last, so a label whose complete checkpoint exists
  has all its network files too.

Every file is written to a temporary name in the same folder, flushed to disk and then renamed over the target:
a crash or kill during a save leaves the previous good file in place, never a truncated one.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # The target is untouched; only our temporary file has to go.
        Path(tmp).unlink(missing_ok=True)
        raise


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
