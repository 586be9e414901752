"""Fixtures shared by every test package.

Test modules never import a conftest: plain helper functions and constants live in importable modules
(``tests/helpers.py``, ``tests/<package>/helpers.py``, ``tests/metrics/weights_helpers.py``); conftest files hold
fixtures only.
"""
from __future__ import annotations

import builtins
import errno
import io
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from data.synthetic import generate_demo_dataset
from tests.helpers import PIPELINE_CONFIG


@pytest.fixture
def single_thread_torch():
    """Run torch on one thread for the duration of a test; restored afterwards.

    The test machine's cores are shared by many processes; with several OpenMP threads per process, the tiny
    convolutions of the test networks spend most of their time waiting for each other (measured: ~10x slower suite
    under load). The packages whose tests run networks turn this on for all their tests from their conftest.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory) -> Path:
    """Read-only synthetic demo dataset of the pipeline tests (``PIPELINE_CONFIG``: 48 train pairs, 128x64), built
    once per session. The data tests use a differently configured dataset under the same fixture name
    (tests/data/conftest.py)."""
    root = tmp_path_factory.mktemp('pipeline') / 'demo'
    generate_demo_dataset(root, PIPELINE_CONFIG, workers=1, verbose=False)
    return root


class _RunsShellCommand:
    """Unpickling this object runs ``os.system(command)``: what a crafted label file would do."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return os.system, (self.command,)


@pytest.fixture
def code_running_pickle(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """Factory ``(path, wrap=None) -> (path, marker)``: write a pickle whose loading touches ``marker``.

    ``wrap(payload)`` embeds the payload in a structure like the real file's (e.g. a pose-label dict), so
    the reader reaches the payload the way it would reach real content. ``marker`` must not exist after a
    safe reader refused the file.
    """
    def make(path: Path, wrap: Callable[[Any], Any] | None = None, protocol: int = 2) -> tuple[Path, Path]:
        marker = tmp_path / f'{Path(path).name}.code_was_executed'
        marker.unlink(missing_ok=True)
        payload = _RunsShellCommand(f'touch {marker}')
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(pickle.dumps(wrap(payload) if wrap else payload, protocol=protocol))
        return Path(path), marker
    return make


class _DiskFillsUp(io.RawIOBase):
    """A writable file that raises ENOSPC ("No space left on device") once ``capacity`` bytes are written."""

    def __init__(self, file: Any, mode: str, capacity: int) -> None:
        super().__init__()
        self._file = builtins.open(file, mode.replace('t', '').rstrip('b') + 'b')
        self._text = 'b' not in mode
        self._left = capacity

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raw = data.encode() if isinstance(data, str) else bytes(data)
        if len(raw) > self._left:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._left -= len(raw)
        self._file.write(raw)
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


@pytest.fixture
def disk_fills_up(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``disk_fills_up(module, capacity=0)``: files that ``module`` opens for writing fail with ENOSPC after
    ``capacity`` bytes, as on a full disk (the module's ``open`` is patched; reading is unaffected)."""
    def patch(module: Any, capacity: int = 0) -> None:
        def fake_open(file: Any, mode: str = 'r', *args: Any, **kwargs: Any) -> Any:
            if any(c in mode for c in 'wax+'):
                return _DiskFillsUp(file, mode, capacity)
            return builtins.open(file, mode, *args, **kwargs)
        monkeypatch.setattr(module, 'open', fake_open, raising=False)
    return patch
