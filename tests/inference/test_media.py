"""Photo reading (decoded like the datasets' images), result images and videos (GIF, MP4 with a GIF fallback)."""
from __future__ import annotations

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from inference import media
from inference.media import ImageError, as_rgb_image, list_images, load_image, save_image, write_video


def _image(h=48, w=40, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_load_image_decodes_like_the_datasets(tmp_path):
    rgb = _image()
    cv2.imwrite(str(tmp_path / 'a.png'), rgb[:, :, ::-1])
    np.testing.assert_array_equal(load_image(tmp_path / 'a.png'), rgb)
    cv2.imwrite(str(tmp_path / 'b.jpg'), rgb[:, :, ::-1])
    # The datasets' decoding: OpenCV BGR, flipped to RGB.
    np.testing.assert_array_equal(load_image(tmp_path / 'b.jpg'), cv2.imread(str(tmp_path / 'b.jpg'))[:, :, ::-1])
    gray = rgb[:, :, 0]
    cv2.imwrite(str(tmp_path / 'g.png'), gray)
    np.testing.assert_array_equal(load_image(tmp_path / 'g.png'), np.repeat(gray[:, :, None], 3, axis=2))
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])).save(tmp_path / 'rgba.png')
    np.testing.assert_array_equal(load_image(tmp_path / 'rgba.png'), rgb)


def test_bad_photos_are_named(tmp_path):
    (tmp_path / 'notes.jpg').write_text('hello')
    with pytest.raises(ImageError, match=r'notes.jpg is not a readable image'):
        load_image(tmp_path / 'notes.jpg')
    with pytest.raises(FileNotFoundError, match='absent.png'):
        load_image(tmp_path / 'absent.png')
    cv2.imwrite(str(tmp_path / 'tiny.png'), _image(20, 40))
    with pytest.raises(ImageError, match=r'tiny.png: the image is 20x40 \(HxW\) pixels; at least 32'):
        load_image(tmp_path / 'tiny.png')
    assert load_image(tmp_path / 'tiny.png', min_side=16).shape == (20, 40, 3)


def test_truncated_and_empty_photos_are_refused(tmp_path):
    # OpenCV decodes a JPEG cut short without complaint (the lost rows come out grey): the bytes are checked first.
    ok, buf = cv2.imencode('.jpg', _image(64, 48))
    assert ok
    (tmp_path / 'cut.jpg').write_bytes(buf.tobytes()[:len(buf) // 2])
    with pytest.raises(ImageError, match=r'cut.jpg is truncated .*end-of-image'):
        load_image(tmp_path / 'cut.jpg')
    (tmp_path / 'empty.png').write_bytes(b'')
    with pytest.raises(ImageError, match=r'empty.png is empty'):
        load_image(tmp_path / 'empty.png')


def test_in_memory_images(tmp_path):
    rgb = _image()
    arr, name = as_rgb_image(Image.fromarray(rgb), 'mine')
    np.testing.assert_array_equal(arr, rgb)
    assert name == 'mine'
    arr, name = as_rgb_image(rgb[::-1], 'flipped')
    assert arr.flags.c_contiguous and name == 'flipped'
    with pytest.raises(ImageError, match=r'mine: expected an image path, a PIL image or an RGB uint8 array .* float32'):
        as_rgb_image(rgb.astype(np.float32), 'mine')
    with pytest.raises(ImageError, match='got a list'):
        as_rgb_image([1, 2, 3], 'mine')


def test_list_images(tmp_path):
    for name in ('b.jpg', 'a.PNG', 'c.txt'):
        (tmp_path / name).write_bytes(b'x')
    assert [p.name for p in list_images(tmp_path)] == ['a.PNG', 'b.jpg']
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ImageError, match='no image file'):
        list_images(tmp_path / 'empty')
    with pytest.raises(FileNotFoundError, match='image folder not found'):
        list_images(tmp_path / 'absent')


def test_save_image_round_trip(tmp_path):
    rgb = _image()
    path = save_image(tmp_path / 'sub' / 'x.png', rgb)
    np.testing.assert_array_equal(load_image(path), rgb)
    assert sorted(p.name for p in path.parent.iterdir()) == ['x.png']  # no temporary file left
    with pytest.raises(ValueError, match="unknown image type '.txt'"):
        save_image(tmp_path / 'x.txt', rgb)


def test_gif_has_every_frame(tmp_path):
    frames = [np.full((32, 24, 3), v, np.uint8) for v in (0, 120, 250)]
    written = write_video(tmp_path / 'anim.gif', frames, fps=5)
    assert written.path == tmp_path / 'anim.gif' and written.message is None
    back = iio.imread(written.path, index=None)
    assert back.shape[:3] == (3, 32, 24)
    assert [int(np.median(f[..., :3])) for f in back] == [0, 120, 250]
    assert iio.immeta(written.path, index=0)['duration'] == 200


def test_mp4_without_ffmpeg_writes_a_gif_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(media, 'ffmpeg_available', lambda: False)
    written = write_video(tmp_path / 'dance.mp4', [_image(32, 32, s) for s in range(2)], fps=10)
    assert written.path == tmp_path / 'dance.gif' and written.path.is_file()
    assert not (tmp_path / 'dance.mp4').exists()
    assert 'imageio-ffmpeg' in written.message and 'pip install imageio-ffmpeg' in written.message
    assert str(written.path) in written.message


def test_mp4_with_ffmpeg(tmp_path):
    if not media.ffmpeg_available():
        pytest.skip('imageio-ffmpeg is not installed')
    written = write_video(tmp_path / 'clip.mp4', [_image(33, 31, s) for s in range(4)], fps=10)
    assert written.path == tmp_path / 'clip.mp4' and written.message is None
    assert iio.imread(written.path, index=None, plugin='FFMPEG').shape[0] == 4


def test_video_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="unknown video type '.png'"):
        write_video(tmp_path / 'x.png', [_image()])
    with pytest.raises(ValueError, match='no frames'):
        write_video(tmp_path / 'x.gif', [])
    with pytest.raises(ValueError, match='fps must be positive'):
        write_video(tmp_path / 'x.gif', [_image()], fps=0)
