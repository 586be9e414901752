"""SSIM and masked SSIM as the original evaluated them.

Images in ``[-1, 1]`` are quantised to uint8 by truncation, then compared per image with
scikit-image's ``structural_similarity(a, b, channel_axis=-1, data_range=255)`` defaults: 7x7
uniform window, K1 = 0.01, K2 = 0.03, sample covariance (49/48), per-channel SSIM maps averaged
after cropping a 3-pixel border. :func:`ssim_batch` reproduces that in batched float64 torch on
the input's device; :func:`ssim_skimage` is the reference loop over scikit-image.

:class:`SSIM` returns the float64 batch mean as a Python float. (The original stored per-batch
means as float32 before its float64 mean over batches; that rounding, if wanted for bit-level
agreement, belongs to the code that accumulates batches, ``training/evaluation.py``.)
"""
from __future__ import annotations

import numpy as np
import torch

WIN_SIZE = 7
K1 = 0.01
K2 = 0.03
DATA_RANGE = 255.0


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """img: ``[N, 3, H, W]`` float in ``[-1, 1]`` -> ``torch.uint8 [N, H, W, 3]`` on the same device.

    ``(x + 1)·127.5``, clipped to ``[0, 255]``, then truncated (not rounded), computed in the
    input's float dtype like the original's numpy conversion.
    """
    if img.dim() != 4 or img.size(1) != 3 or not img.is_floating_point():
        raise ValueError(f'to_uint8 expects a float [N, 3, H, W] tensor in [-1, 1], got {img.dtype} '
                         f'{tuple(img.shape)}')
    if torch.isnan(img).any():
        raise ValueError('to_uint8: the image contains NaN values; the generator output is broken')
    return ((img.detach() + 1) * 127.5).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def as_uint8_images(name: str, x: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise ValueError(f'{name} must be uint8 [N, H, W, C] (see to_uint8), got {x.dtype} {tuple(x.shape)}')
    return x


def _mask_nhw1(mask: torch.Tensor | np.ndarray, shape: torch.Size) -> torch.Tensor:
    """``[N, 1, H, W]`` or ``[N, H, W]`` 0/1 mask -> uint8 ``[N, H, W, 1]`` for image ``shape [N, H, W, C]``."""
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(mask)
    n, h, w, _ = shape
    if mask.dim() == 4 and mask.size(1) == 1:
        mask = mask[:, 0]
    if tuple(mask.shape) != (n, h, w):
        raise ValueError(f'mask must be [N, 1, H, W] or [N, H, W] = {(n, h, w)} for images {tuple(shape)}, got '
                         f'{tuple(mask.shape)}')
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError('mask must contain only 0 and 1 (it is multiplied into uint8 images)')
    return mask.to(torch.uint8).unsqueeze(-1)


def apply_mask(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | np.ndarray | None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero both uint8 images ``[N, H, W, C]`` outside ``mask`` (masked SSIM)."""
    if mask is None:
        return a, b
    m = _mask_nhw1(mask, a.shape).to(a.device)
    return a * m, b * m


def _box_sum(x: torch.Tensor, size: int, reflect_pad: bool) -> torch.Tensor:
    """Sums over ``size x size`` windows of ``[N, C, H, W]``.

    reflect_pad=True: a window centred on every pixel, the borders padded in scipy.ndimage's
    'reflect' mode (``c b a | a b c … x y z | z y x``, edge repeated) as
    ``scipy.ndimage.uniform_filter`` (used by skimage) does -> ``[N, C, H, W]``.
    reflect_pad=False: only windows fully inside the image -> ``[N, C, H - size + 1, W - size + 1]``,
    which is exactly the region the SSIM mean keeps after cropping its ``size // 2`` border.

    Separable, by differences of cumulative sums along the last axis, transposing between the two
    passes. Integer inputs give exact integer sums.
    """
    pad = size // 2
    for _ in range(2):
        n = x.size(-1)
        parts = [torch.zeros_like(x[..., :1]), x]
        if reflect_pad:
            parts = [parts[0], x[..., :pad].flip(-1), x, x[..., n - pad:].flip(-1)]
        c = torch.cat(parts, dim=-1).cumsum_(-1)
        m = c.size(-1) - size
        x = (c[..., size:] - c[..., :m]).transpose(-1, -2)
    return x


def _ssim_from_images(a: torch.Tensor, b: torch.Tensor, full: bool) -> torch.Tensor:
    """SSIM map (float64 ``[N, C, H', W']``) of uint8 ``[N, H, W, C]`` images: the full map
    (``full=True``) or only its border-cropped interior."""
    n, h, w, c = a.shape
    if min(h, w) < WIN_SIZE:
        raise ValueError(f'SSIM needs images of at least {WIN_SIZE}x{WIN_SIZE} pixels, got {h}x{w}')
    # The window sums of x, y, x², y², xy are exact integers: accumulate them in integers (int32
    # while the largest cumulative sum, (side + 6)·7·255², cannot overflow), which is exactly what
    # float64 accumulation would give and several times faster; everything after is float64.
    int_dtype = torch.int32 if (max(h, w) + WIN_SIZE) * WIN_SIZE * 255 ** 2 < 2 ** 31 else torch.int64
    x = a.permute(0, 3, 1, 2).to(int_dtype)
    y = b.permute(0, 3, 1, 2).to(int_dtype)
    sums = _box_sum(torch.cat([x, y, x * x, y * y, x * y], dim=1), WIN_SIZE, reflect_pad=full)
    ux, uy, uxx, uyy, uxy = (sums.to(torch.float64) / WIN_SIZE ** 2).split(c, dim=1)
    np_ = WIN_SIZE ** 2
    cov_norm = np_ / (np_ - 1)  # sample covariance
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (K1 * DATA_RANGE) ** 2
    c2 = (K2 * DATA_RANGE) ** 2
    num = (2 * ux * uy + c1) * (2 * vxy + c2)
    den = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    return num / den


def ssim_map(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Full per-channel SSIM map, float64 ``[N, C, H, W]`` (skimage ``full=True``, per channel,
    borders included). a, b: ``[N, H, W, C]`` uint8."""
    a = as_uint8_images('a', a)
    b = as_uint8_images('b', b).to(a.device)
    if a.shape != b.shape:
        raise ValueError(f'ssim_map: image shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}')
    return _ssim_from_images(a, b, full=True)


def ssim_batch(a_uint8: torch.Tensor | np.ndarray, b_uint8: torch.Tensor | np.ndarray,
               mask: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
    """Per-image SSIM, ``torch.float64 [N]`` on the images' device.

    a_uint8, b_uint8: ``[N, H, W, 3]`` uint8 (output, target; SSIM is symmetric).
    mask: optional ``[N, 1, H, W]`` / ``[N, H, W]`` 0/1; multiplied into both images, then SSIM
    over the full image (masked SSIM).
    Matches ``skimage.metrics.structural_similarity(a, b, channel_axis=-1, data_range=255)`` to
    ~1e-14 (the window sums are exact; the remaining float64 arithmetic is the same formula).
    """
    a = as_uint8_images('a_uint8', a_uint8)
    b = as_uint8_images('b_uint8', b_uint8).to(a.device)
    if a.shape != b.shape:
        raise ValueError(f'ssim_batch: image shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}')
    a, b = apply_mask(a, b, mask)
    # skimage averages each channel's border-cropped map, then the channels; equal sizes make it
    # one mean. Only the interior (windows fully inside the image) is computed.
    return _ssim_from_images(a, b, full=False).mean(dim=(1, 2, 3))


def ssim_skimage(a_uint8: torch.Tensor | np.ndarray, b_uint8: torch.Tensor | np.ndarray,
                 mask: torch.Tensor | np.ndarray | None = None) -> np.ndarray:
    """Reference: the same as :func:`ssim_batch` through a loop over scikit-image. Returns float64 ``[N]``."""
    from skimage.metrics import structural_similarity

    a = as_uint8_images('a_uint8', a_uint8).cpu()
    b = as_uint8_images('b_uint8', b_uint8).cpu()
    if a.shape != b.shape:
        raise ValueError(f'ssim_skimage: image shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}')
    a, b = apply_mask(a, b, None if mask is None else (mask.cpu() if isinstance(mask, torch.Tensor) else mask))
    a_np, b_np = a.numpy(), b.numpy()
    return np.array([structural_similarity(x, y, channel_axis=-1, data_range=DATA_RANGE)
                     for x, y in zip(a_np, b_np)], dtype=np.float64)


class SSIM:
    """Batch-mean SSIM of generated images against targets.

    ``SSIM()(images [N, 3, H, W] in [-1, 1], targets, mask=None) -> float``; ``mask`` ([N, 1, H, W]
    0/1, e.g. the pose mask) gives masked SSIM. ``backend='torch'`` (batched, on the images'
    device) or ``'skimage'`` (reference loop on the CPU).
    """

    BACKENDS = ('torch', 'skimage')

    def __init__(self, backend: str = 'torch') -> None:
        if backend not in self.BACKENDS:
            raise ValueError(f'SSIM: unknown backend {backend!r}; valid: {list(self.BACKENDS)}')
        self.backend = backend

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> float:
        a, b = to_uint8(images), to_uint8(targets)
        if self.backend == 'torch':
            return float(ssim_batch(a, b, mask).mean())
        return float(ssim_skimage(a, b, mask).mean())
