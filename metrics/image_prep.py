"""How a protocol turns image files into the uint8 arrays its metrics compare: decoding, the size rule, the
target's uint8 conversion.

* Decoders: ``'cv2'`` (OpenCV, what the datasets use) or ``'pil'`` (Pillow, what ``imageio.imread`` uses, so
  what GFLA's metric script read). For the baseline JPEGs both are libjpeg(-turbo) and give the same pixels;
  the setting states which one a protocol means.
* Resize rules map an image at the dataset's native size to the protocol's size. ``'none'``: the sizes must
  already agree. ``'center_crop'``: keep the central rows/columns; 256x256 -> 256x176 keeps columns 40..215,
  the rule of PATN's ``img[:, 40:-40]`` for the low-resolution In-shop images (exact pixels, no resampling).
  ``'cv2_bilinear'``: ``cv2.resize`` with ``INTER_LINEAR`` (PIDM resized its 256x256 images so, for FID and
  LPIPS only, in float32; here on uint8 with OpenCV's rounding). ``'pil_bicubic'``: Pillow's bicubic resize, which
  low-pass filters when shrinking (NTED and CFLD resized the high-resolution photos with bicubic filters;
  from 256x256 this is the nearest available equivalent, not their pipeline).
* Target uint8 conversion: ``'decoded'`` (the file's pixels) or ``'float32_roundtrip'``: the pixel ``v`` through
  the dataset's float32 chain ``(v / 255 - 0.5) / 0.5`` and back through the test pass's ``trunc((x + 1) · 127.5)``,
  which gives ``v - 1`` for ``v`` in 1..63. The original's SSIM/PSNR compared the model output with that tensor,
  so a protocol that reproduces them must do the same. The rule applies to SSIM, masked SSIM and PSNR only; LPIPS
  and FID always see the target file's pixels.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from metrics.ssim import to_uint8
from util.image_file import describe_undecodable, image_bytes_problem

DECODERS = ('cv2', 'pil')
RESIZE_RULES = ('none', 'center_crop', 'cv2_bilinear', 'pil_bicubic')
TARGET_UINT8_RULES = ('decoded', 'float32_roundtrip')
ORDERS = ('split', 'sorted_names')
DATASET_NAMES = ('deepfashion', 'market', 'demo')

Size = tuple[int, int]


class ImageReadError(ValueError):
    """An image file cannot be used (missing, truncated, undecodable, wrong size). The message names it."""


@dataclass(frozen=True)
class ImageSettings:
    """What the metrics of a protocol see.

    Attributes:
        deepfashion_size, market_size, demo_size: ``(H, W)`` at which every metric is computed, per dataset.
        resize_rule: how an image at the dataset's native size reaches that size (module docstring).
        decoder: ``'cv2'`` or ``'pil'``.
        target_uint8: ``'decoded'`` or ``'float32_roundtrip'``, for SSIM, masked SSIM and PSNR (module docstring).
        order: order of the pairs for batch-wise averaging and for which images a dropped remainder removes:
            ``'split'`` (the split file's order, as the original's test pass) or ``'sorted_names'`` (the sorted
            generated file names, as GFLA's script).
    """
    deepfashion_size: Size = (256, 256)
    market_size: Size = (128, 64)
    demo_size: Size = (128, 64)
    resize_rule: str = 'none'
    decoder: str = 'cv2'
    target_uint8: str = 'decoded'
    order: str = 'split'

    def __post_init__(self) -> None:
        for name, choices in (('resize_rule', RESIZE_RULES), ('decoder', DECODERS),
                              ('target_uint8', TARGET_UINT8_RULES), ('order', ORDERS)):
            if getattr(self, name) not in choices:
                raise ValueError(f'image {name} {getattr(self, name)!r} is not one of {list(choices)}')
        for dataset in DATASET_NAMES:
            size = getattr(self, f'{dataset}_size')
            if len(size) != 2 or min(size) < 1:
                raise ValueError(f'image {dataset}_size must be (H, W) of positive integers, got {size}')

    def size(self, dataset_name: str) -> Size:
        if dataset_name not in DATASET_NAMES:
            raise ValueError(f'unknown dataset {dataset_name!r}; valid: {list(DATASET_NAMES)}')
        return tuple(getattr(self, f'{dataset_name}_size'))


def decode_image(path: str | os.PathLike, decoder: str) -> np.ndarray:
    """The RGB pixels of an image file, ``uint8 [H, W, 3]``.

    Raises:
        ImageReadError: the file is missing, empty, truncated (a JPEG without its end-of-image marker, a BMP shorter
            than its header says), or not decodable.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImageReadError(f'cannot read {path}: {e.strerror or e}') from e
    problem = image_bytes_problem(data)
    if problem is not None:
        raise ImageReadError(f'{path} {problem[1]}')
    if decoder == 'cv2':
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ImageReadError(f'{path} cannot be decoded: {describe_undecodable(data)} ({len(data)} bytes)')
        return np.ascontiguousarray(img[:, :, ::-1])
    if decoder == 'pil':
        try:
            with Image.open(path) as img:
                return np.asarray(img.convert('RGB'), dtype=np.uint8)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise ImageReadError(f'{path} cannot be decoded ({len(data)} bytes): {e}') from e
    raise ValueError(f'unknown decoder {decoder!r}; valid: {list(DECODERS)}')


def center_crop_box(src: Size, dst: Size) -> tuple[int, int]:
    """``(top, left)`` of the ``dst`` window centred in ``src`` (``(src - dst) // 2`` per axis)."""
    if dst[0] > src[0] or dst[1] > src[1]:
        raise ValueError(f'center_crop cannot make {dst[0]}x{dst[1]} out of {src[0]}x{src[1]}')
    return (src[0] - dst[0]) // 2, (src[1] - dst[1]) // 2


def resize_image(img: np.ndarray, size: Size, rule: str) -> np.ndarray:
    """``uint8 [H, W, 3]`` -> ``uint8 [size[0], size[1], 3]`` by ``rule`` (unchanged when already that size)."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    if rule == 'none':
        raise ValueError(f'image is {img.shape[0]}x{img.shape[1]}, the protocol needs {h}x{w} and resizes nothing')
    if rule == 'center_crop':
        top, left = center_crop_box(img.shape[:2], size)
        return np.ascontiguousarray(img[top:top + h, left:left + w])
    if rule == 'cv2_bilinear':
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    if rule == 'pil_bicubic':
        return np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.BICUBIC), dtype=np.uint8)
    raise ValueError(f'unknown resize rule {rule!r}; valid: {list(RESIZE_RULES)}')


def transform_keypoints(kps: np.ndarray, src: Size, dst: Size, rule: str) -> np.ndarray:
    """``[..., 18, 2]`` ``(x, y)`` keypoints of a ``src`` image moved into the frame of ``resize_image``'s output.

    Missing joints (a negative coordinate) stay ``-1``. Crop: shifted by the crop offset; resizes: scaled by the
    size ratio (pixel-centre convention ``(x + 0.5) · s - 0.5``, as OpenCV and Pillow sample).
    """
    kps = np.asarray(kps, dtype=np.float64)
    if tuple(src) == tuple(dst):
        return kps
    missing = (kps < 0).any(axis=-1, keepdims=True)
    if rule == 'center_crop':
        top, left = center_crop_box(src, dst)
        out = kps - np.array([left, top], dtype=np.float64)
    elif rule in ('cv2_bilinear', 'pil_bicubic'):
        scale = np.array([dst[1] / src[1], dst[0] / src[0]], dtype=np.float64)
        out = (kps + 0.5) * scale - 0.5
    else:
        raise ValueError(f'resize rule {rule!r} cannot move keypoints from {src} to {dst}')
    return np.where(missing, -1.0, out)


def target_uint8(img: np.ndarray, rule: str) -> np.ndarray:
    """The target as the protocol compares it: ``uint8 [H, W, 3]`` or ``[N, H, W, 3]`` (see module docstring)."""
    if rule == 'decoded':
        return img
    if rule != 'float32_roundtrip':
        raise ValueError(f'unknown target_uint8 rule {rule!r}; valid: {list(TARGET_UINT8_RULES)}')
    batch = img[None] if img.ndim == 3 else img
    # The dataset reader's float32 chain, then the test pass's uint8 truncation.
    normalised = (batch.astype(np.float32) / 255.0 - 0.5) / 0.5
    out = to_uint8(torch.from_numpy(np.ascontiguousarray(normalised.transpose(0, 3, 1, 2)))).numpy()
    return out[0] if img.ndim == 3 else out
