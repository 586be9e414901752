"""Helpers shared by the folder metrics: listing and reading images, parsing ``<id_1>_<id_2>`` file
names, matching ids against label/pose dictionaries, running a network over images of mixed sizes,
and choosing the device.

Generated images are written by ``scripts/test_pose_transfer.py --save_output`` as ``<id_1>_<id_2>.jpg`` (source
id, target id) into ``images/`` of its results folder ``<experiment or --results_dir>/test_<split>_<epoch>/``; the
metrics accept that results folder itself and read its ``images/`` (:func:`resolve_image_folder`).

Neither Market-1501 ids (``0002_c1s1_000451_03``) nor DeepFashion ids (``fashionWOMENDressesid0000262902_1front``)
are free of ``_``, so a name is split by trying every ``_`` position and keeping the one whose target id (and, to
break ties, source id) is a known id.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

# Extensions of the IS scripts, in the order the original globbed them (``*.jpg`` then ``*.png``).
IMAGE_EXTS = ('jpg', 'png')
# A test results folder (training/evaluation.py) is marked by its options file and holds the generated images in
# a sub-folder; an unfinished test writes to a hidden folder with this suffix.
RESULTS_OPTIONS_FILE = 'test_opt.json'
RESULTS_IMAGES_DIR = 'images'
RESULTS_PARTIAL_SUFFIX = '.partial'
# Number of ``_``-separated fields of a source id: Market ids have four, DeepFashion ids two.
MARKET_ID_FIELDS = 4
DEEPFASHION_ID_FIELDS = 2
# DeepFashion In-shop item number inside an image id (``...id00000001_...``).
_ITEM_ID_RE = re.compile(r'id\d{8}')


def _is_partial(name: str) -> bool:
    return name.startswith('.test_') and name.endswith(RESULTS_PARTIAL_SUFFIX)


def resolve_image_folder(img_dir: str | os.PathLike) -> Path:
    """The folder whose images a metric scores: ``img_dir``, or the ``images/`` of a test results folder.

    A test results folder (it holds ``test_opt.json``) keeps its visual grid beside ``images/``, so scoring the
    results folder itself would score the grid: its ``images/`` is used instead.

    Raises:
        FileNotFoundError: ``img_dir`` is not a folder, or is a results folder of a test run without
            ``--save_output``.
        ValueError: ``img_dir`` is the hidden folder of a test that has not finished (or was interrupted).
    """
    folder = Path(img_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f'image folder not found: {folder}')
    resolved = folder.resolve()
    if _is_partial(resolved.name) or (resolved.name == RESULTS_IMAGES_DIR and _is_partial(resolved.parent.name)):
        raise ValueError(f'{folder} belongs to a test that has not finished (or was interrupted): score the '
                         f'finished results folder test_<split>_<epoch>/ instead')
    if (folder / RESULTS_OPTIONS_FILE).is_file():
        images = folder / RESULTS_IMAGES_DIR
        if not images.is_dir():
            raise FileNotFoundError(f'{folder} is a test results folder without generated images (no '
                                    f'{RESULTS_IMAGES_DIR}/): rerun the test with --save_output (and --overwrite)')
        return images
    return folder


def results_folder_of(img_dir: str | os.PathLike) -> Path:
    """The test results folder ``test_<split>_<epoch>/`` that ``img_dir`` is the ``images/`` of, else ``img_dir``."""
    folder = Path(img_dir)
    if folder.name == RESULTS_IMAGES_DIR and (folder.parent / RESULTS_OPTIONS_FILE).is_file():
        return folder.parent
    return folder


def list_images(img_dir: str | os.PathLike, exts: Sequence[str] = IMAGE_EXTS) -> list[Path]:
    """Image files directly inside ``img_dir`` (for a test results folder: inside its ``images/``).

    Files are grouped by extension in the order of ``exts`` (case-insensitive match) and sorted by name
    inside a group, so the list does not depend on the file system's listing order.

    Raises:
        FileNotFoundError: ``img_dir`` does not exist or is not a folder (see :func:`resolve_image_folder`).
        ValueError: no file with one of ``exts`` was found, or ``img_dir`` is an unfinished test's folder.
    """
    folder = resolve_image_folder(img_dir)
    exts = [e.lower().lstrip('.') for e in exts]
    files = [p for p in folder.iterdir() if p.is_file()]
    paths = []
    for ext in exts:
        paths += sorted((p for p in files if p.suffix.lower() == f'.{ext}'), key=lambda p: p.name)
    if not paths:
        raise ValueError(f'no images with extension {exts} in {folder}')
    return paths


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image as RGB: ``np.uint8 [H, W, 3]`` in [0, 255] (grayscale/RGBA converted by PIL)."""
    with Image.open(path) as img:
        return np.asarray(img.convert('RGB'), dtype=np.uint8)


