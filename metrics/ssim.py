"""SSIM and masked SSIM as the original evaluated them, and the SSIM variants of later protocols.

Images in ``[-1, 1]`` are quantised to uint8 by truncation, then compared per image with
scikit-image's ``structural_similarity(a, b, channel_axis=-1, data_range=255)`` defaults: 7x7
uniform window, K1 = 0.01, K2 = 0.03, sample covariance (49/48), per-channel SSIM maps averaged
after cropping a 3-pixel border. :func:`ssim_batch` reproduces that in batched float64 torch on
the input's device; :func:`ssim_skimage` is the reference loop over scikit-image.

:class:`SSIM` returns the float64 batch mean as a Python float. (The original stored per-batch
means as float32 before its float64 mean over batches; that rounding, if wanted for bit-level
agreement, belongs to the code that accumulates batches, ``training/evaluation.py``.)

:class:`SSIMSettings` describes any variant in scikit-image's terms (window size, Gaussian weights and their
sigma/truncation, how the uint8 images are scaled, the data-range rule, sample or population covariance) and
:func:`ssim_configurable` computes it; the evaluation protocols (``metrics/protocols.py``) use it for GFLA's
51x51 uniform SSIM on [0, 1] and the Gaussian SSIM of PG2 / PATN / GFLA / PIDM.
"""
from __future__ import annotations

from dataclasses import dataclass

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


# --------------------------------------------------------------------------------------------------
# Configurable SSIM (the variants of later evaluation protocols)
# --------------------------------------------------------------------------------------------------
SCALINGS = ('uint8', 'unit_float32', 'unit_float32_x255')
DATA_RANGE_RULES = ('full', 'generated_range')
CHANNEL_RULES = ('per_channel_mean',)


@dataclass(frozen=True)
class SSIMSettings:
    """One SSIM variant, in the terms of scikit-image's ``structural_similarity``.

    Attributes:
        window: side of the window. Uniform windows: the filter size. Gaussian windows: only the border crop
            ``(window - 1) // 2``; ``None`` derives it from the filter radius as scikit-image >= 0.15 does
            (``2 * int(3.5 * sigma + 0.5) + 1``: 11 for sigma 1.5, 9 for sigma 1.2).
        gaussian: Gaussian weights (``gaussian_weights=True``) instead of a uniform window.
        sigma: standard deviation of the Gaussian, in pixels.
        truncate: Gaussian filter radius ``int(truncate * sigma + 0.5)`` (scipy's ``gaussian_filter``):
            3.5 in scikit-image >= 0.15 (11 taps for sigma 1.5), scipy's default 4.0 in 0.14 (13 taps, while the
            crop stays 5 pixels).
        scaling: how the uint8 images become the float images that are compared:
            ``'uint8'`` the values 0..255 as they are (the original's uint8 call);
            ``'unit_float32'`` ``float32(v) / 255`` in [0, 1] (GFLA's ``ssim``);
            ``'unit_float32_x255'`` ``(float32(v) / 255) * 255``, in float32 and not re-quantised (GFLA's
            ``ssim_256``). Everything after is float64, as in scikit-image before 0.19.
        data_range: ``'full'``: 255 for ``uint8`` / ``unit_float32_x255``, 1 for ``unit_float32``;
            ``'generated_range'``: max - min of the generated image over all channels (PG2 / PATN / GFLA's
            ``ssim_256``), so the constants C1, C2 depend on each generated image.
        sample_covariance: divide the window (co)variances by ``NP - 1`` (``NP = window**2``), scikit-image's
            default, instead of ``NP`` (Wang et al.).
        channels: ``'per_channel_mean'``: SSIM of each colour channel, averaged (``channel_axis=-1``).
        k1, k2: the constants K1, K2.
    """
    window: int | None = WIN_SIZE
    gaussian: bool = False
    sigma: float = 1.5
    truncate: float = 3.5
    scaling: str = 'uint8'
    data_range: str = 'full'
    sample_covariance: bool = True
    channels: str = 'per_channel_mean'
    k1: float = K1
    k2: float = K2

    def __post_init__(self) -> None:
        if self.scaling not in SCALINGS:
            raise ValueError(f'SSIM scaling {self.scaling!r} is not one of {list(SCALINGS)}')
        if self.data_range not in DATA_RANGE_RULES:
            raise ValueError(f'SSIM data_range rule {self.data_range!r} is not one of {list(DATA_RANGE_RULES)}')
        if self.channels not in CHANNEL_RULES:
            raise ValueError(f'SSIM channel rule {self.channels!r} is not one of {list(CHANNEL_RULES)}')
        if self.window is not None and (self.window < 1 or self.window % 2 == 0):
            raise ValueError(f'SSIM window must be a positive odd number, got {self.window}')
        if self.window is None and not self.gaussian:
            raise ValueError('SSIM: a uniform window needs its size (window)')
        if self.gaussian and (self.sigma <= 0 or self.truncate <= 0):
            raise ValueError(f'SSIM: sigma and truncate must be positive, got {self.sigma}, {self.truncate}')

    @property
    def filter_radius(self) -> int:
        """Half-width of the filter: ``int(truncate * sigma + 0.5)`` (Gaussian) or ``window // 2``."""
        return int(self.truncate * self.sigma + 0.5) if self.gaussian else self.window // 2

    @property
    def crop_window(self) -> int:
        """The ``win_size`` whose ``(win_size - 1) // 2`` border is cropped before the mean."""
        if self.window is not None:
            return self.window
        return 2 * int(3.5 * self.sigma + 0.5) + 1


