"""Dense correspondence files (``.corr``), correspondence -> flow, warping along a flow, and flow colouring.

``.corr`` layout (little-endian, no magic): ``int32 W``, ``int32 H``, ``H*W*2 float32`` (u, v) in
row-major ``(H, W, 2)`` order, ``H*W uint8`` visibility labels in row-major ``(H, W)`` order; file size
``8 + 9*H*W`` bytes. For file ``<id2>_<id1>.corr`` pixel ``(x, y)`` of image 2 corresponds to ``(u, v)``
in image 1; visibility 0 = visible in both, 1 = human but hidden in image 1, 2 = background.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from util.io import atomic_write

PathLike = str | os.PathLike

_HEADER_DTYPE = np.dtype('<i4')
_CORR_DTYPE = np.dtype('<f4')
_VIS_DTYPE = np.dtype('u1')
# Far above any image this project handles (256x256); a larger header means a corrupt file.
MAX_CORR_SIDE = 1 << 15
VIS_LABELS = (0, 1, 2)
# The flow networks regress flow / FLOW_SCALE: the models multiply their output by FLOW_SCALE to get pixels, and
# the flow losses compare at the network's scale (DIV_FLOW = 1 / FLOW_SCALE, the same double as the original's
# literal 0.05).
FLOW_SCALE = 20.0
DIV_FLOW = 1.0 / FLOW_SCALE


class CorrFileError(ValueError):
    """A ``.corr`` file is missing, truncated or malformed. The message names the file.

    ``kind`` says what is wrong, for reports that group problems: ``missing``, ``unreadable``, ``truncated``,
    ``oversized``, ``malformed header``, ``bad visibility labels``, ``non-finite`` (or ``other``).
    """

    def __init__(self, message: str, kind: str = 'other') -> None:
        super().__init__(message)
        self.kind = kind


def corr_file_size(height: int, width: int) -> int:
    """Size in bytes of a ``.corr`` file for an ``height x width`` image: ``8 + 9*H*W``."""
    return 8 + 9 * height * width


def read_corr(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``.corr`` file.

    Returns:
        corr: ``np.float32 [H, W, 2]``, (u, v) source-image coordinates of each target pixel.
        vis: ``np.uint8 [H, W, 1]`` with labels in {0, 1, 2}.

    Raises:
        CorrFileError: missing file, short header, non-positive or absurd W/H, file size not equal
            to ``8 + 9*H*W``, visibility labels outside {0, 1, 2}, or NaN / inf correspondence values.
    """
    path = Path(path)
    try:
        # Read straight into a bytearray: the returned arrays are writable views of it, no extra copy.
        with open(path, 'rb') as f:
            data = bytearray(os.fstat(f.fileno()).st_size)
            del data[f.readinto(data):]  # a file shrunk meanwhile; the size check below reports it
    except FileNotFoundError as e:
        raise CorrFileError(f'{path}: .corr file not found', 'missing') from e
    except OSError as e:
        raise CorrFileError(f'{path}: cannot read .corr file ({e})', 'unreadable') from e
    if len(data) < 8:
        raise CorrFileError(f'{path}: truncated .corr file, {len(data)} bytes is shorter than the 8-byte '
                            f'header (int32 width, int32 height)', 'truncated')
    width, height = (int(v) for v in np.frombuffer(data, dtype=_HEADER_DTYPE, count=2))
    if not (0 < width <= MAX_CORR_SIDE and 0 < height <= MAX_CORR_SIDE):
        raise CorrFileError(f'{path}: malformed .corr header, width={width} height={height} '
                            f'(each must be in [1, {MAX_CORR_SIDE}])', 'malformed header')
    expected = corr_file_size(height, width)
    if len(data) != expected:
        kind = 'truncated' if len(data) < expected else 'oversized'
        raise CorrFileError(f'{path}: {kind} .corr file, {len(data)} bytes but a {width}x{height} header '
                            f'needs 8 + 9*H*W = {expected} bytes', kind)
    n = height * width
    corr = np.frombuffer(data, dtype=_CORR_DTYPE, count=2 * n, offset=8).reshape(height, width, 2)
    vis = np.frombuffer(data, dtype=_VIS_DTYPE, count=n, offset=8 + 8 * n).reshape(height, width, 1)
    if vis.max() > 2:  # cheaper than masking every pixel; the masked values only for the message
        raise CorrFileError(f'{path}: visibility labels must be 0, 1 or 2, found {np.unique(vis[vis > 2]).tolist()}',
                            'bad visibility labels')
    # A NaN here would turn the flow targets, and from them the loss and the model, into NaN. The float64 sum is
    # finite exactly when every value is (it cannot overflow for float32 inputs) and needs no mask.
    if not np.isfinite(corr.sum(dtype=np.float64)):
        finite = np.isfinite(corr)
        y, x, _ = np.argwhere(~finite)[0]
        raise CorrFileError(f'{path}: {int((~finite).sum())} non-finite (NaN or inf) correspondence value(s), first '
                            f'at pixel (x={x}, y={y}); the file is corrupt, regenerate or re-download it', 'non-finite')
    return corr.astype(np.float32, copy=False), vis


