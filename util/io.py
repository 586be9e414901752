"""JSON and pickle helpers shared by the options, datasets, checkpoints and scripts.

Writes are atomic (temporary file in the target folder, then ``os.replace``) so an interrupted run
never leaves a half-written split file, option file or label pickle behind.
"""
from __future__ import annotations

import contextlib
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

PathLike = str | os.PathLike


def _require_file(path: PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'file not found: {path}')
    return path


def _process_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_target(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it is flushed to disk and replaces ``path`` atomically.

    This is the project's one atomic writer (JSON, pickles, images, checkpoints all go through it). The temporary
    file lives in the destination folder (same filesystem, so the rename is atomic) and ends with the
    destination's suffix (``.x.tmpab12.jpg``), so writers that infer the format from the file name still work.
    Before the rename the file's data is fsync'ed, so a power loss cannot leave a renamed but empty file. The file
    gets the permissions of an ordinary write (``0o666`` minus the process umask), not ``mkstemp``'s private
    ``0o600``. Parent folders are created. If the body raises, the temporary file is removed and ``path`` is left
    untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.stem}.', suffix=f'.tmp{path.suffix}')
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_process_umask())
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        # Never leave the temporary file behind, whatever interrupted the write.
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: PathLike, write_fn: Callable[[IO], None], mode: str = 'wb') -> Path:
    """Write a file atomically: ``write_fn(handle)`` fills a temporary file that then replaces ``path``.

    ``mode`` is ``'wb'`` (binary) or ``'w'`` (UTF-8 text). Parent folders are created.
    Returns ``path`` as a ``Path``.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    with atomic_target(path) as tmp:
        encoding = 'utf-8' if mode == 'w' else None
        with open(tmp, mode, encoding=encoding) as handle:
            write_fn(handle)
    return Path(path)


def load_json(path: PathLike) -> Any:
    """Load a JSON file. Raises ``FileNotFoundError`` / ``ValueError`` naming the file."""
    path = _require_file(path)
    with path.open('r', encoding='utf-8') as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path} is not valid JSON: {e}') from e


def save_json(obj: Any, path: PathLike, indent: int | None = 0) -> Path:
    """Save ``obj`` as JSON (``separators=(',', ': ')``, ``indent=0`` like the original option files).

    Parent folders are created; the write is atomic. Returns ``path`` as a ``Path``.
    """
    text = json.dumps(obj, indent=indent, separators=(',', ': '))
    return atomic_write(path, lambda f: f.write(text + '\n'), mode='w')


def load_pickle(path: PathLike) -> Any:
    """Load a pickle, including Python-2 pickles holding numpy arrays (``encoding='latin1'``).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file if it cannot be
    unpickled.
    """
    path = _require_file(path)
    with path.open('rb') as f:
        try:
            return pickle.load(f, encoding='latin1')
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError) as e:
            raise ValueError(f'cannot unpickle {path}: {type(e).__name__}: {e}') from e


def save_pickle(obj: Any, path: PathLike) -> Path:
    """Pickle ``obj`` to ``path`` (highest protocol, atomic, parent folders created)."""
    return atomic_write(path, lambda f: pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL))