def _scale(x: torch.Tensor, scaling: str) -> torch.Tensor:
    """uint8 ``[N, H, W, C]`` -> float64 ``[N, C, H, W]`` per ``scaling`` (float32 steps kept as float32)."""
    x = x.permute(0, 3, 1, 2)
    if scaling == 'uint8':
        return x.to(torch.float64)
    unit = x.to(torch.float32) / 255.0
    if scaling == 'unit_float32':
        return unit.to(torch.float64)
    return (unit * 255.0).to(torch.float64)


def _gaussian_taps(sigma: float, radius: int, dtype: torch.dtype) -> torch.Tensor:
    """scipy.ndimage's normalised Gaussian weights for offsets ``-radius..radius``."""
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 / sigma ** 2 * offsets ** 2)
    return (taps / taps.sum()).to(dtype)


def _reflect_pad_last(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last axis in scipy.ndimage's 'reflect' mode (``c b a | a b c``, the edge repeated)."""
    n = x.size(-1)
    if pad > n:
        raise ValueError(f'SSIM filter radius {pad} exceeds the image side {n}')
    return torch.cat([x[..., :pad].flip(-1), x, x[..., n - pad:].flip(-1)], dim=-1)


def _gaussian_filter(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian of ``[N, C, H, W]`` with reflected borders, same size out (scipy ``gaussian_filter``)."""
    radius = (taps.numel() - 1) // 2
    for _ in range(2):
        padded = _reflect_pad_last(x, radius)
        width = x.size(-1)
        out = taps[0] * padded[..., :width]
        for k in range(1, taps.numel()):
            out = out + taps[k] * padded[..., k:k + width]
        x = out.transpose(-1, -2)
    return x


def _data_range(gen: torch.Tensor, settings: SSIMSettings) -> torch.Tensor:
    """float64 ``[N, 1, 1, 1]`` data range per image; ``gen`` is the generated uint8 ``[N, H, W, C]``."""
    n = gen.size(0)
    if settings.data_range == 'full':
        value = 1.0 if settings.scaling == 'unit_float32' else DATA_RANGE
        return torch.full((n, 1, 1, 1), value, dtype=torch.float64, device=gen.device)
    # Max - min of the scaled generated image, taken in the precision the protocol's images had.
    scaled = gen.to(torch.float32) if settings.scaling != 'uint8' else gen.to(torch.float64)
    if settings.scaling == 'unit_float32':
        scaled = scaled / 255.0
    elif settings.scaling == 'unit_float32_x255':
        scaled = (scaled / 255.0) * 255.0
    flat = scaled.flatten(1)
    rng = (flat.amax(dim=1) - flat.amin(dim=1)).to(torch.float64)
    constant = torch.nonzero(rng == 0).flatten().tolist()
    if constant:
        raise ValueError(f'SSIM data_range rule generated_range: generated images {constant} of the batch are '
                         f'constant (max == min), so the data range is 0 and SSIM is undefined')
    return rng.view(n, 1, 1, 1)


def ssim_map_configurable(gen_uint8: torch.Tensor | np.ndarray, tgt_uint8: torch.Tensor | np.ndarray,
                          settings: SSIMSettings) -> torch.Tensor:
    """Border-cropped per-channel SSIM maps, float64 ``[N, C, H - 2p, W - 2p]`` with ``p = (crop_window - 1) // 2``.

    gen_uint8, tgt_uint8: ``[N, H, W, C]`` uint8, generated and target (the order matters only for the
    ``generated_range`` data-range rule).
    """
    a = as_uint8_images('gen_uint8', gen_uint8)
    b = as_uint8_images('tgt_uint8', tgt_uint8).to(a.device)
    if a.shape != b.shape:
        raise ValueError(f'SSIM: image shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}')
    h, w = a.shape[1:3]
    crop = (settings.crop_window - 1) // 2
    if min(h, w) < settings.crop_window or (not settings.gaussian and min(h, w) < settings.window):
        raise ValueError(f'SSIM with a {settings.crop_window}x{settings.crop_window} window needs images of at least '
                         f'that size, got {h}x{w}')
    x, y = _scale(a, settings.scaling), _scale(b, settings.scaling)
    c = x.size(1)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    if settings.gaussian:
        means = _gaussian_filter(stack, _gaussian_taps(settings.sigma, settings.filter_radius, stack.dtype).to(
            stack.device))
        means = means[..., crop:h - crop, crop:w - crop]
        n_window = settings.crop_window ** 2
    else:
        # The crop keeps exactly the windows that lie fully inside the image, so no padding is needed.
        means = _box_sum(stack, settings.window, reflect_pad=False) / settings.window ** 2
        n_window = settings.window ** 2
    ux, uy, uxx, uyy, uxy = means.split(c, dim=1)
    cov_norm = n_window / (n_window - 1) if settings.sample_covariance else 1.0
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    data_range = _data_range(a, settings)
    c1 = (settings.k1 * data_range) ** 2
    c2 = (settings.k2 * data_range) ** 2
    num = (2 * ux * uy + c1) * (2 * vxy + c2)
    den = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    return num / den


def ssim_configurable(gen_uint8: torch.Tensor | np.ndarray, tgt_uint8: torch.Tensor | np.ndarray,
                      settings: SSIMSettings = SSIMSettings(), mask: torch.Tensor | np.ndarray | None = None
                      ) -> torch.Tensor:
    """Per-image SSIM of a variant, ``torch.float64 [N]`` on the images' device.

    gen_uint8, tgt_uint8: ``[N, H, W, 3]`` uint8 (generated, target). mask: optional ``[N, 1, H, W]`` 0/1,
    multiplied into both uint8 images first (masked SSIM). The default settings are the original's SSIM and run
    the exact integer path of :func:`ssim_batch`; every other variant runs the float64 path, which matches
    ``skimage.metrics.structural_similarity`` called with the same parameters on the float64 images to ~1e-12.
    """
    a = as_uint8_images('gen_uint8', gen_uint8)
    b = as_uint8_images('tgt_uint8', tgt_uint8).to(a.device)
    if a.shape != b.shape:
        raise ValueError(f'SSIM: image shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}')
    a, b = apply_mask(a, b, mask)
    if settings == SSIMSettings():
        return _ssim_from_images(a, b, full=False).mean(dim=(1, 2, 3))
    return ssim_map_configurable(a, b, settings).mean(dim=(1, 2, 3))
