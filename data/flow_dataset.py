"""Pair dataset for the flow regression module (``--dataset_type flow``)."""
from __future__ import annotations

from typing import Any

import numpy as np

from data.base_dataset import BaseDataset, shift_image
from util.flow_util import corr_to_flow
from util.seg_util import smooth_visibility


def _random_shift(shift_range: int) -> int:
    """Uniform integer in ``[-r, r - 1]`` (upper bound exclusive, as the original); 0 when ``r == 0``."""
    return int(np.random.randint(-shift_range, shift_range)) if shift_range > 0 else 0


def shift_augment(img_2: np.ndarray, seg_2: np.ndarray, joint_c_2: np.ndarray, flow: np.ndarray,
                  vis: np.ndarray, dx: int, dy: int) -> tuple[np.ndarray, ...]:
    """Translate the target side by ``(dx, dy)`` whole pixels, keeping flow, visibility and joints consistent.

    Args:
        img_2: ``float32 [H, W, 3]`` in [-1, 1]; seg_2: ``uint8 [H, W]``; joint_c_2: ``[K, 2]`` (x, y), -1 missing;
        flow: ``float32 [H, W, 2]`` target -> source pixel offsets; vis: ``uint8 [H, W, 1]`` labels 0/1/2.

    Returns:
        ``(img_2, seg_2, joint_c_2, flow, vis)`` after the shift: the target pixel that moves
        to ``(x + dx, y + dy)`` still points at the same source position, so its flow loses ``(dx, dy)``;
        uncovered pixels become background (vis 2, flow 0, black image, seg 0); joints leaving
        ``[0, W] x [0, H]`` become ``(-1, -1)``.
    """
    h, w = img_2.shape[:2]
    flow = flow - np.array([dx, dy], dtype=np.float32)
    vis = shift_image(vis, dx, dy, 2)
    flow = shift_image(flow, dx, dy, 0) * (vis < 2).astype(np.float32)
    img_2 = shift_image(img_2, dx, dy, -1.0)  # 0 in [0, 1] space
    seg_2 = shift_image(seg_2, dx, dy, 0)
    jc = joint_c_2.copy()
    valid = (jc[:, 0] >= 0) & (jc[:, 1] >= 0)
    jc[valid] += np.array([dx, dy], dtype=jc.dtype)
    outside = (jc[:, 0] < 0) | (jc[:, 0] > w) | (jc[:, 1] < 0) | (jc[:, 1] > h)
    jc[outside] = -1
    return img_2, seg_2, jc, flow, vis


class FlowDataset(BaseDataset):
    """The item dict (``img_1``, ``flow_2to1``, ... see docs/architecture.md) for flow regression.

    Heatmaps use the actual image size (which must equal ``opt.image_size``). When ``opt.is_train`` and
    the split is ``train``, the target side is shifted by a random integer offset drawn from
    ``[-aug_shiftx_range, aug_shiftx_range - 1] x [-aug_shifty_range, aug_shifty_range - 1]`` after the
    flow is computed; randomness comes from ``np.random`` (seeded per DataLoader worker).
    """

    def __init__(self, opt: Any, split: str, strict_seg: bool = False) -> None:
        super().__init__(opt, split, strict_seg)
        self.augment = split == 'train' and bool(opt.is_train)

    def __getitem__(self, index: int) -> dict[str, Any]:
        id_1, id_2 = self.pairs[index]
        img_1, img_2 = self.read_image(id_1), self.read_image(id_2)
        joint_c_1, joint_c_2 = self.read_joints(id_1), self.read_joints(id_2)
        seg_1, seg_2 = self.read_seg(id_1), self.read_seg(id_2)
        corr, vis = self.read_corr(id_1, id_2)
        vis = smooth_visibility(vis, self.opt.vis_smooth_rate)
        flow = corr_to_flow(corr, vis, channels_first=True).transpose(1, 2, 0)  # to_chw needs no copy
        if self.augment:
            dx, dy = _random_shift(self.opt.aug_shiftx_range), _random_shift(self.opt.aug_shifty_range)
            img_2, seg_2, joint_c_2, flow, vis = shift_augment(img_2, seg_2, joint_c_2, flow, vis, dx, dy)
        h, w = img_1.shape[:2]
        return self.make_item(id_1, id_2, img_1, img_2, joint_c_1, joint_c_2, seg_1, seg_2, flow, vis, (w, h))
