"""Fixtures shared by several test packages."""
from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


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
