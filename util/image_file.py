"""What is wrong with an image file, told from its bytes before (or instead of) decoding it.

The datasets, the dataset check and the evaluation read images the original read with ``cv2.imread``. OpenCV
decodes a JPEG that was cut short without complaint (the missing rows come out grey) and says nothing useful
about a file that is not an image, so every reader first asks :func:`image_bytes_problem`, and on a failed decode
:func:`describe_undecodable` says what the file looks like.
"""
from __future__ import annotations

import numpy as np

JPEG_SOI = b'\xff\xd8\xff'
JPEG_EOI = b'\xff\xd9'
# Encoders may append a few bytes after the end-of-image marker; look for it in the last KiB.
JPEG_TAIL = 1024
# Signatures of the formats OpenCV reads, to say what a file that does not decode is.
IMAGE_SIGNATURES = ((JPEG_SOI, 'JPEG'), (b'\x89PNG\r\n\x1a\n', 'PNG'), (b'BM', 'BMP'), (b'GIF8', 'GIF'),
                    (b'II*\x00', 'TIFF'), (b'MM\x00*', 'TIFF'))


def _as_bytes(data: bytes | np.ndarray, start: int, stop: int | None = None) -> bytes:
    return data[start:stop].tobytes() if isinstance(data, np.ndarray) else bytes(data[start:stop])


def image_format(data: bytes | np.ndarray) -> str | None:
    """The format the file's first bytes announce (``'JPEG'``, ``'PNG'``, ...), or None."""
    head = _as_bytes(data, 0, 16)
    if head[:4] == b'RIFF' and head[8:12] == b'WEBP':  # RIFF is a container; WebP names itself at byte 8
        return 'WebP'
    return next((name for sig, name in IMAGE_SIGNATURES if head.startswith(sig)), None)


def image_bytes_problem(data: bytes | np.ndarray) -> tuple[str, str] | None:
    """``(kind, detail)`` if the bytes of an image file are certainly unusable, else None.

    Kinds: ``'empty'``; ``'truncated'`` (a JPEG without its end-of-image marker, or a BMP shorter than its
    header declares). A file that passes may still fail to decode (see :func:`describe_undecodable`).
    """
    size = len(data)
    if size == 0:
        return 'empty', 'is empty (0 bytes)'
    head = _as_bytes(data, 0, 6)
    if head.startswith(JPEG_SOI) and _as_bytes(data, -JPEG_TAIL).rfind(JPEG_EOI) < 0:
        return 'truncated', f'is truncated ({size} bytes, no JPEG end-of-image marker)'
    if head.startswith(b'BM') and size >= 6:
        declared = int.from_bytes(head[2:6], 'little')  # BMP header: total file size
        if size < declared:
            return 'truncated', f'is truncated ({size} of {declared} bytes)'
    return None


def describe_undecodable(data: bytes | np.ndarray) -> str:
    """Why a file that OpenCV could not decode is not an image: its announced format, or its first bytes."""
    fmt = image_format(data)
    if fmt is not None:
        return f'a corrupt {fmt} file'
    head = _as_bytes(data, 0, 24)
    text = all(32 <= b < 127 or b in b'\t\r\n' for b in head)
    return f'not an image, it starts with {head!r}' + (
        ' (text: an error page or a failed download saved under this name?)' if text else '')
