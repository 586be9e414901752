"""Metrics on the person only, and the ground-truth-flow reference they are read against.

Whole-image SSIM/PSNR of pose transfer are dominated by the background when it is unpredictable (each
Market-1501 photo, or each cluttered demo photo, has its own); these metrics look only at the target's
body, given by its ground-truth segmentation (label 0 = background, every other label = a body part).

* :func:`person_region_ssim`: the per-pixel SSIM map of the two images, both set to 0 outside the target's
  body, averaged over the body pixels only. (The masked SSIM of :class:`~metrics.ssim.SSIM` multiplies
  the same mask in but averages over the whole image, where the zeroed background counts as a perfect
  match; its value then grows with the share of background in the image, so it compresses the differences
  between methods and is not comparable across images with people of different sizes.)
* :func:`person_region_l1`: mean absolute difference over the body pixels and the three channels, in
  [0, 255] grey levels, of the uint8 images the other metrics use (``(x + 1)·127.5``, truncated).
* :func:`flow_warp_reference`: what a perfect flow alone gives: the source warped with the ground-truth
  flow where the target's body is visible in the source, the source's mean body colour on the rest of the
  target's body.

Per-image functions return ``torch.float64 [N]`` on the images' device; the classes return the batch
mean as a Python float, like :class:`~metrics.ssim.SSIM` and :class:`~metrics.psnr.PSNR`.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from metrics.ssim import apply_mask, ssim_map, to_uint8
from util.seg_util import SEG_NAMES

BACKGROUND_LABEL = SEG_NAMES.index('background')
# Visibility labels of the correspondence: visible in the source, body hidden in the source, background.
VIS_VISIBLE, VIS_HIDDEN, VIS_BACKGROUND = 0, 1, 2


def person_mask_from_seg(seg_label: torch.Tensor) -> torch.Tensor:
    """The body mask of segmentation labels.

    Args:
        seg_label: ``[N, 1, H, W]`` or ``[N, H, W]`` label map (the dataset item's ``seg_label_1`` /
            ``seg_label_2``: integral values, 0 background, 1..6 body parts), any dtype and device.

    Returns:
        ``[N, 1, H, W]`` 0/1 mask, 1 on body pixels; float (the input's float dtype, float32 for integer
        labels), on the input's device.
    """
    if seg_label.dim() == 3:
        seg_label = seg_label.unsqueeze(1)
    if seg_label.dim() != 4 or seg_label.size(1) != 1:
        raise ValueError(f'person_mask_from_seg expects label maps [N, 1, H, W] or [N, H, W] (seg_label_1/2, not '
                         f'the one-hot seg_1/2), got {tuple(seg_label.shape)}')
    if seg_label.is_floating_point() and not bool((seg_label == seg_label.round()).all()):
        raise ValueError('person_mask_from_seg: the segmentation labels are not whole numbers (a resampled or '
                         'one-hot map?); pass the label map seg_label_1/2')
    if bool((seg_label < 0).any()):
        raise ValueError(f'person_mask_from_seg: negative labels (min {seg_label.min().item()}); labels are 0 '
                         f'(background) to {len(SEG_NAMES) - 1}')
    dtype = seg_label.dtype if seg_label.is_floating_point() else torch.float32
    return (seg_label != BACKGROUND_LABEL).to(dtype)


def _body_pixel_counts(body_mask: torch.Tensor, what: str) -> torch.Tensor:
    """Number of body pixels per image, float64 ``[N]``; a ValueError naming the empty images."""
    if body_mask.dim() != 4 or body_mask.size(1) != 1:
        raise ValueError(f'{what}: the body mask must be [N, 1, H, W], got {tuple(body_mask.shape)}')
    counts = body_mask.to(torch.float64).sum(dim=(1, 2, 3))
    empty = torch.nonzero(counts == 0).flatten().tolist()
    if empty:
        raise ValueError(f'{what}: images {empty} of the batch have no body pixels in their segmentation, so the '
                         f'person region is undefined; check the segmentation files of these pairs')
    return counts


def person_region_l1(images: torch.Tensor, targets: torch.Tensor, body_mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the body, per image.

    Args:
        images, targets: ``[N, 3, H, W]`` in [-1, 1] (quantised to uint8 by truncation, as for SSIM/PSNR).
        body_mask: ``[N, 1, H, W]`` 0/1 mask of the target's body (:func:`person_mask_from_seg`).

    Returns:
        ``torch.float64 [N]`` in [0, 255] grey levels (mean over body pixels and channels).
    """
    counts = _body_pixel_counts(body_mask, 'person_region_l1')
    a, b = to_uint8(images), to_uint8(targets).to(images.device)  # [N, H, W, 3]
    if a.shape != b.shape:
        raise ValueError(f'person_region_l1: image shapes differ: {tuple(images.shape)} vs {tuple(targets.shape)}')
    m = body_mask.to(device=images.device, dtype=torch.float64)[:, 0, :, :, None]
    diff = (a.to(torch.float64) - b.to(torch.float64)).abs() * m
    return diff.sum(dim=(1, 2, 3)) / (counts.to(images.device) * a.size(3))


