"""AttrRec-k: how well the attributes of the target clothing survive in the generated image.

A ResNet-50 attribute classifier (347 DeepFashion attributes, sigmoid outputs; see
:mod:`metrics.fashion_classifiers`) scores each generated image ``<id_1>_<id_2>.<ext>``; the ground truth is the
attribute vector of the target ``id_2``. Reported: recall@k for k = 3, 5, 10, 20 and the mean AP over
attributes, both in percent, computed exactly as the original.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from metrics.fashion_classifiers import eval_transform, find_classifier_checkpoint, load_classifier, predict_images
from util.labels import label_file_exists, load_label_file
from metrics.image_folder import (DEEPFASHION_ID_FIELDS, LabelKeys, list_images, match_label_key,
                                       split_pair_name)

DEFAULT_ATTR_LABEL_FILE = 'datasets/DF_Pose/Label/attr_label.pkl'
# The authors' internal folder name DF_Pose is not what the dataset archive unpacks to.
FALLBACK_ATTR_LABEL_FILE = 'datasets/deepfashion/Label/attr_label.pkl'
RECALL_KS = (3, 5, 10, 20)


@dataclass(frozen=True)
class AttrRecSettings:
    """AttrRec-k: the input pipeline (``Resize(rescale_size)`` then ``CenterCrop(crop_size)``), the number of
    attributes, the k of the recalls; ground truth = the attributes of each pair's target."""
    rescale_size: int = 256
    crop_size: int = 224
    n_attr: int = 347
    ks: tuple[int, ...] = RECALL_KS
    batch_size: int = 32


