"""Fréchet Inception distance with torch-fidelity (the protocol of later pose-transfer papers).

Features: pool_3 (2048-d) of torch-fidelity's ``inception-v3-compat`` network, i.e. the TF Inception
graph of 2015-12-05 ported to PyTorch, fed ``uint8`` RGB images at their native size, which it resizes
to 299x299 with the TF1-compatible bilinear resize (the resize of the original TF FID code). The
statistics and the distance are torch-fidelity's own functions (``fid_features_to_statistics``,
``fid_statistics_to_metric``).

Numbers are comparable only under the same protocol, so the result states it: real set, number of
images on each side, image formats, resize, network and weights file.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from metrics.image_folder import IMAGE_EXTS, apply_by_shape, image_ids, list_images, read_rgb, split_pair_name
from metrics.inception_score import TorchFidelityInception

REAL_SUBSETS = ('all', 'targets')
FID_BACKENDS = ('torchvision_gfla', 'torch_fidelity')
FID_REAL_SETS = ('train', 'targets')
# Below this many images the 2048x2048 covariance is rank deficient and FID is biased upwards.
FID_FEATURE_DIM = 2048


@dataclass(frozen=True)
class FIDSettings:
    """Which FID.

    Attributes:
        backend: ``'torchvision_gfla'``: torchvision's ImageNet Inception-v3 (``inception_v3_google-*.pth``) with
            the early pytorch-fid input mapping GFLA's script copied (:mod:`metrics.fid_torchvision`);
            ``'torch_fidelity'``: torch-fidelity's port of the TF FID Inception (this module's :func:`compute_fid`).
        real_set: ``'train'``: every training image (of the split file's ``train`` pairs, or of a folder given
            as the real set), as GFLA ("the real data distributions are calculated over the whole training
            set"); ``'targets'``: the target image of each evaluated pair.
        batch_size: images per forward pass; matters only with ``drop_remainder``.
        drop_remainder: use only the first ``(N // b) · b`` images of each set, ``b = min(batch_size, N)``, as
            GFLA's script (its last incomplete batch is never run).
    """
    backend: str = 'torchvision_gfla'
    real_set: str = 'train'
    batch_size: int = 64
    drop_remainder: bool = True

    def __post_init__(self) -> None:
        if self.backend not in FID_BACKENDS:
            raise ValueError(f'FID backend {self.backend!r} is not one of {list(FID_BACKENDS)}')
        if self.real_set not in FID_REAL_SETS:
            raise ValueError(f'FID real_set {self.real_set!r} is not one of {list(FID_REAL_SETS)}')
        if self.batch_size < 1:
            raise ValueError(f'FID batch_size must be >= 1, got {self.batch_size}')


def frechet_distance(feats1: np.ndarray, feats2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``[n1, d]`` and ``[n2, d]``.

    If ``min(n1, n2) <= d`` the covariances ``S1 = A^T A / (n1 - 1)``, ``S2 = B^T B / (n2 - 1)`` (A, B the
    centred features) have rank < d and the nonzero eigenvalues of ``S1 S2`` are those of
    ``(A B^T)(A B^T)^T / ((n1 - 1)(n2 - 1))``, so ``tr sqrt(S1 S2)`` is the sum of the singular values of
    ``A B^T`` divided by ``sqrt((n1 - 1)(n2 - 1))``: exact, and a small SVD instead of a d x d eigenproblem.
    Otherwise torch-fidelity's ``fid_features_to_statistics`` / ``fid_statistics_to_metric`` are used.
    """
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    f1, f2 = np.asarray(feats1, dtype=np.float64), np.asarray(feats2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1] or min(len(f1), len(f2)) < 2:
        raise ValueError(f'frechet_distance needs two [n >= 2, d] feature sets, got {f1.shape} and {f2.shape}')
    (n1, d), n2 = f1.shape, len(f2)
    if min(n1, n2) > d:
        stats = [fid_features_to_statistics(torch.from_numpy(f)) for f in (f1, f2)]
        return float(fid_statistics_to_metric(stats[0], stats[1], verbose=False)[KEY_METRIC_FID])
    a, b = f1 - f1.mean(axis=0), f2 - f2.mean(axis=0)
    diff = f1.mean(axis=0) - f2.mean(axis=0)
    trace_s1, trace_s2 = (a * a).sum() / (n1 - 1), (b * b).sum() / (n2 - 1)
    tr_covmean = np.linalg.svd(a @ b.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    return float(diff @ diff + trace_s1 + trace_s2 - 2 * tr_covmean)


def extract_pool3(paths: Sequence[Path], extractor: TorchFidelityInception, batch_size: int = 50) -> np.ndarray:
    """pool_3 features ``float32 [N, 2048]`` of the images at ``paths``, in order."""
    if '2048' not in extractor.feature_names:
        raise ValueError(f"the FID extractor must provide the '2048' (pool3) feature, it has {extractor.feature_names}")
    feats = []
    for start in range(0, len(paths), batch_size):
        images = [read_rgb(p) for p in paths[start:start + batch_size]]
        feats.append(apply_by_shape(lambda x: extractor.features(x)['2048'], images))
    return np.concatenate(feats)


def real_target_paths(gen_paths: Sequence[Path], real_dir: str | os.PathLike) -> list[Path]:
    """For each generated ``<id_1>_<id_2>`` image, the real image of its target ``id_2`` in ``real_dir``
    (ids matched against the real folder's file stems)."""
    real = image_ids(list_images(real_dir, IMAGE_EXTS))
    return [real[split_pair_name(p.stem, real.keys())[1]] for p in gen_paths]


def _formats(paths: Sequence[Path]) -> str:
    counts = Counter(p.suffix.lower().lstrip('.') for p in paths)
    return ', '.join(f'{n} {ext}' for ext, n in sorted(counts.items()))


def compute_fid(gen_dir: str | os.PathLike, real_dir: str | os.PathLike, *, real_subset: str = 'all',
                weights_path: str | os.PathLike | None = None, device: str | torch.device = 'cpu',
                batch_size: int = 50, extractor: TorchFidelityInception | None = None) -> dict:
    """FID between the generated images in ``gen_dir`` and real images.

    Args:
        gen_dir: generated images (``*.jpg`` / ``*.png``).
        real_dir: real images (e.g. ``datasets/deepfashion/Img/img``).
        real_subset: ``'all'``: every image of ``real_dir``; ``'targets'``: only the target image
            ``<real_dir>/<id_2>.<ext>`` of each generated ``<id_1>_<id_2>`` image (paired protocol).
        weights_path: torch-fidelity Inception weights (``None``: torch hub cache).
        device: where the network runs.
        batch_size: images per forward pass (does not change the result).
        extractor: a ready :class:`TorchFidelityInception` (providing ``'2048'``) to reuse.

    Returns:
        dict with ``fid`` and the protocol: ``n_generated``, ``n_real``, ``generated_dir``,
        ``real_dir``, ``real_subset``, ``formats_generated``, ``formats_real``, ``network``,
        ``weights``, ``resize``, ``protocol`` (one printable line).
    """
    if real_subset not in REAL_SUBSETS:
        raise ValueError(f'unknown real_subset {real_subset!r}; valid: {list(REAL_SUBSETS)}')
    gen_paths = list_images(gen_dir, IMAGE_EXTS)
    if real_subset == 'all':
        real_paths = list_images(real_dir, IMAGE_EXTS)
    else:
        real_paths = real_target_paths(gen_paths, real_dir)
    for name, paths in (('generated', gen_paths), ('real', real_paths)):
        if len(paths) < 2:
            raise ValueError(f'FID needs at least 2 {name} images, got {len(paths)}')
    if extractor is None:
        extractor = TorchFidelityInception(weights_path, device, features=('2048',))

    fid = frechet_distance(extract_pool3(gen_paths, extractor, batch_size),
                           extract_pool3(real_paths, extractor, batch_size))

    resize = 'images at native size resized by the TF1-compatible bilinear resize to 299'
    result = {
        'fid': fid,
        'n_generated': len(gen_paths), 'n_real': len(real_paths),
        'generated_dir': str(gen_dir), 'real_dir': str(real_dir), 'real_subset': real_subset,
        'formats_generated': _formats(gen_paths), 'formats_real': _formats(real_paths),
        'network': f'{extractor.description} pool3', 'weights': str(extractor.weights_path), 'resize': resize,
    }
    result['protocol'] = (f"FID ({result['network']}, real={real_dir} ({real_subset}) N={len(real_paths)} "
                          f"[{result['formats_real']}], generated={gen_dir} N={len(gen_paths)} "
                          f"[{result['formats_generated']}], {resize})")
    if min(len(gen_paths), len(real_paths)) <= FID_FEATURE_DIM:
        result['note'] = (f'fewer than {FID_FEATURE_DIM + 1} images on one side: the covariance is rank '
                          f'deficient and FID is biased upwards; compare only numbers computed with the same N')
    return result
