"""Keypoints (OpenPose COCO-18): heatmaps, the pose mask and pose drawing.

Keypoints are ``(x, y)`` pixel coordinates (x = column, y = row); a missing joint is ``(-1, -1)``.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from scipy import ndimage
from skimage.draw import disk, polygon

from util.keypoints import COCO18_JOINT_NAMES, NUM_JOINTS

# The 18 joints of the datasets' labels (OpenPose's COCO-18 order), defined once with the keypoint-file readers.
JOINT_NAMES = COCO18_JOINT_NAMES

# Limbs drawn in pose visualisations (0-based joint indices).
DRAW_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 1), (5, 1),
)
# Limbs rasterised into the pose mask; extra ones (neck-ears, hips, hip-shoulders, ear-ear) close the torso
# and head.
MASK_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (1, 16), (1, 17), (8, 11), (11, 5), (8, 2), (16, 17),
)
# RGB colour of each joint in pose visualisations.
JOINT_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)
HEATMAP_MODES = ('binary', 'gaussian')
# Gaussian heatmaps are computed in float64 and rounded to float32: once d^2 / r^2 >= 104, exp(-d^2 / r^2) is below
# half the smallest float32 subnormal (exp(-104) ~ 6.8e-46 < 2**-150 ~ 7.0e-46) and rounds to exactly 0. So pixels
# more than this many radii from the joint along x or y are 0 (10.25^2 = 105 > 104 leaves room for rounding).
_GAUSSIAN_REACH = 10.25
# The original's closing step: dilation then erosion with a 5x5 square.
_CLOSING_FOOTPRINT = np.ones((5, 5), dtype=bool)


def _as_keypoints(kps, name: str = 'kps') -> np.ndarray:
    """Array-like ``[K, 2]`` -> float array; keeps float32/float64 (mask pixels depend on it)."""
    if isinstance(kps, torch.Tensor):
        kps = kps.detach().cpu().numpy()
    kps = np.asarray(kps)
    if not np.issubdtype(kps.dtype, np.floating):
        kps = kps.astype(np.float64)
    if kps.ndim != 2 or kps.shape[1] != 2:
        raise ValueError(f'{name} must have shape [K, 2] of (x, y), got {kps.shape}')
    return kps


def kp_to_map(img_sz: tuple[int, int], kps, mode: str = 'binary', radius: float = 4,
              channels_first: bool = False) -> np.ndarray:
    """Keypoint heatmaps, one channel per joint (the datasets' ``joint_1`` / ``joint_2``).

    Args:
        img_sz: ``(W, H)`` (note the order).
        kps: array-like ``[K, 2]`` of ``(x, y)``; a joint with ``x == -1`` or ``y == -1`` is missing.
        mode: ``'binary'``: ``[d^2 <= r^2]``; ``'gaussian'``: ``exp(-d^2 / r^2)``, computed in float64.
        radius: ``r`` in pixels.
        channels_first: return ``[K, H, W]`` instead of ``[H, W, K]`` (same values; what the datasets use).

    Returns:
        C-contiguous ``np.float32 [H, W, K]`` (or ``[K, H, W]``), zeros in the channel of a missing joint.
    """
    if mode not in HEATMAP_MODES:
        raise ValueError(f'kp_to_map: unknown mode {mode!r}, valid modes are {HEATMAP_MODES}')
    width, height = (int(v) for v in img_sz)
    kps = _as_keypoints(kps).astype(np.float64)
    n_joints = kps.shape[0]
    if channels_first:
        maps = np.zeros((n_joints, height, width), dtype=np.float32)
        maps_khw = maps
    else:
        maps = np.zeros((height, width, n_joints), dtype=np.float32)
        maps_khw = maps.transpose(2, 0, 1)
    present = (kps != -1).all(axis=1)
    if math.isfinite(radius) and radius > 0 and np.isfinite(kps[present]).all():
        _draw_heatmaps_windowed(maps_khw, kps, present, mode, radius)
    else:  # NaN/inf keypoints or a degenerate radius: every pixel, exactly as the formula gives it
        _draw_heatmaps_dense(maps_khw, kps, present, mode, radius)
    return maps


def _heatmap_values(dist2: np.ndarray, mode: str, radius: float) -> np.ndarray:
    """The heatmap formula on float64 squared distances; both drawing paths use it, so they agree bit for bit."""
    if mode == 'binary':
        return dist2 <= radius ** 2
    return np.exp(-dist2 / radius ** 2).astype(np.float32)


def _draw_heatmaps_dense(maps_khw: np.ndarray, kps: np.ndarray, present: np.ndarray, mode: str,
                         radius: float) -> None:
    """Fill the channels of the present joints over the whole image (``maps_khw``: zeros ``[K, H, W]``)."""
    _, height, width = maps_khw.shape
    xs = np.arange(width, dtype=np.float64)
    ys = np.arange(height, dtype=np.float64)[:, None]
    for k in np.flatnonzero(present):
        maps_khw[k] = _heatmap_values((xs - kps[k, 0]) ** 2 + (ys - kps[k, 1]) ** 2, mode, radius)


def _draw_heatmaps_windowed(maps_khw: np.ndarray, kps: np.ndarray, present: np.ndarray, mode: str,
                            radius: float) -> None:
    """Fill the channels of the present joints in a square window around each (finite keypoints, ``radius > 0``).

    All windows have the same size, clipped to the image and shifted to lie inside it, so one array op computes
    them all; every written pixel gets its exact formula value, and every pixel outside a window is 0 by the
    formula. Each window spans one pixel more than the reach on each side, a margin for the rounding of ``d^2``.
    """
    _, height, width = maps_khw.shape
    index = np.flatnonzero(present)
    reach = radius if mode == 'binary' else _GAUSSIAN_REACH * radius
    side = 2 * math.ceil(reach) + 3
    side_x, side_y = min(width, side), min(height, side)
    if index.size == 0 or side_x == 0 or side_y == 0:
        return
    pts = kps[index]
    # Window origins (x0, y0): a pixel of margin before the reach, moved inside the image; integral float64.
    origin = np.minimum(np.maximum(np.floor(pts - reach) - 1, 0), [width - side_x, height - side_y])
    xs = origin[:, :1] + np.arange(side_x, dtype=np.float64)  # [n, side_x] pixel columns of each window
    ys = origin[:, 1:] + np.arange(side_y, dtype=np.float64)
    dist2 = ((xs - pts[:, :1]) ** 2)[:, None, :] + ((ys - pts[:, 1:]) ** 2)[:, :, None]  # [n, side_y, side_x]
    values = _heatmap_values(dist2, mode, radius)
    for window, k, (x, y) in zip(values, index.tolist(), origin.astype(np.intp).tolist()):
        maps_khw[k, y:y + side_y, x:x + side_x] = window


def kp_to_map_batch(kps: torch.Tensor, height: int, width: int, mode: str = 'binary',
                    radius: float = 4) -> torch.Tensor:
    """The heatmaps of :func:`kp_to_map` for a whole batch, drawn on the keypoints' device (``--maps_on_device``).

    Every pixel gets the formula of :func:`kp_to_map` in float64 (``d^2 = dx*dx + dy*dy``), so ``'binary'`` maps
    are bit-identical to it; ``'gaussian'`` ones too except where torch's and numpy's float64 ``exp`` differ in the
    last bit and that flips the rounding to float32 (at most one float32 ulp). As in :func:`kp_to_map`, only a
    window around each joint is computed (one scatter for the batch); non-finite keypoints or a degenerate radius
    take the formula over the whole image.

    Args:
        kps: ``[N, K, 2]`` of ``(x, y)`` (the batch's ``joint_c_1`` / ``joint_c_2``), any float dtype; a joint with
            ``x == -1`` or ``y == -1`` is missing.
        height, width: map size in pixels.
        mode, radius: as for :func:`kp_to_map`.

    Returns:
        ``torch.float32 [N, K, height, width]`` on ``kps.device``, zeros in the channel of a missing joint.
    """
    if mode not in HEATMAP_MODES:
        raise ValueError(f'kp_to_map_batch: unknown mode {mode!r}, valid modes are {HEATMAP_MODES}')
    if kps.dim() != 3 or kps.size(-1) != 2:
        raise ValueError(f'kp_to_map_batch: kps must have shape [N, K, 2] of (x, y), got {tuple(kps.shape)}')
    kps = kps.to(torch.float64)
    n, n_joints = kps.shape[:2]
    device = kps.device
    present = (kps != -1).all(dim=-1)[..., None, None]  # [N, K, 1, 1]
    maps = torch.zeros(n, n_joints, height, width, dtype=torch.float32, device=device)
    if maps.numel() == 0:
        return maps

    def values_at(dist2: torch.Tensor) -> torch.Tensor:
        values = dist2 <= radius ** 2 if mode == 'binary' else torch.exp(-dist2 / radius ** 2)
        return (values & present if mode == 'binary' else values * present).to(torch.float32)

    if not (math.isfinite(radius) and radius > 0 and bool(torch.isfinite(kps).all())):
        dx = torch.arange(width, dtype=torch.float64, device=device) - kps[..., :1]  # [N, K, W]
        dy = torch.arange(height, dtype=torch.float64, device=device) - kps[..., 1:]  # [N, K, H]
        return values_at((dx * dx)[..., None, :] + (dy * dy)[..., :, None])
    # The windows of _draw_heatmaps_windowed: the same size for all joints, moved inside the image.
    reach = radius if mode == 'binary' else _GAUSSIAN_REACH * radius
    side = 2 * math.ceil(reach) + 3
    side_x, side_y = min(width, side), min(height, side)
    limit = torch.tensor([width - side_x, height - side_y], dtype=torch.float64, device=device)
    origin = torch.minimum(torch.clamp(torch.floor(kps - reach) - 1, min=0), limit)  # [N, K, 2], integral
    cols = torch.arange(side_x, device=device)
    rows = torch.arange(side_y, device=device)
    dx = origin[..., :1] + cols.to(torch.float64) - kps[..., :1]  # [N, K, side_x]
    dy = origin[..., 1:] + rows.to(torch.float64) - kps[..., 1:]  # [N, K, side_y]
    values = values_at((dx * dx)[..., None, :] + (dy * dy)[..., :, None])  # [N, K, side_y, side_x]
    origin = origin.to(torch.long)
    channel = torch.arange(n * n_joints, device=device).view(n, n_joints)
    flat = (((channel * height + origin[..., 1])[..., None, None] + rows[:, None]) * width
            + origin[..., 0, None, None] + cols)  # [N, K, side_y, side_x] indices into maps
    # one window per channel, so no index repeats
    maps.view(-1)[flat.view(-1)] = values.view(-1)
    return maps


def get_pose_mask(kps, img_size: tuple[int, int], point_radius: float = 4, transposed: bool = True,
                  norm_eps: float = 1e-8) -> np.ndarray:
    """Human-region mask from keypoints, used by masked SSIM and masked IS.

    Bands of half-width ``point_radius`` along the mask limbs, discs of radius ``point_radius``
    (strictly inside) on the joints, then a closing (dilation, erosion) with a 5x5 square.
    A joint is valid when both coordinates are >= 0.

    Args:
        kps: ``[18, 2]`` ``(x, y)`` keypoints. float32 and float64 give (rarely) different pixels, as
            in the original (masked SSIM used float32, masked IS float64); ints are taken as float64.
        img_size: ``(H, W)``.
        point_radius: band half-width and disc radius.
        transposed: ``True`` (default) reproduces the original, which passed ``(x, y)`` to
            rasterisers that expect ``(row, col)``, i.e. x is used as the row. ``False`` draws the
            correct ``(row = y, col = x)`` mask.
        norm_eps: added to both components of a limb's normal before its norm is taken (the original's
            ``1e-8``; GFLA's mask for mask-LPIPS adds nothing, ``0``). It moves a band edge by at most
            ~1e-8 px, so it changes a pixel only when a vertex lies that close to a pixel centre.

    Returns:
        ``np.bool_ [H, W]``.
    """
    kps = _as_keypoints(kps)
    if kps.shape[0] != NUM_JOINTS:
        raise ValueError(f'get_pose_mask expects {NUM_JOINTS} joints, got kps of shape {kps.shape}')
    height, width = (int(v) for v in img_size)
    # Points as (row, col); the arithmetic stays in the input dtype, like the original.
    pts = kps if transposed else kps[:, ::-1]
    valid = (kps >= 0).all(axis=1)
    mask = np.zeros((height, width), dtype=bool)
    for f, t in MASK_LIMBS:
        if not (valid[f] and valid[t]):
            continue
        p_f, p_t = pts[f], pts[t]
        d = p_f - p_t
        n = np.array([-d[1], d[0]], dtype=pts.dtype)
        # norm_eps is added to the components before the norm (original quirk, kept for exact pixels).
        n = point_radius * n / np.linalg.norm(n + norm_eps)
        vertices = np.stack([p_f + n, p_f - n, p_t - n, p_t + n])
        rr, cc = polygon(vertices[:, 0], vertices[:, 1], shape=(height, width))
        mask[rr, cc] = True
    for j in np.flatnonzero(valid):
        rr, cc = disk((pts[j, 0], pts[j, 1]), point_radius, shape=(height, width))
        mask[rr, cc] = True
    # skimage binary morphology semantics: outside the image counts as False for dilation and as True for
    # erosion, so regions touching the border are not eaten by the closing.
    mask = ndimage.binary_dilation(mask, structure=_CLOSING_FOOTPRINT, border_value=0)
    mask = ndimage.binary_erosion(mask, structure=_CLOSING_FOOTPRINT, border_value=1)
    return mask


def get_pose_mask_batch(kps, img_size: tuple[int, int], point_radius: float = 4,
                        transposed: bool = True, norm_eps: float = 1e-8) -> torch.Tensor:
    """Batched :func:`get_pose_mask`.

    Args:
        kps: ``[N, 18, 2]`` tensor (any device) or array of ``(x, y)``; float32 and float64 kept as is.
        img_size: ``(H, W)``.

    Returns:
        ``torch.float32 [N, 1, H, W]`` with values in {0, 1}, on ``kps``'s device if it is a tensor
        (CPU otherwise).
    """
    device = kps.device if isinstance(kps, torch.Tensor) else torch.device('cpu')
    if isinstance(kps, torch.Tensor):
        kps = kps.detach().cpu().numpy()
    kps = np.asarray(kps)
    if kps.ndim != 3 or kps.shape[1:] != (NUM_JOINTS, 2):
        raise ValueError(f'get_pose_mask_batch expects kps of shape [N, {NUM_JOINTS}, 2], got {kps.shape}')
    height, width = (int(v) for v in img_size)
    masks = np.zeros((kps.shape[0], 1, height, width), dtype=np.float32)
    for i, sample in enumerate(kps):
        masks[i, 0] = get_pose_mask(sample, (height, width), point_radius, transposed, norm_eps)
    return torch.from_numpy(masks).to(device)


def _pose_map_to_hwk(pose_map) -> np.ndarray:
    """numpy ``[H, W, K]`` stays; a tensor ``[K, H, W]`` is moved to CPU and transposed."""
    if isinstance(pose_map, torch.Tensor):
        if pose_map.dim() != 3:
            raise ValueError(f'pose_map tensor must be [K, H, W], got {tuple(pose_map.shape)}')
        return pose_map.detach().float().cpu().permute(1, 2, 0).numpy()
    pose_map = np.asarray(pose_map)
    if pose_map.ndim != 3:
        raise ValueError(f'pose_map array must be [H, W, K], got {pose_map.shape}')
    return pose_map


def pose_map_to_joints(pose_map, threshold: float = 0.1) -> list[tuple[int, int] | None]:
    """One ``(x, y)`` per channel: the first pixel (row-major) equal to the channel maximum, if > threshold.

    Args:
        pose_map: numpy ``[H, W, K]`` or tensor ``[K, H, W]``.

    Returns:
        list of K entries, ``(x, y)`` ints or ``None`` for a missing joint.
    """
    hwk = _pose_map_to_hwk(pose_map)
    height, width, k = hwk.shape
    flat = hwk.reshape(height * width, k)
    first_max = flat.argmax(axis=0)  # argmax returns the first occurrence of the maximum
    peak = flat[first_max, np.arange(k)]
    return [(int(idx % width), int(idx // width)) if peak[c] > threshold else None
            for c, idx in enumerate(first_max)]


def draw_pose(joints, img_size: tuple[int, int], radius: int = 2) -> np.ndarray:
    """Render joints on black: anti-aliased gray limb lines, then discs in the joint colours.

    Args:
        joints: ``[18, 2]`` array of ``(x, y)`` (negative = missing) or a list of ``(x, y)``/``None``;
            coordinates are rounded to the nearest pixel.
        img_size: ``(H, W)``.
        radius: disc radius; pixels strictly inside are drawn.

    Returns:
        ``np.uint8 [H, W, 3]`` RGB.
    """
    height, width = (int(v) for v in img_size)
    # Fractional keypoints are rounded to pixels, so they draw like the integer peaks of heatmaps.
    points: list[tuple[int, int] | None] = [
        None if p is None or p[0] < 0 or p[1] < 0 else (int(round(float(p[0]))), int(round(float(p[1]))))
        for p in joints]
    if len(points) != NUM_JOINTS:
        raise ValueError(f'draw_pose expects {NUM_JOINTS} joints, got {len(points)}')
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    for f, t in DRAW_LIMBS:
        if points[f] is None or points[t] is None:
            continue
        cv2.line(canvas, points[f], points[t], color=(255, 255, 255), thickness=1, lineType=cv2.LINE_AA)
    for j, p in enumerate(points):
        if p is None:
            continue
        rr, cc = disk((p[1], p[0]), radius, shape=(height, width))
        canvas[rr, cc] = JOINT_COLORS[j]
    return canvas


def draw_pose_from_map(pose_map, threshold: float = 0.1,
                       radius: int = 2) -> tuple[np.ndarray, list[tuple[int, int] | None]]:
    """Render a heatmap stack as a stick figure (the ``pose`` panels of the visual grids).

    Args:
        pose_map: numpy ``[H, W, K]`` or tensor ``[K, H, W]``, K = 18.
        threshold: a channel whose maximum is not above it is a missing joint.
        radius: joint disc radius.

    Returns:
        (``np.uint8 [H, W, 3]`` RGB image, list of ``(x, y)`` or ``None`` per joint).
    """
    hwk = _pose_map_to_hwk(pose_map)
    joints = pose_map_to_joints(hwk, threshold)
    return draw_pose(joints, hwk.shape[:2], radius), joints
