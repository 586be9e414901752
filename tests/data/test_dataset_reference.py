"""Dataset items equal, bit for bit, items assembled from the files by a slow reference built on the definitions.

The reference reads every file on its own, draws heatmaps one joint at a time over every pixel, one-hot
encodes one class at a time, median-filters the visibility untransposed and computes the flow per channel; it
reuses only the (unchanged) augmentation helpers and draws the random numbers in the order the datasets do.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from data.data_loader import create_dataset
from data.flow_dataset import shift_augment
from data.pose_transfer_dataset import HUE_JITTER, affine_augment, affine_matrix, hue_jitter
from tests.data.helpers import make_opt
from util.io import load_json, load_pickle


def _image(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return (bgr[:, :, ::-1].astype(np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5)


def _corr(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = path.read_bytes()
    width, height = np.frombuffer(raw[:8], '<i4')
    corr = np.frombuffer(raw[8:8 + 8 * width * height], '<f4').reshape(height, width, 2).copy()
    vis = np.frombuffer(raw[8 + 8 * width * height:], np.uint8).reshape(height, width, 1).copy()
    return corr, vis


def _smoothed(vis: np.ndarray, k: int) -> np.ndarray:
    blurred = cv2.medianBlur(np.ascontiguousarray(vis[:, :, 0]), k)[:, :, None]
    return np.where(vis < 2, blurred, vis)


def _flow(corr: np.ndarray, vis: np.ndarray) -> np.ndarray:
    height, width = corr.shape[:2]
    flow = np.empty((height, width, 2), np.float32)
    flow[:, :, 0] = corr[:, :, 0] - np.arange(width, dtype=np.float32)
    flow[:, :, 1] = corr[:, :, 1] - np.arange(height, dtype=np.float32)[:, None]
    return flow * (vis < 2).astype(np.float32)


def _heatmaps(kps: np.ndarray, height: int, width: int, mode: str, radius: float) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    maps = np.zeros((len(kps), height, width), np.float32)
    for k, (x, y) in enumerate(kps.astype(np.float64)):
        if x == -1 or y == -1:
            continue
        d2 = (cols - x) ** 2 + (rows - y) ** 2
        maps[k] = d2 <= radius ** 2 if mode == 'binary' else np.exp(-d2 / radius ** 2)
    return maps


def _one_hot(seg: np.ndarray, nc: int) -> np.ndarray:
    maps = np.zeros((nc,) + seg.shape, np.float32)
    for k in range(nc):
        maps[k][seg == k] = 1
    return maps


def _chw(arr: np.ndarray) -> torch.Tensor:
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)).astype(np.float32))


def _reference_item(root: Path, opt, id_1: str, id_2: str, augment: bool) -> dict:
    poses = load_pickle(root / opt.fn_pose)
    img_1, img_2 = (_image(root / opt.img_dir / f'{i}.jpg') for i in (id_1, id_2))
    jc_1, jc_2 = (np.asarray(poses[i], np.float32) for i in (id_1, id_2))
    seg_1, seg_2 = (cv2.imread(str(root / opt.seg_dir / f'{i}.bmp'), cv2.IMREAD_GRAYSCALE) for i in (id_1, id_2))
    corr, vis = _corr(root / opt.corr_dir / f'{id_2}_{id_1}.corr')
    vis = _smoothed(vis, opt.vis_smooth_rate)
    h, w = opt.image_size
    if opt.dataset_type == 'flow':
        flow = _flow(corr, vis)
        if augment:
            dx = int(np.random.randint(-opt.aug_shiftx_range, opt.aug_shiftx_range))
            dy = int(np.random.randint(-opt.aug_shifty_range, opt.aug_shifty_range))
            img_2, seg_2, jc_2, flow, vis = shift_augment(img_2, seg_2, jc_2, flow, vis, dx, dy)
    else:
        if augment:
            dx = int(np.random.randint(-opt.aug_shiftx_range, opt.aug_shiftx_range))
            dy = int(np.random.randint(-opt.aug_shifty_range, opt.aug_shifty_range))
            sc = float(opt.aug_scale_range) ** np.random.uniform(-1, 1)
            matrix = affine_matrix(sc, dx, dy, (h, w), opt.aug_affine_hw_order)
            img_2, seg_2, jc_2, corr, vis = affine_augment(img_2, seg_2, jc_2, corr, vis, matrix)
        flow = _flow(corr, vis)
        flow[..., 0] = np.clip(flow[..., 0], -w, w)
        flow[..., 1] = np.clip(flow[..., 1], -h, h)
        if augment and opt.aug_color_jit:
            img_1, img_2 = hue_jitter(img_1, img_2, np.random.uniform(-HUE_JITTER, HUE_JITTER))
    heat = {n: _heatmaps(jc, h, w, opt.joint_mode, opt.joint_radius) for n, jc in ((1, jc_1), (2, jc_2))}
    return {
        'img_1': _chw(img_1), 'img_2': _chw(img_2),
        'joint_c_1': torch.from_numpy(jc_1.astype(np.float32)), 'joint_c_2': torch.from_numpy(jc_2.astype(np.float32)),
        'joint_1': torch.from_numpy(heat[1]), 'joint_2': torch.from_numpy(heat[2]),
        'seg_label_1': _chw(seg_1), 'seg_label_2': _chw(seg_2),
        'seg_1': torch.from_numpy(_one_hot(seg_1, opt.seg_nc)), 'seg_2': torch.from_numpy(_one_hot(seg_2, opt.seg_nc)),
        'flow_2to1': _chw(flow), 'vis_2': _chw(vis),
        'id_1': id_1, 'id_2': id_2,
    }


def _assert_identical(item: dict, ref: dict, where: str) -> None:
    assert set(item) == set(ref), where
    for key, value in ref.items():
        got = item[key]
        if isinstance(value, str):
            assert got == value, (where, key)
            continue
        assert got.dtype == value.dtype and got.shape == value.shape, (where, key)
        assert got.stride() == value.stride(), (where, key)  # contiguous, like the reference
        # Bytes, not values: -0.0 and NaN payloads count too.
        assert got.numpy().tobytes() == value.numpy().tobytes(), (where, key)


CASES = [
    ('flow', False, {}),
    ('flow', True, dict(is_train=True, aug_shiftx_range=6, aug_shifty_range=4)),
    ('flow', False, dict(joint_mode='gaussian', joint_radius=3)),
    ('pose_transfer', False, {}),
    ('pose_transfer', True, dict(is_train=True, use_augmentation=1)),
    ('pose_transfer', True, dict(is_train=True, use_augmentation=1, aug_color_jit=1, aug_affine_hw_order='intended',
                                 joint_mode='gaussian')),
]


@pytest.mark.parametrize('dataset_type,augment,overrides', CASES,
                         ids=['flow', 'flow-shift', 'flow-gaussian', 'pose', 'pose-affine', 'pose-affine-hue-gauss'])
def test_items_bit_identical_to_reference(demo_root: Path, dataset_type: str, augment: bool, overrides: dict) -> None:
    opt = make_opt(demo_root, dataset_type, **overrides)
    dataset = create_dataset(opt, 'train')
    assert dataset.augment == augment
    pairs = load_json(demo_root / opt.fn_split)['train']
    for index in range(0, len(pairs), 5):
        np.random.seed(index)
        item = dataset[index]
        np.random.seed(index)
        ref = _reference_item(demo_root, opt, *pairs[index], augment)
        _assert_identical(item, ref, f'{dataset_type} item {index}')
