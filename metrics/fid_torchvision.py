"""FID as GFLA's metric script computes it: torchvision's ImageNet Inception-v3 and an early pytorch-fid.

GFLA (Global-Flow-Local-Attention, ``script/metrics.py`` and ``script/inception.py``) copied pytorch-fid as it
was before February 2019:

* network: torchvision's ``inception_v3`` ImageNet weights (``inception_v3_google-1a9a5a14.pth`` then; torchvision
  >= 0.10 ships the same network as ``inception_v3_google-0cc3c7bd.pth``), run block by block from
  ``Conv2d_1a_3x3`` to ``Mixed_7c`` and an adaptive average pool: 2048 features. torchvision's own
  ``transform_input`` is not applied (only the sub-modules run);
* input: the file's RGB pixels as ``float32(v) / 255`` in [0, 1], resized to 299x299 by bilinear interpolation
  (``align_corners=False``, no antialiasing), then the early pytorch-fid "normalisation"
  ``x_c · (std_c / 0.5) + (mean_c - 0.5) / 0.5`` with the ImageNet mean/std, which maps [0, 1] to about
  [-0.03, 0.43] (R), [-0.09, 0.36] (G), [-0.19, 0.26] (B) instead of [-1, 1] (later pytorch-fid versions
  corrected it to ``2x - 1`` and then changed the weights, so their numbers differ from GFLA's);
* statistics: float64 mean and ``np.cov(rowvar=False)``; distance ``|mu1 - mu2|² + tr(S1 + S2 - 2 sqrtm(S1 S2))``
  with ``scipy.linalg.sqrtm``, ``1e-6`` added to both diagonals if the square root is not finite, a complex
  result accepted when its diagonal's imaginary part is below 1e-3 (:func:`frechet_distance_sqrtm`);
* batches of 64 with the remainder dropped (see :mod:`metrics.averaging`; applied by the caller).

Weights are read from a local file only (``weights_only=True``, strict keys); nothing is downloaded.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from scipy import linalg

from metrics.fid import frechet_distance
from metrics.image_folder import existing_file
from util.weights import load_state_dict_compat, safe_torch_load

# torchvision's Inception-v3 ImageNet weights: today's file name first, then the name torchvision <= 0.9 used.
TORCHVISION_INCEPTION_FILES = ('inception_v3_google-0cc3c7bd.pth', 'inception_v3_google-1a9a5a14.pth')
TORCHVISION_URL = 'https://download.pytorch.org/models/'
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURE_DIM = 2048
INPUT_SIZE = 299


def find_torchvision_inception_weights(weights_path: str | os.PathLike | None = None) -> Path:
    """``weights_path`` if given, else the first of :data:`TORCHVISION_INCEPTION_FILES` in the torch hub cache.

    Raises:
        FileNotFoundError: naming the file, its URL and where to put it.
    """
    cache = Path(torch.hub.get_dir()) / 'checkpoints'
    how = (f'Download {TORCHVISION_URL}{TORCHVISION_INCEPTION_FILES[0]} and put it at '
           f'{cache / TORCHVISION_INCEPTION_FILES[0]} (torch hub cache), or pass its path with --fid_weights.')
    what = f'torchvision Inception-v3 ImageNet weights ({TORCHVISION_INCEPTION_FILES[0]}) for the GFLA FID'
    if weights_path is not None:
        return existing_file(weights_path, what, how)
    for name in TORCHVISION_INCEPTION_FILES:
        if (cache / name).is_file():
            return cache / name
    raise FileNotFoundError(f'{what} not found; tried {[str(cache / n) for n in TORCHVISION_INCEPTION_FILES]}. {how}')


class TorchvisionInceptionPool(nn.Module):
    """torchvision Inception-v3 up to the 2048-d average pool, with GFLA's input mapping.

    ``forward(x)``: ``float32 [N, 3, H, W]`` in [0, 1] -> ``[N, 2048]``. ``features(images)``: ``uint8
    [N, H, W, 3]`` -> ``float64 [N, 2048]`` numpy.
    """

    def __init__(self, weights_path: str | os.PathLike | None = None, device: str | torch.device = 'cpu') -> None:
        super().__init__()
        self.weights_path = find_torchvision_inception_weights(weights_path)
        net = torchvision.models.Inception3(num_classes=1000, aux_logits=True, transform_input=False,
                                            init_weights=False)
        load_state_dict_compat(net, safe_torch_load(self.weights_path, 'torchvision Inception-v3 weights'),
                               source=self.weights_path)
        self.blocks = nn.Sequential(
            net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, nn.MaxPool2d(kernel_size=3, stride=2),
            net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2),
            net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d,
            net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, nn.AdaptiveAvgPool2d(output_size=(1, 1)))
        # The constants in double precision, rounded once to float32, as Python computed them in the original.
        scale = (torch.tensor(IMAGENET_STD, dtype=torch.float64) / 0.5).float()
        shift = ((torch.tensor(IMAGENET_MEAN, dtype=torch.float64) - 0.5) / 0.5).float()
        self.register_buffer('scale', scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer('shift', shift.view(1, 3, 1, 1), persistent=False)
        self.device = torch.device(device)
        self.description = f'torchvision {torchvision.__version__} Inception-v3 ({self.weights_path.name}) pool 2048'
        self.eval().requires_grad_(False).to(self.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode='bilinear', align_corners=False)
        x = x * self.scale + self.shift
        return self.blocks(x).flatten(1)

    @torch.no_grad()
    def features(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        x = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images)
        if x.dtype != torch.uint8 or x.dim() != 4 or x.size(3) != 3:
            raise ValueError(f'features expects uint8 [N, H, W, 3] images, got {x.dtype} {tuple(x.shape)}')
        x = x.to(self.device).permute(0, 3, 1, 2).to(torch.float32) / 255.0
        return self(x).double().cpu().numpy()


def frechet_distance_sqrtm(feats1: np.ndarray, feats2: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance of two feature sets ``[n1, d]``, ``[n2, d]`` as the early pytorch-fid computed it.

    With fewer images than dimensions on a side (``min(n1, n2) <= d``) the covariances are singular and
    ``sqrtm`` of their product is numerically unreliable; the exact low-rank formula of
    :func:`metrics.fid.frechet_distance` is used instead (the quantity is the same).
    """
    f1, f2 = np.asarray(feats1, dtype=np.float64), np.asarray(feats2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1] or min(len(f1), len(f2)) < 2:
        raise ValueError(f'FID needs two [n >= 2, d] feature sets, got {f1.shape} and {f2.shape}')
    if min(len(f1), len(f2)) <= f1.shape[1]:
        return frechet_distance(f1, f2)
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    sigma1, sigma2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f'FID: the matrix square root has an imaginary component of '
                             f'{np.max(np.abs(covmean.imag)):.3g}; the feature statistics are degenerate')
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))