def write_corr(path: PathLike, corr: np.ndarray, vis: np.ndarray) -> Path:
    """Write a ``.corr`` file (atomic, parent folders created).

    Args:
        corr: ``[H, W, 2]`` (u, v) source coordinates; stored as little-endian float32.
        vis: ``[H, W]`` or ``[H, W, 1]`` integer labels in {0, 1, 2}; stored as uint8.
    """
    corr = np.asarray(corr)
    vis = np.asarray(vis)
    if corr.ndim != 3 or corr.shape[2] != 2 or corr.shape[0] == 0 or corr.shape[1] == 0:
        raise ValueError(f'write_corr({path}): corr must be [H, W, 2], got shape {corr.shape}')
    height, width = corr.shape[:2]
    if vis.shape not in ((height, width), (height, width, 1)):
        raise ValueError(f'write_corr({path}): vis must be [{height}, {width}] or [{height}, {width}, 1] '
                         f'to match corr, got shape {vis.shape}')
    if max(height, width) > MAX_CORR_SIDE:
        raise ValueError(f'write_corr({path}): image {width}x{height} exceeds the supported side {MAX_CORR_SIDE}')
    bad = np.unique(vis[~np.isin(vis, VIS_LABELS)])
    if bad.size:
        raise ValueError(f'write_corr({path}): vis labels must be 0, 1 or 2, found {bad.tolist()}')
    if not np.isfinite(corr).all():
        raise ValueError(f'write_corr({path}): corr holds NaN or inf values')
    payload = b''.join((
        np.array([width, height], dtype=_HEADER_DTYPE).tobytes(),
        np.ascontiguousarray(corr, dtype=_CORR_DTYPE).tobytes(),
        np.ascontiguousarray(vis, dtype=_VIS_DTYPE).tobytes(),
    ))
    return atomic_write(path, lambda f: f.write(payload))


def corr_to_flow(corr: np.ndarray, vis: np.ndarray | None = None, channels_first: bool = False) -> np.ndarray:
    """Correspondence -> flow in the target frame: target pixel ``(x, y)`` reads the source at ``(x, y) + flow``.

    Args:
        corr: ``[H, W, 2]`` (u, v) source coordinates of each target pixel.
        vis: optional ``[H, W]`` or ``[H, W, 1]`` labels (0/1/2); where ``vis == 2`` (background)
            the flow is set to 0. Pass the *smoothed* visibility, as the datasets do.
        channels_first: return ``[2, H, W]`` instead of ``[H, W, 2]`` (same values; what the datasets use).

    Returns:
        C-contiguous ``np.float32 [H, W, 2]`` (or ``[2, H, W]``): ``(u - x, v - y)``, optionally times ``[vis < 2]``.
    """
    corr = np.asarray(corr, dtype=np.float32)
    if corr.ndim != 3 or corr.shape[2] != 2:
        raise ValueError(f'corr_to_flow: corr must be [H, W, 2], got shape {corr.shape}')
    height, width = corr.shape[:2]
    if channels_first:
        flow = np.subtract(corr.transpose(2, 0, 1), _pixel_grid(height, width).transpose(2, 0, 1),
                           out=np.empty((2, height, width), dtype=np.float32))
        flow_hwc = flow.transpose(1, 2, 0)
    else:
        flow = flow_hwc = corr - _pixel_grid(height, width)
    if vis is not None:
        vis = np.asarray(vis)
        if vis.shape not in ((height, width), (height, width, 1)):
            raise ValueError(f'corr_to_flow: vis must be [{height}, {width}] or [{height}, {width}, 1], '
                             f'got shape {vis.shape}')
        # In place, and a multiplication rather than a select: x * 0 keeps the sign of zero and NaN as before.
        flow_hwc *= vis.reshape(height, width, 1) < 2
    return flow