def person_region_ssim(images: torch.Tensor, targets: torch.Tensor, body_mask: torch.Tensor) -> torch.Tensor:
    """SSIM over the body, per image.

    Both uint8 images are set to 0 outside the body (as masked SSIM does), the full per-channel SSIM map
    is computed (7x7 windows, the borders reflected as scikit-image's ``full=True`` map), and its values
    on the body pixels are averaged over pixels and channels. Pixels outside the body never count, and
    windows at the silhouette see the same zeros in both images, so the score does not depend on the
    background at all.

    Args:
        images, targets: ``[N, 3, H, W]`` in [-1, 1].
        body_mask: ``[N, 1, H, W]`` 0/1 mask of the target's body.

    Returns:
        ``torch.float64 [N]``, at most 1 (1 when the body pixels agree exactly).
    """
    counts = _body_pixel_counts(body_mask, 'person_region_ssim')
    a, b = to_uint8(images), to_uint8(targets).to(images.device)
    if a.shape != b.shape:
        raise ValueError(f'person_region_ssim: image shapes differ: {tuple(images.shape)} vs '
                         f'{tuple(targets.shape)}')
    mask = body_mask.to(images.device)
    a, b = apply_mask(a, b, mask)
    smap = ssim_map(a, b)  # [N, 3, H, W]
    m = mask.to(torch.float64)
    return (smap * m).sum(dim=(1, 2, 3)) / (counts.to(images.device) * smap.size(1))


def mean_body_color(images: torch.Tensor, body_mask: torch.Tensor) -> torch.Tensor:
    """Mean colour of each image's body pixels: ``[N, C, 1, 1]`` in the images' dtype and value range.

    images: ``[N, C, H, W]``; body_mask: ``[N, 1, H, W]`` 0/1.
    """
    counts = _body_pixel_counts(body_mask, 'mean_body_color')
    m = body_mask.to(device=images.device, dtype=images.dtype)
    total = (images * m).sum(dim=(2, 3), keepdim=True)
    return total / counts.to(device=images.device, dtype=images.dtype).view(-1, 1, 1, 1)


def flow_warp_reference(img_1: torch.Tensor, flow_2to1: torch.Tensor, vis_2: torch.Tensor,
                        seg_label_1: torch.Tensor, seg_label_2: torch.Tensor,
                        warp: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The target as a perfect flow alone would render it from the source.

    On the target's body (``seg_label_2`` > 0): where the surface point is visible in the source
    (``vis_2 == 0``) the source warped with the ground-truth flow; everywhere else on the body (hidden
    in the source, ``vis_2 == 1``, or without a correspondence, ``vis_2 == 2``, as visibility smoothing
    leaves along the silhouette) the mean colour of the source's body (``seg_label_1`` > 0), the best
    constant a method without a generator could guess. Off the body the warp's output is kept: the
    ground-truth flow is 0 on the background, so that is the source's own background (as copy-source);
    the person-region metrics do not look at these pixels.

    Args:
        img_1: source ``[N, 3, H, W]`` in [-1, 1].
        flow_2to1: ``[N, 2, H, W]`` ground-truth flow from target to source, in pixels.
        vis_2: ``[N, 1, H, W]`` visibility labels 0/1/2 in the target frame.
        seg_label_1, seg_label_2: ``[N, 1, H, W]`` segmentation labels of source and target.
        warp: ``warp(x [N, C, H, W], flow [N, 2, H, W]) -> [N, C, H, W]``, the project's flow warp
            (``warp_acc_flow``; passed in because metrics do not depend on the models).

    Returns:
        ``[N, 3, H, W]`` in the range of ``img_1``, on its device.
    """
    if vis_2.dim() != 4 or vis_2.size(1) != 1 or vis_2.shape[2:] != img_1.shape[2:]:
        raise ValueError(f'flow_warp_reference: vis_2 must be [N, 1, H, W] = {(img_1.size(0), 1, *img_1.shape[2:])},'
                         f' got {tuple(vis_2.shape)}')
    if not bool(((vis_2 == VIS_VISIBLE) | (vis_2 == VIS_HIDDEN) | (vis_2 == VIS_BACKGROUND)).all()):
        raise ValueError('flow_warp_reference: vis_2 must hold only the visibility labels 0, 1, 2')
    body_1 = person_mask_from_seg(seg_label_1).to(img_1.device)
    body_2 = person_mask_from_seg(seg_label_2).to(img_1.device) > 0.5
    warped = warp(img_1, flow_2to1)
    if warped.shape != img_1.shape:
        raise ValueError(f'flow_warp_reference: warp returned {tuple(warped.shape)} for a source of '
                         f'{tuple(img_1.shape)}')
    fill = mean_body_color(img_1, body_1).expand_as(img_1)
    visible = body_2 & (vis_2.to(img_1.device) == VIS_VISIBLE)
    return torch.where(visible, warped, torch.where(body_2, fill, warped))


class PersonRegionSSIM:
    """Batch-mean person-region SSIM: ``PersonRegionSSIM()(images, targets, seg_label_2) -> float``.

    images, targets: ``[N, 3, H, W]`` in [-1, 1]; seg_label_2: the target's ``[N, 1, H, W]`` labels.
    """

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, seg_label_2: torch.Tensor) -> float:
        return float(person_region_ssim(images, targets, person_mask_from_seg(seg_label_2)).mean())


class PersonRegionL1:
    """Batch-mean person-region L1 in [0, 255]: ``PersonRegionL1()(images, targets, seg_label_2) -> float``."""

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, seg_label_2: torch.Tensor) -> float:
        return float(person_region_l1(images, targets, person_mask_from_seg(seg_label_2)).mean())
