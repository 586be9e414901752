"""Pair dataset for the pose transfer generator (``--dataset_type pose_transfer``)."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from PIL import Image
from torchvision.transforms import functional as TF

from data.base_dataset import BaseDataset
from data.flow_dataset import _random_shift
from util.flow_util import corr_to_flow
from util.seg_util import smooth_visibility

AFFINE_HW_ORDERS = ('as_written', 'intended')
HUE_JITTER = 0.2  # torchvision ColorJitter(hue=0.2): one hue factor from U(-0.2, 0.2) for both images


def affine_matrix(sc: float, dx: float, dy: float, image_size: tuple[int, int], hw_order: str) -> np.ndarray:
    """``[[sc, 0, t_x], [0, sc, t_y]]``: scale about the image centre, then shift by ``(dx, dy)``.

    ``hw_order='intended'``: ``t_x = 0.5 W (1 - sc) + dx``, ``t_y = 0.5 H (1 - sc) + dy``.
    ``hw_order='as_written'`` (the original, kept by default): H and W swapped,
    ``t_x = 0.5 H (1 - sc) + dx``, ``t_y = 0.5 W (1 - sc) + dy``; identical for square images.
    """
    h, w = image_size
    if hw_order == 'as_written':
        cx, cy = 0.5 * h, 0.5 * w
    elif hw_order == 'intended':
        cx, cy = 0.5 * w, 0.5 * h
    else:
        raise ValueError(f'unknown aug_affine_hw_order {hw_order!r}; valid values are {AFFINE_HW_ORDERS}')
    return np.array([[sc, 0.0, cx * (1 - sc) + dx], [0.0, sc, cy * (1 - sc) + dy]], dtype=np.float64)


def affine_augment(img_2: np.ndarray, seg_2: np.ndarray, joint_c_2: np.ndarray, corr: np.ndarray, vis: np.ndarray,
                   matrix: np.ndarray) -> tuple[np.ndarray, ...]:
    """Warp the target side with the affine ``matrix`` (output pixel ``M @ [x, y, 1]`` <- input ``(x, y)``).

    Args:
        img_2: ``float32 [H, W, 3]``; seg_2: ``uint8 [H, W]``; joint_c_2: ``[K, 2]``;
        corr: ``float32 [H, W, 2]`` (u, v) in image-1 coordinates (values are not transformed);
        vis: ``uint8 [H, W, 1]``.

    Returns:
        ``(img_2, seg_2, joint_c_2, corr, vis)``: image and correspondence bilinear, labels nearest, all with
        replicated borders, output size ``(W, H)``; a joint stays only if it is inside ``[0, W) x [0, H)``
        before and after the transform, else ``(-1, -1)``. The channel axis of ``vis`` is kept (the
        original lost it).
    """
    h, w = img_2.shape[:2]
    kw = dict(dsize=(w, h), borderMode=cv2.BORDER_REPLICATE)
    img_2 = cv2.warpAffine(img_2, matrix, flags=cv2.INTER_LINEAR, **kw)
    seg_2 = cv2.warpAffine(seg_2, matrix, flags=cv2.INTER_NEAREST, **kw)
    corr = cv2.warpAffine(corr, matrix, flags=cv2.INTER_LINEAR, **kw)
    vis = cv2.warpAffine(vis[:, :, 0], matrix, flags=cv2.INTER_NEAREST, **kw)[:, :, None]

    def inside(p: np.ndarray) -> np.ndarray:
        return (p[:, 0] >= 0) & (p[:, 0] < w) & (p[:, 1] >= 0) & (p[:, 1] < h)

    jc = joint_c_2.astype(np.float64)
    moved = jc @ matrix[:, :2].T + matrix[:, 2]
    keep = inside(jc) & inside(moved)
    jc = np.where(keep[:, None], moved, -1.0).astype(joint_c_2.dtype)
    return img_2, seg_2, jc, corr, vis


def hue_jitter(img_1: np.ndarray, img_2: np.ndarray, hue_factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Same hue shift on both images, through an 8-bit PIL image as the original.

    ``img_*``: ``float32 [H, W, 3]`` in [-1, 1]; returns the jittered pair in [-1, 1].
    """
    w = img_1.shape[1]
    both = np.concatenate([img_1, img_2], axis=1)
    # torchvision's ToPILImage truncates (x * 255).byte().
    pil = Image.fromarray(np.clip((both + 1) / 2 * 255, 0, 255).astype(np.uint8))
    out = np.asarray(TF.adjust_hue(pil, hue_factor), dtype=np.float32) / 255.0 * 2 - 1
    return out[:, :w], out[:, w:]


class PoseTransferDataset(BaseDataset):
    """The item dict (``img_1``, ``flow_2to1``, ... see docs/architecture.md) for pose transfer.

    Heatmaps use ``opt.image_size``; the flow is clipped to ``[-W, W] x [-H, H]``. With
    ``opt.use_augmentation`` and ``opt.is_train`` on the ``train`` split, the target side gets the
    intended affine augmentation (``aug_shiftx_range``, ``aug_shifty_range``,
    ``aug_scale_range``, ``aug_affine_hw_order``) and, with ``aug_color_jit``, a common hue jitter.
    """

    def __init__(self, opt: Any, split: str, strict_seg: bool = False) -> None:
        super().__init__(opt, split, strict_seg)
        self.augment = bool(opt.use_augmentation) and bool(opt.is_train) and split == 'train'
        if self.augment and opt.aug_affine_hw_order not in AFFINE_HW_ORDERS:
            raise ValueError(f'unknown aug_affine_hw_order {opt.aug_affine_hw_order!r}; valid values are '
                             f'{AFFINE_HW_ORDERS}')

    def __getitem__(self, index: int) -> dict[str, Any]:
        opt = self.opt
        id_1, id_2 = self.pairs[index]
        img_1, img_2 = self.read_image(id_1), self.read_image(id_2, contiguous=self.augment)
        joint_c_1, joint_c_2 = self.read_joints(id_1), self.read_joints(id_2)
        seg_1, seg_2 = self.read_seg(id_1), self.read_seg(id_2)
        corr, vis = self.read_corr(id_1, id_2)
        vis = smooth_visibility(vis, opt.vis_smooth_rate)
        h, w = self.image_size
        if self.augment:
            dx, dy = _random_shift(opt.aug_shiftx_range), _random_shift(opt.aug_shifty_range)
            sc = float(opt.aug_scale_range) ** np.random.uniform(-1, 1)
            matrix = affine_matrix(sc, dx, dy, (h, w), opt.aug_affine_hw_order)
            img_2, seg_2, joint_c_2, corr, vis = affine_augment(img_2, seg_2, joint_c_2, corr, vis, matrix)
        flow = corr_to_flow(corr, vis, channels_first=True).transpose(1, 2, 0)  # to_chw needs no copy
        np.clip(flow[..., 0], -w, w, out=flow[..., 0])
        np.clip(flow[..., 1], -h, h, out=flow[..., 1])
        if self.augment and opt.aug_color_jit:
            img_1, img_2 = hue_jitter(img_1, img_2, np.random.uniform(-HUE_JITTER, HUE_JITTER))
        return self.make_item(id_1, id_2, img_1, img_2, joint_c_1, joint_c_2, seg_1, seg_2, flow, vis, (w, h))