def image_ids(paths: Sequence[Path]) -> dict[str, Path]:
    """``{file stem: path}``; raises ``ValueError`` if two files share a stem (``a.jpg`` and ``a.png``)."""
    out: dict[str, Path] = {}
    for p in paths:
        if p.stem in out:
            raise ValueError(f'two images share the id {p.stem!r}: {out[p.stem]} and {p}; keep one of them')
        out[p.stem] = p
    return out


def split_pair_name(stem: str, known_ids: Collection[str] | None = None,
                    n_source_fields: int | None = None) -> tuple[str, str]:
    """Split a generated image's stem ``<id_1>_<id_2>`` into ``(id_1, id_2)``.

    Args:
        stem: file name without extension.
        known_ids: ids that ``id_2`` (the target) must belong to (pose-label keys, label keys, real
            image ids). Every ``_`` position is tried; candidates whose ``id_2`` is known are kept; if
            several remain, those whose ``id_1`` is also known; if still several, the one with
            ``n_source_fields`` source fields when given.
        n_source_fields: number of ``_``-separated fields of ``id_1`` (Market 4, DeepFashion 2). Used
            alone when ``known_ids`` is None (the original's rule) and as a tie-breaker otherwise.

    Raises:
        ValueError: naming the stem, when no split matches or the split stays ambiguous.
    """
    fields = stem.split('_')
    splits = [('_'.join(fields[:k]), '_'.join(fields[k:])) for k in range(1, len(fields))]
    if known_ids is None:
        if n_source_fields is None:
            raise ValueError('split_pair_name needs known_ids or n_source_fields')
        if not 0 < n_source_fields < len(fields):
            raise ValueError(f'cannot split {stem!r} into a source id of {n_source_fields} `_`-separated '
                             f'fields and a non-empty target id')
        return splits[n_source_fields - 1]
    candidates = [s for s in splits if s[1] in known_ids]
    if len(candidates) > 1:
        both = [s for s in candidates if s[0] in known_ids]
        candidates = both or candidates
    if len(candidates) > 1 and n_source_fields is not None and 0 < n_source_fields < len(fields):
        default = splits[n_source_fields - 1]
        if default in candidates:
            candidates = [default]
    if not candidates:
        raise ValueError(f'{stem!r}: no split of the name into <id_1>_<id_2> gives a known target id '
                         f'(tried {[s[1] for s in splits]}); the ids come from the label/pose file or the '
                         f'real image folder passed to this metric')
    if len(candidates) > 1:
        raise ValueError(f'{stem!r}: ambiguous split into <id_1>_<id_2>: {candidates}')
    return candidates[0]


def deepfashion_item_id(image_id: str) -> str | None:
    """The In-shop item number ``id\\d{8}`` contained in a DeepFashion image id, or None."""
    m = _ITEM_ID_RE.search(image_id)
    return m.group(0) if m else None


def match_label_key(image_id: str, label_keys: Collection[str]) -> str | None:
    """The key of ``label_keys`` that holds the labels of ``image_id``: the id itself, or else its
    DeepFashion item id (label files keyed by item). None if neither is a key."""
    if image_id in label_keys:
        return image_id
    item = deepfashion_item_id(image_id)
    if item is not None and item in label_keys:
        return item
    return None


class LabelKeys(Collection):
    """The ids that have labels: ``x in LabelKeys(keys)`` iff :func:`match_label_key` finds a key for ``x``.

    Lets :func:`split_pair_name` resolve file names against label files keyed by image id or by item id.
    """

    def __init__(self, keys: Collection[str]) -> None:
        self.keys = keys

    def __contains__(self, image_id: object) -> bool:
        return isinstance(image_id, str) and match_label_key(image_id, self.keys) is not None

    def __iter__(self):
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


def apply_by_shape(fn: Callable[[np.ndarray], np.ndarray], images: Sequence[np.ndarray]) -> np.ndarray:
    """``fn`` over a list of images that may differ in size, keeping the list order.

    Images of equal shape are stacked into one batch ``[n, H, W, 3]``; ``fn`` returns ``[n, ...]``
    per-image results (networks in eval mode treat images independently, so grouping does not change
    the values).
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault(img.shape, []).append(i)
    out = None
    for idx in groups.values():
        res = np.asarray(fn(np.stack([images[i] for i in idx])))
        if out is None:
            out = np.empty((len(images),) + res.shape[1:], dtype=res.dtype)
        out[idx] = res
    return out


def existing_file(path: str | os.PathLike, what: str, how_to_get: str) -> Path:
    """``Path(path)`` if it is a file; else ``FileNotFoundError`` saying what it is and how to get it."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f'{what} not found: {p}. {how_to_get}')
    return p
