"""util.image_file: what is wrong with an image file, from its bytes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from util.image_file import describe_undecodable, image_bytes_problem, image_format


def _encoded(ext: str) -> bytes:
    img = np.random.default_rng(0).integers(0, 256, (16, 12, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize('ext, fmt', [('.jpg', 'JPEG'), ('.png', 'PNG'), ('.bmp', 'BMP')])
def test_complete_files_pass_and_are_recognised(ext, fmt):
    data = _encoded(ext)
    assert image_bytes_problem(data) is None
    assert image_bytes_problem(np.frombuffer(data, np.uint8)) is None
    assert image_format(data) == fmt


def test_empty_and_truncated_files_are_named():
    assert image_bytes_problem(b'')[0] == 'empty'
    jpg = _encoded('.jpg')
    kind, detail = image_bytes_problem(jpg[:len(jpg) // 2])
    assert kind == 'truncated' and 'end-of-image' in detail
    bmp = _encoded('.bmp')
    kind, detail = image_bytes_problem(np.frombuffer(bmp[:-10], np.uint8))
    assert kind == 'truncated' and f'{len(bmp) - 10} of {len(bmp)} bytes' in detail


def test_undecodable_files_are_described():
    assert describe_undecodable(b'\x89PNG\r\n\x1a\n' + b'\x00' * 20) == 'a corrupt PNG file'
    text = describe_undecodable(b'<html>Quota exceeded</html>')
    assert 'not an image' in text and 'error page' in text
    assert 'error page' not in describe_undecodable(bytes(range(200, 230)))
