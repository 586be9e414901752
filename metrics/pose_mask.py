"""The pose masks of the masked metrics (masked SSIM, masked IS, mask-LPIPS), as settings plus one batched builder.

All of them rasterise the target pose's 18 keypoints with :func:`util.pose_util.get_pose_mask` (bands along 23
limbs, discs on the joints, a 5x5 closing); they differ in orientation, a numerical detail of the band width, the
precision of the keypoints and where the mask is applied. See :class:`PoseMaskSettings`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from util.pose_util import get_pose_mask

KEYPOINT_DTYPES = ('float32', 'float64')
APPLY_SPACES = ('uint8', 'signed')


@dataclass(frozen=True)
class PoseMaskSettings:
    """How a masked metric builds and applies the target's pose mask.

    Attributes:
        transposed: ``True`` draws x as the row and y as the column, as the original did (its keypoints are
            ``(x, y)`` but its rasterisers take ``(row, col)``); ``False`` is the correct orientation (GFLA,
            whose keypoints are ``(y, x)``).
        radius: band half-width and joint disc radius in pixels (4 everywhere).
        norm_eps: added to a limb normal's components before taking its norm (original ``1e-8``, GFLA ``0``).
        keypoint_dtype: precision of the keypoints while drawing: the original's masked SSIM used the dataset's
            float32 tensors, its masked IS the float64 arrays of the pose pickle (a vertex can fall on either
            side of a pixel centre depending on it).
        apply: ``'uint8'``: both uint8 images are multiplied by the mask (background 0, black; masked SSIM,
            masked IS); ``'signed'``: the images are scaled to [-1, 1] first and then multiplied (background 0,
            mid-grey in image terms; GFLA's mask-LPIPS).
    """
    transposed: bool = True
    radius: float = 4.0
    norm_eps: float = 1e-8
    keypoint_dtype: str = 'float32'
    apply: str = 'uint8'

    def __post_init__(self) -> None:
        if self.keypoint_dtype not in KEYPOINT_DTYPES:
            raise ValueError(f'pose mask keypoint_dtype {self.keypoint_dtype!r} is not one of {list(KEYPOINT_DTYPES)}')
        if self.apply not in APPLY_SPACES:
            raise ValueError(f'pose mask apply {self.apply!r} is not one of {list(APPLY_SPACES)}')
        if self.radius <= 0:
            raise ValueError(f'pose mask radius must be positive, got {self.radius}')


def pose_masks(keypoints: np.ndarray, size: tuple[int, int], settings: PoseMaskSettings) -> torch.Tensor:
    """Masks of a batch of poses.

    Args:
        keypoints: ``[N, 18, 2]`` ``(x, y)`` pixel coordinates in the frame of the images the mask is for
            (-1 marks a missing joint).
        size: ``(H, W)`` of those images.

    Returns:
        ``torch.uint8 [N, 1, H, W]`` of 0/1 (CPU).
    """
    kps = np.asarray(keypoints).astype(settings.keypoint_dtype)
    if kps.ndim != 3 or kps.shape[1:] != (18, 2):
        raise ValueError(f'pose_masks expects keypoints [N, 18, 2], got {kps.shape}')
    h, w = (int(v) for v in size)
    masks = np.zeros((len(kps), 1, h, w), dtype=np.uint8)
    for i, sample in enumerate(kps):
        masks[i, 0] = get_pose_mask(sample, (h, w), settings.radius, settings.transposed, settings.norm_eps)
    return torch.from_numpy(masks)
