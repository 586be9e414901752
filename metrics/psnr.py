"""PSNR as the original evaluated it: per image on uint8 images, data range 255."""
from __future__ import annotations

import numpy as np
import torch

from metrics.ssim import as_uint8_images, to_uint8

DATA_RANGE = 255.0


def psnr_batch(a_uint8: torch.Tensor | np.ndarray, b_uint8: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Per-image ``10·log10(255² / MSE)``, ``torch.float64 [N]`` on the images' device.

    a_uint8: generated ``[N, H, W, C]`` uint8; b_uint8: target (the reference; the formula is
    symmetric). MSE over all pixels and channels in float64. Identical images have MSE 0 and give
    ``inf`` (as scikit-image's ``peak_signal_noise_ratio`` does), which makes a batch mean ``inf`` too.
    """
    a = as_uint8_images('a_uint8', a_uint8)
    b = as_uint8_images('b_uint8', b_uint8).to(a.device)
    if a.shape != b.shape:
        raise ValueError(f'psnr_batch: image shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}')
    mse = (a.to(torch.float64) - b.to(torch.float64)).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(DATA_RANGE ** 2 / mse)


class PSNR:
    """Batch-mean PSNR: ``PSNR()(images [N, 3, H, W] in [-1, 1], targets) -> float``."""

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> float:
        return float(psnr_batch(to_uint8(images), to_uint8(targets)).mean())
