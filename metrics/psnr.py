"""PSNR as the original evaluated it (per image on uint8 images, data range 255), and GFLA's float variant."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metrics.ssim import as_uint8_images, to_uint8

DATA_RANGE = 255.0
PSNR_SCALINGS = ('uint8', 'unit_float32')


@dataclass(frozen=True)
class PSNRSettings:
    """How PSNR sees the images.

    scaling: ``'uint8'``: the values 0..255, MSE in float64, data range 255 (the original's
    ``compare_psnr`` on uint8 images); ``'unit_float32'``: ``float32(v) / 255``, differences and squares in
    float32, their mean in float64, data range 1 (GFLA's ``compare_psnr(gt, pred, data_range=1)`` on float32
    images). The two agree to ~1e-6 dB; the variant exists so a protocol reproduces its source exactly.
    """
    scaling: str = 'uint8'

    def __post_init__(self) -> None:
        if self.scaling not in PSNR_SCALINGS:
            raise ValueError(f'PSNR scaling {self.scaling!r} is not one of {list(PSNR_SCALINGS)}')


def psnr_batch(a_uint8: torch.Tensor | np.ndarray, b_uint8: torch.Tensor | np.ndarray,
               settings: PSNRSettings = PSNRSettings()) -> torch.Tensor:
    """Per-image ``10·log10(R² / MSE)``, ``torch.float64 [N]`` on the images' device.

    a_uint8: generated ``[N, H, W, C]`` uint8; b_uint8: target (the reference; the formula is
    symmetric). MSE over all pixels and channels. Identical images have MSE 0 and give
    ``inf`` (as scikit-image's ``peak_signal_noise_ratio`` does), which makes a batch mean ``inf`` too.
    """
    a = as_uint8_images('a_uint8', a_uint8)
    b = as_uint8_images('b_uint8', b_uint8).to(a.device)
    if a.shape != b.shape:
        raise ValueError(f'psnr_batch: image shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}')
    if settings.scaling == 'uint8':
        mse = (a.to(torch.float64) - b.to(torch.float64)).pow(2).flatten(1).mean(dim=1)
        return 10 * torch.log10(DATA_RANGE ** 2 / mse)
    diff = a.to(torch.float32) / 255.0 - b.to(torch.float32) / 255.0
    mse = diff.square().flatten(1).to(torch.float64).mean(dim=1)
    return 10 * torch.log10(1.0 / mse)


class PSNR:
    """Batch-mean PSNR: ``PSNR()(images [N, 3, H, W] in [-1, 1], targets) -> float``."""

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> float:
        return float(psnr_batch(to_uint8(images), to_uint8(targets)).mean())
