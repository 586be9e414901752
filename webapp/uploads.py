"""Checks on what a visitor uploads, before anything decodes it.

* Every upload is at most :data:`MAX_UPLOAD_BYTES` (20 MB).
* A photo must start with the signature of an image format the pipeline reads (JPEG, PNG, BMP, WebP, TIFF), and
  its header must give a size of at most :data:`MAX_IMAGE_PIXELS`, read by Pillow without decoding the pixels;
  only then is it decoded (by :func:`inference.media.load_image`, as the datasets decode images).
* A keypoint file must be UTF-8 JSON.
* A ZIP of keypoint files: at most :data:`MAX_ZIP_MEMBERS` ``.json`` members, at most :data:`MAX_UPLOAD_BYTES`
  uncompressed in all, each written under its own base name into a fresh folder (no path from the archive is
  used, so nothing lands outside it); other members (folders, ``__MACOSX`` files) are ignored.

Every refusal is an :class:`UploadError` whose message names the file and says what is accepted.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from util.image_file import image_format

PathLike = str | os.PathLike

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
MAX_ZIP_MEMBERS = 2000
# The image formats the page accepts (what the pipeline's OpenCV decoder reads), told by their first bytes.
ACCEPTED_FORMATS = ('JPEG', 'PNG', 'BMP', 'WebP', 'TIFF')
ACCEPTED_IMAGES = 'JPEG, PNG, BMP, WebP or TIFF'


class UploadError(ValueError):
    """An upload is refused; the message names the file and what is accepted."""


def display_name(path: PathLike) -> str:
    """The name a visitor knows the upload by (its file name; the server's temporary folder is left out)."""
    return Path(path).name


def check_size(path: PathLike, max_bytes: int = MAX_UPLOAD_BYTES) -> int:
    """The size of the uploaded file ``path`` in bytes.

    Raises:
        UploadError: missing or larger than ``max_bytes``.
    """
    path = Path(path)
    if not path.is_file():
        raise UploadError(f'{display_name(path)}: the upload did not arrive; upload it again')
    size = path.stat().st_size
    if size > max_bytes:
        raise UploadError(f'{display_name(path)} is {size / 2**20:.1f} MB; uploads are limited to '
                          f'{max_bytes / 2**20:.0f} MB')
    if size == 0:
        raise UploadError(f'{display_name(path)} is empty')
    return size


def sniff_image_format(head: bytes) -> str | None:
    """The accepted image format whose signature ``head`` (the file's first 16 bytes) starts with, or None."""
    fmt = image_format(head)
    return fmt if fmt in ACCEPTED_FORMATS else None


def check_image_upload(path: PathLike, max_bytes: int = MAX_UPLOAD_BYTES,
                       max_pixels: int = MAX_IMAGE_PIXELS) -> Path:
    """Check that ``path`` is an image file of an accepted format and size, without decoding its pixels.

    Returns:
        ``path`` as a ``Path``, ready for :func:`inference.media.load_image`.

    Raises:
        UploadError: too large, not an image (by its signature), an unreadable header, or too many pixels.
    """
    path = Path(path)
    check_size(path, max_bytes)
    with path.open('rb') as f:
        head = f.read(16)
    fmt = sniff_image_format(head)
    if fmt is None:
        raise UploadError(f'{display_name(path)} is not an image: its first bytes are not those of a '
                          f'{ACCEPTED_IMAGES} file; upload a photo')
    try:
        with Image.open(path) as im:  # reads the header only
            width, height = im.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise UploadError(f'{display_name(path)} looks like a {fmt} file but its header cannot be read '
                          f'({type(e).__name__}); upload another photo') from e
    if width * height > max_pixels:
        raise UploadError(f'{display_name(path)} is {width}x{height} pixels; at most {max_pixels / 1e6:.0f} '
                          f'megapixels are accepted')
    return path


def check_keypoint_upload(path: PathLike, max_bytes: int = MAX_UPLOAD_BYTES) -> Path:
    """Check that ``path`` is a UTF-8 JSON file (its keypoint format is checked when it is read).

    Raises:
        UploadError: too large, not UTF-8 text or not JSON.
    """
    path = Path(path)
    check_size(path, max_bytes)
    if path.suffix.lower() != '.json':
        raise UploadError(f'{display_name(path)}: upload a keypoint .json file (OpenPose, COCO or a [[x, y], ...] '
                          f'list)')
    try:
        json.loads(path.read_bytes().decode('utf-8-sig'))
    except UnicodeDecodeError as e:
        raise UploadError(f'{display_name(path)} is not a text file (not UTF-8); upload a keypoint .json file') from e
    except json.JSONDecodeError as e:
        raise UploadError(f'{display_name(path)} is not valid JSON ({e}); upload a keypoint .json file') from e
    return path


def extract_keypoint_zip(path: PathLike, out_dir: PathLike, max_bytes: int = MAX_UPLOAD_BYTES,
                         max_members: int = MAX_ZIP_MEMBERS) -> list[Path]:
    """The ``.json`` members of the ZIP ``path``, written flat into ``out_dir``; returns their paths (unsorted).

    Raises:
        UploadError: too large, not a ZIP, no ``.json`` member, too many members or too many bytes unpacked,
        or two members with the same base name.
    """
    path = Path(path)
    out_dir = Path(out_dir)
    check_size(path, max_bytes)
    if not zipfile.is_zipfile(path):
        raise UploadError(f'{display_name(path)} is not a ZIP archive; upload a .zip of per-frame keypoint .json '
                          f'files')
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith('.json')
                   and not Path(m.filename).name.startswith('._') and '__MACOSX' not in Path(m.filename).parts]
        if not members:
            raise UploadError(f'{display_name(path)} holds no .json file; put one keypoint file per frame in the ZIP')
        if len(members) > max_members:
            raise UploadError(f'{display_name(path)} holds {len(members)} .json files; at most {max_members} frames '
                              f'are accepted')
        if sum(m.file_size for m in members) > max_bytes:
            raise UploadError(f'{display_name(path)} unpacks to more than {max_bytes / 2**20:.0f} MB')
        out_dir.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        names: set[str] = set()
        for member in members:
            name = Path(member.filename).name
            if name in names:
                raise UploadError(f'{display_name(path)}: two files are named {name}; give each frame its own name')
            names.add(name)
            with archive.open(member) as src:
                data = src.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise UploadError(f'{display_name(path)}: {name} unpacks to more than {max_bytes / 2**20:.0f} MB')
            target = out_dir / name
            target.write_bytes(data)
            written.append(target)
    return written
