"""JSON and pickle helpers shared by the options, datasets, checkpoints and scripts.

Writes are atomic (temporary file in the target folder, then ``os.replace``) so an interrupted run
never leaves a half-written split file, option file or label pickle behind.
"""
from __future__ import annotations

import _compat_pickle
import contextlib
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import numpy as np

try:  # numpy 2 renamed numpy.core to numpy._core; pickles name one or the other
    from numpy import _core as _numpy_core
except ImportError:  # numpy 1
    from numpy import core as _numpy_core

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
    untouched; an ``OSError`` (a full disk, ...) is re-raised as one naming ``path`` and the cause
    (:func:`write_error`).
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
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise write_error(path, e) from e
    except BaseException:
        # Never leave the temporary file behind, whatever interrupted the write.
        tmp.unlink(missing_ok=True)
        raise


def write_error(path: PathLike, error: BaseException) -> OSError:
    """An ``OSError`` naming the file being written and the cause (e.g. "No space left on device").

    Writers report failures without the destination (a temporary file's name, or none at all:
    ``torch.save`` raises ``RuntimeError: [enforce fail at inline_container.cc] ...``). The system error
    behind ``error`` is looked for along its context chain and keeps its ``errno``; when there is none, the
    free space of the destination's file system is given, as a full disk is the usual cause.
    """
    cause: BaseException | None = error
    while cause is not None and not (isinstance(cause, OSError) and cause.errno is not None):
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        return OSError(cause.errno, f'cannot write {path}: {cause.strerror or cause}; the previous file, if any, '
                                    f'is unchanged')
    try:
        free = f'{shutil.disk_usage(Path(path).parent).free / 2 ** 20:.1f} MiB free on its file system'
    except OSError:
        free = 'free space unknown'
    return OSError(f'cannot write {path}: {type(error).__name__}: {error} ({free}); the previous file, if any, '
                   f'is unchanged')


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


class UnsafePickleError(ValueError):
    """A pickle references a global that data files never need (a way to run code); nothing of it was run."""


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _latin1_encode(text: str, encoding: str = 'utf-8') -> bytes:
    # Protocol-2 pickles written by Python 3 carry bytes (e.g. numpy buffers) as `_codecs.encode(text, 'latin1')`.
    if encoding not in ('latin1', 'latin-1'):
        raise _Refused(f"'_codecs.encode' with encoding {encoding!r} (only 'latin1' occurs in data pickles)")
    return text.encode('latin1')


def _pickle_globals() -> dict[tuple[str, str], Any]:
    """The only globals a data pickle may name: numpy arrays, dtypes and scalars, and plain builtin values."""
    core = _numpy_core
    allowed: dict[tuple[str, str], Any] = {
        ('numpy', 'ndarray'): np.ndarray,
        ('numpy', 'dtype'): np.dtype,
        ('_codecs', 'encode'): _latin1_encode,
    }
    for prefix in ('numpy.core', 'numpy._core'):
        allowed[(f'{prefix}.multiarray', '_reconstruct')] = core.multiarray._reconstruct
        allowed[(f'{prefix}.multiarray', 'scalar')] = core.multiarray.scalar
        allowed[(f'{prefix}.numeric', '_frombuffer')] = core.numeric._frombuffer
    for value in (set, frozenset, bytes, bytearray, complex):
        allowed[('builtins', value.__name__)] = value
    return allowed


class _DataUnpickler(pickle.Unpickler):
    """Unpickles only plain data: containers, strings, numbers and numpy arrays/scalars.

    Every global a pickle names goes through ``find_class``; anything outside :func:`_pickle_globals` (a
    function to call, a class to instantiate) is refused before it is imported, so no code of the file runs.
    """

    _allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if _DataUnpickler._allowed is None:
            _DataUnpickler._allowed = _pickle_globals()
        # Python 2 names (__builtin__.set, commands.call, ...) -> their Python 3 names, as pickle itself maps them.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        else:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return _DataUnpickler._allowed[(module, name)]
        except KeyError:
            raise _Refused(f"'{module}.{name}'") from None


def load_pickle(path: PathLike) -> Any:
    """Load a data pickle safely: only dicts, lists, tuples, sets, strings, numbers and numpy arrays/scalars.

    Pickles of Python 2 (read with ``encoding='latin1'``, which keeps numpy buffers byte-exact), of numpy 1
    (``numpy.core``) and numpy 2 (``numpy._core``, protocol 5) load. A pickle naming any other global is
    refused with :class:`UnsafePickleError` before anything of it runs.

    Raises:
        FileNotFoundError: missing file.
        UnsafePickleError: the pickle names a global outside the data types; the message names the file and
            the refused ``module.name``.
        ValueError: any other unreadable content, naming the file.
    """
    path = _require_file(path)
    with path.open('rb') as f:
        try:
            return _DataUnpickler(f, encoding='latin1').load()
        except _Refused as e:
            raise UnsafePickleError(
                f'{path}: refused to unpickle {e.reason}: it is not allowed in a data pickle (these hold only '
                f'dicts, lists, strings, numbers and numpy arrays), so the file is not a label file of this '
                f'project or was crafted to run code. Nothing from it was executed; use a trusted copy of the '
                f'file.') from None
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, KeyError, TypeError,
                ValueError, OverflowError) as e:
            raise ValueError(f'cannot unpickle {path}: {type(e).__name__}: {e}') from e


def save_pickle(obj: Any, path: PathLike) -> Path:
    """Pickle ``obj`` to ``path`` (highest protocol, atomic, parent folders created)."""
    return atomic_write(path, lambda f: pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL))