def warp_acc_flow(x: torch.Tensor, flow: torch.Tensor, mode: str = 'bilinear',
                  mask: torch.Tensor | None = None, mask_value: float = -1) -> torch.Tensor:
    """Sample ``x`` at the positions a flow points to.

    Args:
        x: ``[N, C, H, W]`` tensor to sample from (source frame).
        flow: ``[N, 2, H, W]`` offsets in pixels of the current resolution, in the target frame:
            target pixel ``(x, y)`` reads source position ``(x + flow[:, 0], y + flow[:, 1])``.
        mode: ``'bilinear'`` or ``'nearest'`` (passed to ``grid_sample``).
        mask: optional ``[N, 1, H, W]`` target-frame mask; where ``mask <= 0.5`` the output is
            ``mask_value`` in every channel.
        mask_value: fill value outside ``mask``.

    Returns:
        ``[N, C, H, W]``; taps outside the source image read zeros.

    PyTorch 0.4's ``grid_sample`` (which the released models were trained with) behaves like today's
    ``align_corners=True``: normalised coordinate -1/+1 is the centre of the first/last pixel. This is the one warp
    of the project: the generator's feature warping, the losses, the models and the demo's self-check use it.
    """
    if x.dim() != 4 or flow.dim() != 4 or flow.size(1) != 2:
        raise ValueError(f'warp_acc_flow expects x [N,C,H,W] and flow [N,2,H,W], got {tuple(x.shape)} '
                         f'and {tuple(flow.shape)}')
    if x.shape[0] != flow.shape[0] or x.shape[2:] != flow.shape[2:]:
        raise ValueError(f'x {tuple(x.shape)} and flow {tuple(flow.shape)} must share batch and spatial size')
    n, _, h, w = x.shape
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device).view(1, h, 1)
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device).view(1, 1, w)
    grid_x = 2 * (xs + flow[:, 0]) / max(w - 1, 1) - 1
    grid_y = 2 * (ys + flow[:, 1]) / max(h - 1, 1) - 1
    grid = torch.stack((grid_x, grid_y), dim=3)
    out = F.grid_sample(x, grid, mode=mode, padding_mode='zeros', align_corners=True)
    if mask is not None:
        out = torch.where(mask > 0.5, out, torch.full_like(out, mask_value))
    return out


@functools.lru_cache(maxsize=8)
def _pixel_grid(height: int, width: int) -> np.ndarray:
    """Read-only ``float32 [H, W, 2]`` of each pixel's ``(x, y)``; cached, every item of a dataset has one size."""
    grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)), axis=2)
    grid.flags.writeable = False
    return grid


def flow_to_rgb(flow: np.ndarray) -> np.ndarray:
    """Colour-code a flow field with the original's OpenCV steps, so it matches the original pixel for pixel.

    HSV with hue = direction from ``cv2.cartToPolar`` (``angle * 180 / pi / 2``, OpenCV's 0..180 hue scale;
    +x = red, +y (down) = chartreuse, -x = cyan, -y = violet), saturation 255, value = magnitude min-max
    normalised to 0..255 within this image by ``cv2.normalize``; all three truncated to uint8 at once, then
    ``cv2.cvtColor(HSV2RGB)``. The angle comes from OpenCV's float32 arithmetic (for float32 flows, which the
    networks give), not from a float64 ``atan2``: the two put some hues on different sides of an integer step.
    A flow of constant magnitude (e.g. all zero) is black.

    Args:
        flow: ``[H, W, 2]`` (x, y) pixel offsets, numpy or a CPU/GPU tensor; float64 stays float64 (as the original
            computed it), any other dtype is converted to float32.

    Returns:
        ``np.uint8 [H, W, 3]`` RGB.
    """
    if isinstance(flow, torch.Tensor):
        flow = flow.detach().cpu().numpy()
    flow = np.asarray(flow)
    if flow.dtype != np.float64:
        flow = flow.astype(np.float32, copy=False)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f'flow_to_rgb: flow must be [H, W, 2], got shape {flow.shape}')
    if not np.isfinite(flow).all():
        raise ValueError('flow_to_rgb: flow contains NaN or inf')
    magnitude, angle = cv2.cartToPolar(np.ascontiguousarray(flow[..., 0]), np.ascontiguousarray(flow[..., 1]))
    hsv = np.zeros(flow.shape[:2] + (3,), dtype=np.float64)
    hsv[..., 0] = angle * 180 / np.pi / 2  # in the flow's dtype, like the original
    hsv[..., 1] = 255
    # NORM_MINMAX maps a constant image to the lower bound 0.
    hsv[..., 2] = cv2.normalize(magnitude, None, alpha=0, beta=255, norm_type=cv2.NORM_MINMAX)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def flow_to_rgb_batch(flow: torch.Tensor) -> torch.Tensor:
    """Tensor version of :func:`flow_to_rgb`.

    Args:
        flow: ``[N, 2, H, W]`` pixel offsets on any device.

    Returns:
        ``[N, 3, H, W]`` float32 CPU tensor in ``[-1, 1]``.
    """
    if flow.dim() != 4 or flow.size(1) != 2:
        raise ValueError(f'flow_to_rgb_batch: flow must be [N, 2, H, W], got {tuple(flow.shape)}')
    flow_np = flow.detach().cpu().permute(0, 2, 3, 1).numpy()
    rgb = np.zeros(flow_np.shape[:3] + (3,), dtype=np.uint8)
    for i, f in enumerate(flow_np):  # per image: the value channel is normalised within each image
        rgb[i] = flow_to_rgb(f)
    return torch.from_numpy(rgb).permute(0, 3, 1, 2).float().div(127.5).sub(1)
