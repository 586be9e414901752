"""Reading photos, writing result images and videos for the inference pipeline.

Photos are decoded with OpenCV exactly as the datasets decode their images (``cv2.imdecode`` of the file's
bytes, ``IMREAD_COLOR``: any format OpenCV reads, grey and RGBA files become 3-channel, EXIF orientation is
applied), then turned from BGR to RGB, so a dataset image read here gives the same pixels the test script sees.
Every error names the file.

Videos go through imageio: an ``.mp4`` (or ``.mov``, ``.mkv``, ``.avi``) needs the ffmpeg plugin of the
optional ``imageio-ffmpeg`` package; when it is not installed a GIF is written next to the requested file
instead, and the returned :class:`VideoWritten` says so (the command line prints that message). GIFs are
written by Pillow.
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import imageio.v3 as iio
import numpy as np
from PIL import Image

from util.image_file import describe_undecodable, image_bytes_problem
from util.io import atomic_target

PathLike = str | os.PathLike

# A photo must be at least this many pixels on its shorter side; below that no person can be framed usefully.
MIN_IMAGE_SIDE = 32
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
FFMPEG_SUFFIXES = ('.mp4', '.mov', '.mkv', '.avi')
VIDEO_SUFFIXES = ('.gif', *FFMPEG_SUFFIXES)


class ImageError(ValueError):
    """A photo cannot be used (unreadable, not an image, too small, wrong array type); the message names it."""


def check_min_size(image: np.ndarray, name: str, min_side: int = MIN_IMAGE_SIDE) -> np.ndarray:
    if min(image.shape[:2]) < min_side:
        raise ImageError(f'{name}: the image is {image.shape[0]}x{image.shape[1]} (HxW) pixels; at least '
                         f'{min_side} pixels on each side are needed to find and frame a person')
    return image


def load_image(path: PathLike, *, min_side: int = MIN_IMAGE_SIDE) -> np.ndarray:
    """A photo file -> RGB ``uint8 [H, W, 3]`` (decoded like the datasets' images).

    Raises:
        FileNotFoundError: no such file. ImageError: not a decodable image, or smaller than ``min_side``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'image file not found: {path}')
    try:
        data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    except OSError as e:
        raise ImageError(f'cannot read the image file {path}: {e}') from e
    problem = image_bytes_problem(data)
    if problem is not None:
        raise ImageError(f'{path} {problem[1]}; give a complete JPEG, PNG, BMP, WebP or TIFF photo')
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError(f'{path} is not a readable image: {describe_undecodable(data)} ({data.size} bytes); give '
                         f'a JPEG, PNG, BMP, WebP or TIFF photo')
    return check_min_size(np.ascontiguousarray(bgr[:, :, ::-1]), str(path), min_side)


def as_rgb_image(image: Any, name: str = '<image>', *, min_side: int = MIN_IMAGE_SIDE) -> tuple[np.ndarray, str]:
    """A path, a PIL image or an RGB ``uint8 [H, W, 3]`` array -> ``(uint8 [H, W, 3] array, name)``.

    The name (the file path, or ``name`` for in-memory images) is what error messages and results use.
    """
    if isinstance(image, (str, os.PathLike)):
        return load_image(image, min_side=min_side), str(image)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert('RGB'))
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f'a {image.dtype} array of shape {image.shape}' if isinstance(image, np.ndarray) else \
            f'a {type(image).__name__}'
        raise ImageError(f'{name}: expected an image path, a PIL image or an RGB uint8 array [H, W, 3], got {desc}')
    return check_min_size(np.ascontiguousarray(image), name, min_side), name


def list_images(folder: PathLike) -> list[Path]:
    """The image files of ``folder`` (by suffix, see :data:`IMAGE_SUFFIXES`), sorted by name.

    Raises:
        FileNotFoundError: not a folder. ImageError: it holds no image file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'image folder not found: {folder}')
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageError(f'{folder}: no image file ({", ".join(IMAGE_SUFFIXES)})')
    return files


def save_image(path: PathLike, image: np.ndarray) -> Path:
    """Write an RGB ``uint8 [H, W, 3]`` image atomically; the format follows the suffix (PNG recommended)."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f'{path}: unknown image type {path.suffix!r}; use one of {", ".join(IMAGE_SUFFIXES)}')
    with atomic_target(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(image[:, :, ::-1])):
            raise OSError(f'could not write the image {path}')
    return path


def ffmpeg_available() -> bool:
    """Whether imageio can write MP4 (the optional ``imageio-ffmpeg`` package is installed)."""
    return importlib.util.find_spec('imageio_ffmpeg') is not None


@dataclass(frozen=True)
class VideoWritten:
    """Where a video went. ``message`` is set when the requested format could not be written (GIF fallback)."""

    path: Path
    message: str | None = None


def write_video(path: PathLike, frames: Sequence[np.ndarray], fps: float = 10.0) -> VideoWritten:
    """Write RGB ``uint8 [H, W, 3]`` frames as a GIF or, with ``imageio-ffmpeg`` installed, an MP4 (H.264).

    Without ``imageio-ffmpeg`` an ``.mp4`` request writes ``<path>.gif`` (same stem) and says so in the result.
    The write is atomic.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f'{path}: unknown video type {path.suffix!r}; use .gif or {", ".join(FFMPEG_SUFFIXES)}')
    if not frames:
        raise ValueError(f'{path}: no frames to write')
    if not fps > 0:
        raise ValueError(f'fps must be positive, got {fps}')
    stack = np.stack([np.asarray(f, dtype=np.uint8) for f in frames])
    message = None
    if suffix in FFMPEG_SUFFIXES and not ffmpeg_available():
        gif = path.with_suffix('.gif')
        message = (f'writing {path.name} needs ffmpeg, which imageio gets from the optional package imageio-ffmpeg '
                   f'(pip install imageio-ffmpeg); wrote the GIF {gif} instead')
        path, suffix = gif, '.gif'
    with atomic_target(path) as tmp:
        if suffix == '.gif':
            # Pillow's GIF writer: duration per frame in milliseconds, loop forever.
            iio.imwrite(tmp, stack, extension='.gif', plugin='pillow', duration=1000.0 / fps, loop=0)
        else:
            # H.264 needs even sizes; macro_block_size=2 pads odd sizes by one pixel instead of resizing.
            iio.imwrite(tmp, stack, extension=suffix, plugin='FFMPEG', fps=fps, macro_block_size=2)
    return VideoWritten(path, message)
