"""How per-image metric values become one number: the plain mean, the original's mean of per-batch means, and
GFLA's dropped remainder.

* ``'mean'``: float64 mean over all images (GFLA's SSIM / PSNR, ``np.mean`` over pairs).
* ``'batch_means'``: the images in order, cut into batches of ``batch_size`` (the last one may be smaller and is
  kept), each batch's mean rounded to float32 (the original stored it as a float32 tensor), then the float64 mean
  of the batch means, so the last partial batch weighs as much as a full one (the original's test pass, batch 8).
* Dropped remainder (:func:`n_used`): GFLA's FID and LPIPS run batches of 64 and never run the incomplete last
  batch: ``b = min(batch_size, N)`` (its scripts shrink the batch to the data size) and only the first
  ``(N // b) · b`` images count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AVERAGING_RULES = ('mean', 'batch_means')


@dataclass(frozen=True)
class AveragingSettings:
    """``rule`` (``'mean'`` / ``'batch_means'``), and for ``'batch_means'`` the ``batch_size`` and whether each batch
    mean is rounded to float32 (``float32_batch_means``)."""
    rule: str = 'mean'
    batch_size: int = 8
    float32_batch_means: bool = True

    def __post_init__(self) -> None:
        if self.rule not in AVERAGING_RULES:
            raise ValueError(f'averaging rule {self.rule!r} is not one of {list(AVERAGING_RULES)}')
        if self.batch_size < 1:
            raise ValueError(f'averaging batch_size must be >= 1, got {self.batch_size}')


def average(values: np.ndarray, settings: AveragingSettings) -> float:
    """One number from per-image values ``[N]`` (in the protocol's order)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f'average needs a non-empty 1-d array of per-image values, got shape {values.shape}')
    if settings.rule == 'mean':
        return float(values.mean())
    bs = settings.batch_size
    means = np.array([values[i:i + bs].mean() for i in range(0, values.size, bs)])
    if settings.float32_batch_means:
        means = means.astype(np.float32).astype(np.float64)
    return float(means.mean())


def n_used(n: int, batch_size: int, drop_remainder: bool) -> int:
    """How many of ``n`` images a batch-wise metric uses: all, or GFLA's ``(n // b) · b``, ``b = min(batch, n)``."""
    if not drop_remainder or n == 0:
        return n
    b = min(batch_size, n)
    return (n // b) * b