# --------------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------------
def recall_at_k(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean over images of (true attributes among the top-k scores) / (true attributes), x100.

    Args:
        scores: ``[N, A]`` attribute scores (higher = more likely).
        labels: ``[N, A]`` 0/1 ground truth. An image without any true attribute counts as recall 1.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    topk = np.argsort(-scores, axis=1, kind='stable')[:, :k]
    tag = np.zeros_like(scores)
    np.put_along_axis(tag, topk, 1.0, axis=1)
    hits, gt = (tag * labels).sum(axis=1), labels.sum(axis=1)
    empty = gt == 0
    hits[empty], gt[empty] = 1.0, 1.0
    return float((hits / gt).mean() * 100)


def average_precisions(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-attribute AP ``[A]`` in percent, the original's variant (NaN reported as -100).

    Per column: images sorted by descending score; ``tp_j`` cumulative true positives at rank
    ``j = 1..N``; precision ``tp_j / (j + 1e-8)``, recall ``tp_j / (n_pos + 1e-8)``; a 0 is prepended to
    the precisions, which are then made non-increasing from the end; with ``rec1 = [0, rec]`` and
    ``rec2 = [rec, 1]``, ``AP = sum(prec * (rec2 - rec1))``.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    n, n_attr = scores.shape
    order = np.argsort(-scores, axis=0, kind='stable')
    tp = np.cumsum(np.take_along_axis(labels, order, axis=0), axis=0)  # [N, A]
    rank = np.arange(1, n + 1, dtype=np.float64)[:, None]
    prec = tp / (rank + 1e-8)
    rec = tp / (labels.sum(axis=0, keepdims=True) + 1e-8)
    prec = np.concatenate([np.zeros((1, n_attr)), prec])
    prec = np.maximum.accumulate(prec[::-1], axis=0)[::-1]
    rec1 = np.concatenate([np.zeros((1, n_attr)), rec])
    rec2 = np.concatenate([rec, np.ones((1, n_attr))])
    ap = (prec * (rec2 - rec1)).sum(axis=0)
    ap[np.isnan(ap)] = -1
    return ap * 100


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean of the non-negative per-attribute APs of :func:`average_precisions` (percent)."""
    ap = average_precisions(scores, labels)
    return float(ap[ap >= 0].mean())


# --------------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------------
def resolve_attr_label_file(fn_label: str | os.PathLike | None = None) -> Path:
    """The attribute label file: ``fn_label`` if it exists; for the default path (or None) also
    ``datasets/deepfashion/Label/attr_label.pkl``. Raises ``FileNotFoundError`` listing what was tried."""
    candidates = [Path(fn_label)] if fn_label is not None else []
    if fn_label is None or Path(fn_label) == Path(DEFAULT_ATTR_LABEL_FILE):
        candidates = [Path(DEFAULT_ATTR_LABEL_FILE), Path(FALLBACK_ATTR_LABEL_FILE)]
    for path in candidates:
        if label_file_exists(path):  # the pickle or its converted .npz (scripts/convert_labels.py)
            return path
    raise FileNotFoundError(f'attribute label file not found; tried {[str(p) for p in candidates]}. It is '
                            f'Label/attr_label.pkl of the DeepFashion archive (bash scripts/download_deepfashion.sh); '
                            f'pass its path with --fn_label.')


def load_attr_labels(fn_label: str | os.PathLike) -> tuple[dict[str, np.ndarray], list[str]]:
    """``({id: int64 [A] 0/1}, attribute names)`` from the pickle
    ``{'label': {id: vector}, 'entry': [names]}`` (Python-2 pickle with numpy arrays, restricted-unpickled, or its
    converted ``.npz`` twin when present, see ``util.labels``).

    Raises ``ValueError`` naming the file and the id when the vectors differ in length or hold anything but 0 and 1
    (NaN included).
    """
    data = load_label_file(fn_label)
    if not isinstance(data, dict) or 'label' not in data:
        raise ValueError(f"{fn_label}: expected a dict with keys 'label' (id -> 0/1 vector) and 'entry'")
    raw = {k: np.asarray(v).reshape(-1) for k, v in data['label'].items()}
    lengths = {v.size for v in raw.values()}
    if len(lengths) > 1:
        first = next(iter(raw.values())).size
        key = next(k for k, v in raw.items() if v.size != first)
        raise ValueError(f'{fn_label}: the label vector of {key!r} has {raw[key].size} attributes, the first entry has '
                         f'{first}; every id needs one 0/1 value per attribute')
    keys = list(raw)
    table = np.stack([raw[k] for k in keys]) if keys else np.zeros((0, 0), np.int64)  # [N, A]
    valid = np.isin(table, (0, 1))  # a NaN would otherwise become a huge negative integer, a 2 two hits
    if not valid.all():
        row = int(np.flatnonzero(~valid.all(axis=1))[0])
        raise ValueError(f'{fn_label}: the label vector of {keys[row]!r} holds values other than 0 and 1 '
                         f'({np.unique(table[row][~valid[row]]).tolist()[:5]})')
    labels = dict(zip(keys, table.astype(np.int64)))
    return labels, list(data.get('entry', []))


def target_labels(paths: Sequence[Path], labels: dict[str, np.ndarray], fn_label) -> np.ndarray:
    """Label vectors ``[N, A]`` of the target ids of generated ``<id_1>_<id_2>`` files."""
    keys = LabelKeys(labels.keys())
    out = []
    for p in paths:
        try:
            _, id_2 = split_pair_name(p.stem, keys, DEEPFASHION_ID_FIELDS)
        except ValueError as e:
            raise ValueError(f'{p}: {e} (label file {fn_label})') from e
        out.append(labels[match_label_key(id_2, labels.keys())])
    return np.stack(out)


# --------------------------------------------------------------------------------------------------
# Folder metric
# --------------------------------------------------------------------------------------------------
def compute_attr_rec(test_dir: str | os.PathLike, *, fn_label: str | os.PathLike | None = None,
                     exp_id: str = 'default', checkpoints_dir: str | os.PathLike = 'checkpoints',
                     weights_path: str | os.PathLike | None = None, n_attr: int = 347, rescale_size: int = 256,
                     crop_size: int = 224, batch_size: int = 32, ext: str = 'jpg',
                     device: str | torch.device = 'cpu', model: nn.Module | None = None,
                     max_batches: int | None = None, num_workers: int = 0, ks: Sequence[int] = RECALL_KS) -> dict:
    """AttrRec-k and mean AP of the generated ``*.<ext>`` images in ``test_dir`` (sorted by name).

    Args:
        fn_label: attribute label pickle (None: default path with fallback, see :func:`resolve_attr_label_file`).
        exp_id, checkpoints_dir, weights_path: classifier weights (``checkpoints/Fashion_Attr/<id>/best.pth``
            or ``Fasion_Attr``; ``weights_path`` overrides); ignored when ``model`` is given.
        rescale_size, crop_size: Resize / CenterCrop of the input pipeline.
        max_batches: score only the first batches (debug).

    Returns:
        dict with ``mean_ap``, ``rec-3`` ... ``rec-20``, ``n_images``, ``test_dir``, ``label_file``, ``weights``.
    """
    label_file = resolve_attr_label_file(fn_label)
    labels, _ = load_attr_labels(label_file)
    paths = list_images(test_dir, (ext,))
    gt = target_labels(paths, labels, label_file)  # checks every name before the network runs
    if gt.shape[1] != n_attr:
        raise ValueError(f'{label_file}: label vectors have {gt.shape[1]} attributes, --n_attr is {n_attr}')
    weights = None
    if model is None:
        weights = find_classifier_checkpoint('attr', exp_id, checkpoints_dir, weights_path)
        model = load_classifier('attr', weights, n_attr, device)
    scores = predict_images(model, paths, eval_transform(rescale_size, crop_size), batch_size, device, 'sigmoid',
                            max_batches, num_workers)
    gt = gt[:len(scores)]
    result = {'mean_ap': mean_average_precision(scores, gt)}
    result.update({f'rec-{k}': recall_at_k(scores, gt, k) for k in ks})
    result.update(n_images=len(scores), test_dir=str(test_dir), label_file=str(label_file),
                  weights=str(weights) if weights else None)
    return result
