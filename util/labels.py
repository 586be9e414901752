"""Label files of the datasets: pose labels and attribute labels, as the original pickles or converted once.

The authors' label files are Python-2 pickles: pose labels (``Label/pose_label.pkl``,
``Label/pose_label_adapt.pkl``) map an image id to 18 ``[x, y]`` keypoints, attribute labels
(``attr_label.pkl``) are ``{'label': {id: 0/1 vector}, 'entry': [attribute names]}``. Pickles are read with
the restricted ``util.io.load_pickle`` (no code can run), and ``scripts/convert_labels.py`` rewrites them once
as files that are not pickles at all, next to the originals:

* pose labels -> ``<name>.json``: ``{"format": "pose_label", "version": 1, "source": "<name>.pkl",
  "source_sha256": "...", "labels": {id: [[x, y], ...]}}`` (numbers exactly as in the pickle; JSON floats
  round-trip float64 exactly);
* attribute labels -> ``<name>.npz``: arrays ``ids`` ``[N]``, ``label`` ``[N, A]`` (the pickle's dtype),
  ``entry`` ``[A]``, plus ``format``, ``version``, ``source``, ``source_sha256``; read with
  ``allow_pickle=False``.

:func:`load_label_file` prefers the converted file when one exists (and says so once per file), giving the
same structure as the pickle. A converted file whose recorded SHA-256 no longer matches the pickle next to
it is refused (the pickle was replaced after the conversion); once converted, the pickle may be deleted.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from util.io import atomic_target, load_json, load_pickle, save_json

PathLike = str | os.PathLike

CONVERTED_SUFFIXES = ('.json', '.npz')
FORMAT_VERSION = 1
CONVERT_COMMAND = 'python scripts/convert_labels.py'
_announced: set[Path] = set()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open('rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def converted_label_path(path: PathLike) -> Path | None:
    """The converted twin (``.json`` or ``.npz`` next to ``path``) that exists, else None.

    Raises ``ValueError`` when both exist (which one is meant is unclear).
    """
    path = Path(path)
    found = [path.with_suffix(s) for s in CONVERTED_SUFFIXES if path.with_suffix(s).is_file() and
             path.with_suffix(s) != path]
    if len(found) > 1:
        raise ValueError(f'both {found[0]} and {found[1]} exist as converted forms of {path}; delete the one '
                         f'that is not current and run `{CONVERT_COMMAND}` again if unsure')
    return found[0] if found else None


def label_file_exists(path: PathLike) -> bool:
    """True if ``path`` or its converted twin exists."""
    path = Path(path)
    return path.is_file() or any(path.with_suffix(s).is_file() for s in CONVERTED_SUFFIXES)


def load_label_file(path: PathLike) -> Any:
    """A label file's content: from the converted ``.json`` / ``.npz`` twin if present, else the pickle.

    ``path`` is the pickle's path (``Label/pose_label.pkl``) or a converted file's path. The result has the
    pickle's structure: a dict ``id -> [[x, y], ...]`` for pose labels, ``{'label': {id: vector}, 'entry':
    [names]}`` for attribute labels.

    Raises:
        FileNotFoundError: neither the file nor a converted twin exists.
        ValueError: unreadable or unsafe content (``util.io.UnsafePickleError``), or a converted file made
            from a different pickle; the message names the file.
    """
    path = Path(path)
    if path.suffix in CONVERTED_SUFFIXES:
        return _load_converted(path)
    converted = converted_label_path(path)
    if converted is None:
        return load_pickle(path)
    content, source_sha256 = _load_converted(converted, with_source_digest=True)
    if path.is_file() and _sha256(path) != source_sha256:
        raise ValueError(f'{converted} was converted from a different {path.name} (the pickle changed after the '
                         f'conversion): run `{CONVERT_COMMAND} {path}` again, or delete {converted} to read the '
                         f'pickle')
    if converted not in _announced:
        _announced.add(converted)
        print(f'reading {converted} (converted from {path.name} by {CONVERT_COMMAND})')
    return content


def _load_converted(path: Path, with_source_digest: bool = False) -> Any:
    if path.suffix == '.json':
        raw = load_json(path)
        if not (isinstance(raw, dict) and raw.get('format') == 'pose_label' and isinstance(raw.get('labels'), dict)):
            raise ValueError(f'{path} is not a converted pose-label file (expected a JSON object with "format": '
                             f'"pose_label" and "labels"); write it with `{CONVERT_COMMAND}`')
        content, digest = raw['labels'], raw.get('source_sha256')
    else:
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError) as e:
            raise ValueError(f'cannot read {path} as a converted attribute-label file: {e}') from e
        if str(arrays.get('format', '')) != 'attr_label' or not {'ids', 'label', 'entry'} <= set(arrays):
            raise ValueError(f'{path} is not a converted attribute-label file (expected arrays format="attr_label", '
                             f'ids, label, entry); write it with `{CONVERT_COMMAND}`')
        ids, label = arrays['ids'], arrays['label']
        if label.ndim != 2 or len(ids) != len(label):
            raise ValueError(f'{path}: label must be [N, A] with one row per id, got ids {ids.shape} and label '
                             f'{label.shape}')
        content = {'label': dict(zip(ids.tolist(), label)), 'entry': arrays['entry'].tolist()}
        digest = str(arrays.get('source_sha256', ''))
    return (content, digest) if with_source_digest else content


def converted_is_current(path: PathLike) -> bool:
    """True if the pickle ``path`` has a converted twin made from exactly this pickle (same SHA-256)."""
    path = Path(path)
    converted = converted_label_path(path)
    if converted is None or not path.is_file():
        return False
    try:
        _, digest = _load_converted(converted, with_source_digest=True)
    except ValueError:
        return False
    return digest == _sha256(path)


# --------------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------------
def _pose_rows(path: Path, key: str, value: Any) -> list:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f'{path}: entry {key!r} is not a numeric [K, 2] table ({e})') from e
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f'{path}: entry {key!r} has shape {arr.shape}, expected [K, 2] keypoints')
    if not np.isfinite(arr).all():
        raise ValueError(f'{path}: entry {key!r} holds NaN or inf keypoints; fix the label file before converting')
    # Lists keep Python ints as ints and floats as floats; arrays give the floats of their values.
    rows = value.tolist() if isinstance(value, np.ndarray) else [list(r) for r in value]
    return [[v.item() if isinstance(v, np.generic) else v for v in row] for row in rows]


def _is_pose_labels(content: Any) -> bool:
    return isinstance(content, dict) and all(isinstance(k, str) for k in content) and \
        all(isinstance(v, (list, tuple, np.ndarray)) for v in content.values())


def _is_attr_labels(content: Any) -> bool:
    return isinstance(content, dict) and isinstance(content.get('label'), dict) and set(content) <= {'label', 'entry'}


def convert_label_file(path: PathLike) -> Path:
    """Rewrite a pose- or attribute-label pickle as ``.json`` / ``.npz`` next to it (atomic); returns the new path.

    The pickle is read with the restricted unpickler. Pose labels must be finite ``[K, 2]`` tables, attribute
    vectors of one length; anything else is refused with a ``ValueError`` naming the file (nothing written).
    """
    path = Path(path)
    content = load_pickle(path)
    source = {'version': FORMAT_VERSION, 'source': path.name, 'source_sha256': _sha256(path)}
    if _is_attr_labels(content):
        out = path.with_suffix('.npz')
        ids = list(content['label'])
        if not all(isinstance(i, str) for i in ids):
            raise ValueError(f'{path}: attribute-label ids must be strings')
        rows = [np.asarray(v).reshape(-1) for v in content['label'].values()]
        if len({r.shape for r in rows}) > 1 or any(r.dtype.kind not in 'biuf' for r in rows):
            raise ValueError(f'{path}: attribute vectors must be numeric and of one length, got shapes '
                             f'{sorted({r.shape for r in rows})[:5]}')
        label = np.stack(rows) if rows else np.zeros((0, 0), dtype=np.int64)
        entry = [str(e) for e in content.get('entry', [])]
        arrays = dict(format=np.array('attr_label'), ids=np.array(ids, dtype=str), label=label,
                      entry=np.array(entry, dtype=str), **{k: np.array(v) for k, v in source.items()})
        with atomic_target(out) as tmp, open(tmp, 'wb') as f:
            np.savez(f, **arrays)
        return out
    if _is_pose_labels(content):
        out = path.with_suffix('.json')
        labels = {key: _pose_rows(path, key, value) for key, value in content.items()}
        save_json({'format': 'pose_label', **source, 'labels': labels}, out, indent=None)
        return out
    raise ValueError(f'{path} is neither a pose-label file (dict id -> [[x, y], ...]) nor an attribute-label file '
                     f"({{'label': {{id: vector}}, 'entry': [names]}}); not converted")
