"""Segmentation one-hot maps and visibility smoothing.

Body-part labels: 0 background, 1 head, 2 torso, 3 left arm, 4 right arm, 5 left leg, 6 right leg.
Visibility labels: 0 visible in the source, 1 human but hidden in the source, 2 background.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

SEG_NAMES = ('background', 'head', 'torso', 'left_arm', 'right_arm', 'left_leg', 'right_leg')
NUM_SEG_CLASSES = len(SEG_NAMES)


def seg_label_to_map(seg_label: np.ndarray, nc: int = NUM_SEG_CLASSES, channels_first: bool = False) -> np.ndarray:
    """One-hot encode a label map.

    Args:
        seg_label: ``[H, W]`` or ``[H, W, 1]`` integer labels (integral floats accepted), normally in ``[0, nc)``.
        nc: number of classes.
        channels_first: return ``[nc, H, W]`` instead of ``[H, W, nc]`` (same values; what the datasets use).

    Returns:
        C-contiguous ``np.float32 [H, W, nc]`` (or ``[nc, H, W]``); channel k is ``[label == k]`` (all zero where
        the label is outside ``[0, nc)``).

    Raises:
        ValueError: non-integral labels, naming the bad values.
    """
    seg_label = np.asarray(seg_label)
    if seg_label.ndim == 3 and seg_label.shape[2] == 1:
        seg_label = seg_label[:, :, 0]
    if seg_label.ndim != 2:
        raise ValueError(f'seg_label_to_map: seg_label must be [H, W] or [H, W, 1], got shape {seg_label.shape}')
    integer_labels = seg_label.dtype.kind in 'uib'
    if not integer_labels:
        bad = np.unique(seg_label[seg_label != np.round(seg_label)])
        if bad.size:
            raise ValueError(f'seg_label_to_map: labels must be integers, found {bad.tolist()[:10]}')
    # A label outside [0, nc) matches no channel: its row is all zero, as in the original (the datasets report
    # such files, or raise with --strict_seg 1).
    classes = np.arange(nc)
    if seg_label.dtype.kind in 'ui' and nc - 1 <= np.iinfo(seg_label.dtype).max:
        classes = classes.astype(seg_label.dtype)  # e.g. uint8 == uint8 compares several times faster than int64
    if channels_first:
        return (classes[:, None, None] == seg_label).astype(np.float32)
    return (seg_label[:, :, None] == classes).astype(np.float32)


def seg_label_to_map_batch(seg_label: torch.Tensor, nc: int = NUM_SEG_CLASSES) -> torch.Tensor:
    """:func:`seg_label_to_map` for a batch, on the labels' device (``--maps_on_device``): the same values.

    Args:
        seg_label: ``[N, 1, H, W]`` label maps with whole-number values (the batch's ``seg_label_1`` /
            ``seg_label_2``), any dtype.
        nc: number of classes.

    Returns:
        ``torch.float32 [N, nc, H, W]``: channel k is ``[label == k]`` (all zero where the label is outside
        ``[0, nc)``).
    """
    if seg_label.dim() != 4 or seg_label.size(1) != 1:
        raise ValueError(f'seg_label_to_map_batch: seg_label must be [N, 1, H, W], got {tuple(seg_label.shape)}')
    classes = torch.arange(nc, device=seg_label.device, dtype=seg_label.dtype).view(1, nc, 1, 1)
    return (seg_label == classes).to(torch.float32)


def smooth_visibility(vis: np.ndarray, kernel_size: int) -> np.ndarray:
    """Median-smooth visibility labels inside the human region (``--vis_smooth_rate``).

    ``vis_b = cv2.medianBlur(vis, k)`` (uint8, replicated border); where the raw label is < 2 (human)
    the result is ``vis_b`` (which may become 2 near the silhouette), elsewhere the raw label is kept.

    Args:
        vis: ``np.uint8 [H, W]`` or ``[H, W, 1]`` labels in {0, 1, 2}.
        kernel_size: odd median window; 0 disables smoothing (returns a copy).

    Returns:
        uint8 array of the same shape as ``vis``.
    """
    if not isinstance(kernel_size, (int, np.integer)) or kernel_size < 0:
        raise ValueError(f'smooth_visibility: kernel_size must be a non-negative integer, got {kernel_size!r}')
    if kernel_size > 0 and kernel_size % 2 == 0:
        raise ValueError(f'smooth_visibility: kernel_size must be odd (cv2.medianBlur), got {kernel_size}; '
                         f'use 0 to disable smoothing')
    vis = np.asarray(vis)
    if vis.dtype != np.uint8:
        raise ValueError(f'smooth_visibility: vis must be uint8 labels, got dtype {vis.dtype}')
    if not (vis.ndim == 2 or (vis.ndim == 3 and vis.shape[2] == 1)):
        raise ValueError(f'smooth_visibility: vis must be [H, W] or [H, W, 1], got shape {vis.shape}')
    if kernel_size <= 1:  # a 1x1 median is the identity
        return vis.copy()
    raw = np.ascontiguousarray(vis.reshape(vis.shape[:2]))
    if raw.shape[1] < raw.shape[0]:
        # OpenCV's uint8 median is ~30x slower on maps up to about 64 columns wide (Market's 128x64) than on
        # wider ones (measured with OpenCV 5.0 on an AVX-512 CPU: its vector loop needs wider rows). A median
        # over a square window with replicated borders commutes with transposition: same values, filtered wide.
        blurred = np.ascontiguousarray(cv2.medianBlur(np.ascontiguousarray(raw.T), int(kernel_size)).T)
    else:
        blurred = cv2.medianBlur(raw, int(kernel_size))
    return np.where(raw < 2, blurred, raw).reshape(vis.shape)
