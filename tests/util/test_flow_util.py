import colorsys
import re
import struct

import cv2
import numpy as np
import pytest
import torch

from util.flow_util import (CorrFileError, corr_file_size, corr_to_flow, flow_to_rgb, flow_to_rgb_batch,
                            read_corr, write_corr)

H, W = 3, 5


def _example():
    rng = np.random.default_rng(0)
    corr = (rng.random((H, W, 2)) * 40 - 5).astype(np.float32)
    vis = rng.integers(0, 3, (H, W)).astype(np.uint8)
    return corr, vis


def _hand_written_corr(path, width, height, floats, labels):
    """Write a .corr file with struct, independently of write_corr."""
    path.write_bytes(struct.pack('<ii', width, height) + struct.pack(f'<{len(floats)}f', *floats)
                     + bytes(labels))


def test_file_size_formula():
    assert corr_file_size(256, 256) == 589_832
    assert corr_file_size(128, 64) == 73_736


def test_write_corr_byte_layout(tmp_path):
    corr, vis = _example()
    path = write_corr(tmp_path / 'a_b.corr', corr, vis)
    data = path.read_bytes()
    assert len(data) == 8 + 9 * H * W
    assert struct.unpack('<ii', data[:8]) == (W, H)
    # Interleaved (u, v), row-major: floats 0,1 = pixel (0,0); floats 2,3 = pixel (x=1, y=0).
    assert struct.unpack('<ff', data[8:16]) == (corr[0, 0, 0], corr[0, 0, 1])
    assert struct.unpack('<f', data[16:20])[0] == corr[0, 1, 0]
    assert struct.unpack('<f', data[8 + 8 * H * W - 4:8 + 8 * H * W])[0] == corr[-1, -1, 1]
    assert data[8 + 8 * H * W] == vis[0, 0]
    assert data[8 + 8 * H * W + 1] == vis[0, 1]
    assert data[-1] == vis[-1, -1]


def test_read_hand_written_file(tmp_path):
    path = tmp_path / 'x.corr'
    # 2x1 image (W=2, H=1): pixel (0,0) -> (10.5, -3), pixel (1,0) -> (0, 0) background.
    _hand_written_corr(path, 2, 1, [10.5, -3.0, 0.0, 0.0], [1, 2])
    corr, vis = read_corr(path)
    assert corr.dtype == np.float32 and corr.shape == (1, 2, 2)
    assert vis.dtype == np.uint8 and vis.shape == (1, 2, 1)
    assert corr.tolist() == [[[10.5, -3.0], [0.0, 0.0]]]
    assert vis[:, :, 0].tolist() == [[1, 2]]


def test_round_trip_and_vis_shapes(tmp_path):
    corr, vis = _example()
    for i, v in enumerate((vis, vis[:, :, None])):
        path = write_corr(tmp_path / 'deep' / f'{i}.corr', corr, v)
        corr2, vis2 = read_corr(path)
        assert np.array_equal(corr2, corr)
        assert np.array_equal(vis2[:, :, 0], vis)
        corr2[0, 0, 0] = 1.0  # results are ordinary writable arrays
    assert sorted(p.name for p in (tmp_path / 'deep').iterdir()) == ['0.corr', '1.corr']


def test_read_missing_file(tmp_path):
    with pytest.raises(CorrFileError, match='missing.corr'):
        read_corr(tmp_path / 'missing.corr')
    assert issubclass(CorrFileError, ValueError)


@pytest.mark.parametrize('cut', [3, 8, 20, 8 + 9 * H * W - 1])
def test_read_truncated(tmp_path, cut):
    corr, vis = _example()
    path = write_corr(tmp_path / 'full.corr', corr, vis)
    short = tmp_path / 'short.corr'
    short.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(CorrFileError, match=r'short\.corr.*truncated'):
        read_corr(short)


def test_read_oversized_and_bad_header(tmp_path):
    corr, vis = _example()
    data = write_corr(tmp_path / 'ok.corr', corr, vis).read_bytes()
    cases = {
        'extra.corr': (data + b'\x00', 'oversized'),
        'swapped.corr': (struct.pack('<ii', W + 1, H) + data[8:], 'truncated'),
        'zero.corr': (struct.pack('<ii', 0, H) + data[8:], 'malformed'),
        'negative.corr': (struct.pack('<ii', W, -H) + data[8:], 'malformed'),
        'huge.corr': (struct.pack('<ii', 1 << 20, 1 << 20) + data[8:], 'malformed'),
    }
    for name, (payload, problem) in cases.items():
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(CorrFileError, match=f'{re.escape(name)}.*{problem}'):
            read_corr(path)


def test_read_bad_vis_labels(tmp_path):
    path = tmp_path / 'labels.corr'
    _hand_written_corr(path, 3, 1, [0.0] * 6, [0, 7, 3])
    with pytest.raises(CorrFileError, match=r'labels\.corr.*\[3, 7\]'):
        read_corr(path)


@pytest.mark.parametrize('bad_value', [float('nan'), float('inf'), -float('inf')])
def test_read_rejects_non_finite_correspondence(tmp_path, bad_value):
    path = tmp_path / 'id2_id1.corr'
    floats = [1.0] * 12
    floats[7] = bad_value  # v of pixel (x=1, y=1) of a 2x3 (W x H) map
    _hand_written_corr(path, 2, 3, floats, [0] * 6)
    with pytest.raises(CorrFileError, match=r'id2_id1\.corr.*1 non-finite.*\(x=1, y=1\)'):
        read_corr(path)


def test_write_corr_validates(tmp_path):
    corr, vis = _example()
    with pytest.raises(ValueError, match='corr must be'):
        write_corr(tmp_path / 'a.corr', corr[..., :1], vis)
    with pytest.raises(ValueError, match='vis must be'):
        write_corr(tmp_path / 'a.corr', corr, vis[:, :-1])
    bad = vis.copy()
    bad[0, 0] = 5
    with pytest.raises(ValueError, match=r'\[5\]'):
        write_corr(tmp_path / 'a.corr', corr, bad)
    nan = corr.copy()
    nan[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match='NaN or inf'):
        write_corr(tmp_path / 'a.corr', nan, vis)
    assert not (tmp_path / 'a.corr').exists()


def test_corr_to_flow():
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    corr = np.stack([xs + 1.5, ys - 2.0], axis=2)
    corr[1, 2] = [0.0, 0.0]
    flow = corr_to_flow(corr)
    assert flow.dtype == np.float32 and flow.shape == (H, W, 2)
    expected = np.broadcast_to(np.array([1.5, -2.0], np.float32), (H, W, 2)).copy()
    expected[1, 2] = [-2.0, -1.0]  # (0 - x, 0 - y) at x=2, y=1
    assert np.array_equal(flow, expected)

    vis = np.zeros((H, W), np.uint8)
    vis[1, 2] = 2
    vis[0, 0] = 1  # invisible human pixels keep their flow
    expected[1, 2] = 0
    assert np.array_equal(corr_to_flow(corr, vis), expected)
    assert np.array_equal(corr_to_flow(corr, vis[:, :, None]), expected)
    with pytest.raises(ValueError, match='vis must be'):
        corr_to_flow(corr, vis[:2])


def _reference_flow(corr, vis):
    """(u - x, v - y) per pixel in float32, times [vis < 2] (so -x * 0 stays -0.0 and NaN stays NaN)."""
    height, width = corr.shape[:2]
    flow = np.empty((height, width, 2), np.float32)
    flow[:, :, 0] = corr[:, :, 0] - np.arange(width, dtype=np.float32)
    flow[:, :, 1] = corr[:, :, 1] - np.arange(height, dtype=np.float32)[:, None]
    if vis is not None:
        flow *= (vis.reshape(height, width, 1) < 2).astype(np.float32)
    return flow


def test_corr_to_flow_bit_identical_to_reference():
    rng = np.random.default_rng(2)
    for height, width in ((128, 64), (7, 11)):
        corr = rng.uniform(-20, 300, (height, width, 2)).astype(np.float32)
        corr[0, 3] = [np.nan, -np.inf]
        corr[2, 1] = [-4.0, 1.0]  # negative flow on a background pixel: -0.0 after masking
        vis = rng.integers(0, 3, (height, width, 1)).astype(np.uint8)
        vis[2, 1] = 2
        with np.errstate(invalid='ignore'):
            for v in (None, vis, vis[:, :, 0]):
                ref = _reference_flow(corr, v)
                hwc = corr_to_flow(corr, v)
                chw = corr_to_flow(corr, v, channels_first=True)
                assert hwc.dtype == chw.dtype == np.float32 and hwc.flags.c_contiguous and chw.flags.c_contiguous
                assert hwc.tobytes() == ref.tobytes()
                assert chw.tobytes() == np.ascontiguousarray(ref.transpose(2, 0, 1)).tobytes()
        masked = corr_to_flow(corr, vis, channels_first=True)
        assert masked[0, 2, 1] == 0 and np.signbit(masked[0, 2, 1])
        assert corr_to_flow(corr, vis).flags.writeable  # the cached pixel grid is not handed out


def _hsv_reference(hue_deg, value=1.0):
    return np.array(colorsys.hsv_to_rgb(hue_deg / 360.0, 1.0, value)) * 255


def test_flow_to_rgb_directions():
    # zero, right, down, left, up (image y points down), diagonal down-right
    flow = np.array([[[0, 0], [3, 0], [0, 3], [-3, 0], [0, -3], [3 / np.sqrt(2), 3 / np.sqrt(2)]]], np.float32)
    rgb = flow_to_rgb(flow)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 6, 3)
    assert rgb[0, 0].tolist() == [0, 0, 0]
    assert rgb[0, 1].tolist() == [255, 0, 0]
    assert rgb[0, 3].tolist() == [0, 255, 255]
    # OpenCV hue = degrees / 2, truncated: 90 deg -> 45, 270 deg -> 135, 45 deg -> 22 (= 44 deg).
    for col, hue_deg in ((2, 90), (4, 270), (5, 44)):
        assert np.abs(rgb[0, col].astype(float) - _hsv_reference(hue_deg)).max() <= 1.0


def test_flow_to_rgb_value_normalisation():
    flow = np.array([[[1, 0], [2, 0], [3, 0]]], np.float32)  # magnitudes 1, 2, 3 -> values 0, 127, 255
    rgb = flow_to_rgb(flow)
    assert rgb[0, :, 0].tolist() == [0, 127, 255]
    assert rgb[0, :, 1:].max() == 0
    # A constant-magnitude or all-zero flow is black, without NaN warnings.
    assert flow_to_rgb(np.zeros((4, 4, 2), np.float32)).max() == 0
    assert flow_to_rgb(np.ones((4, 4, 2), np.float32)).max() == 0
    with pytest.raises(ValueError, match='NaN'):
        flow_to_rgb(np.full((2, 2, 2), np.nan, np.float32))


def _original_flow_to_rgb(flow: np.ndarray) -> np.ndarray:
    """The original's steps, written out: an HSV image of float64 zeros, hue and magnitude from OpenCV's
    cartToPolar in the flow's own dtype (float32 from the networks), hue = angle * 180 / pi / 2 computed in that
    dtype, value = cv2.normalize min-max to [0, 255], all truncated to uint8 at once, then HSV -> RGB."""
    hsv = np.zeros(flow.shape[:2] + (3,), dtype=np.float64)
    hsv[:, :, 1] = 255
    magnitude, angle = cv2.cartToPolar(np.ascontiguousarray(flow[:, :, 0]), np.ascontiguousarray(flow[:, :, 1]))
    hsv[:, :, 0] = angle * 180 / np.pi / 2
    hsv[:, :, 2] = cv2.normalize(magnitude, None, alpha=0, beta=255, norm_type=cv2.NORM_MINMAX)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


# Vectors whose hue lands on the other side of an integer step with a float64 atan2 than with OpenCV's float32
# cartToPolar (found on random flows; e.g. the first is hue 23 in the original, 24 with float64).
HUE_BOUNDARY_VECTORS = [[11.625797, 12.913218], [-1.5869749, -4.3608217], [-6.682909, 8.5527525],
                        [3.835145, -6.6421747], [10.06331, 3.6626577], [7.7843766, -8.6468935]]


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_flow_to_rgb_matches_the_original_pixel_for_pixel(seed):
    rng = np.random.default_rng(seed)
    random = (rng.standard_normal((128, 96, 2)) * rng.uniform(0.5, 30)).astype(np.float32)
    random[0, :len(HUE_BOUNDARY_VECTORS)] = HUE_BOUNDARY_VECTORS
    random[1, :8] = [[1, 0], [0, 1], [-1, 0], [0, -1], [1, 1], [-1, -1], [0, 0], [1e-30, -1e-30]]
    expected = _original_flow_to_rgb(random)
    assert np.array_equal(flow_to_rgb(random), expected)
    assert np.array_equal(flow_to_rgb(torch.from_numpy(random)), expected)  # tensors as the visualiser passes
    # Pixel grids of integer flows (all exact directions), and a float64 flow (the original kept its dtype).
    ys, xs = np.mgrid[-40:41, -40:41]
    grid = np.stack([xs, ys], axis=2).astype(np.float32)
    assert np.array_equal(flow_to_rgb(grid), _original_flow_to_rgb(grid))
    as_f64 = random.astype(np.float64) * 1.37
    assert np.array_equal(flow_to_rgb(as_f64), _original_flow_to_rgb(as_f64))


def test_flow_to_rgb_batch_matches_numpy():
    flow = torch.randn(2, 2, 6, 4, generator=torch.Generator().manual_seed(0)) * 5
    out = flow_to_rgb_batch(flow)
    assert out.shape == (2, 3, 6, 4) and out.dtype == torch.float32
    for i in range(2):
        ref = flow_to_rgb(flow[i].permute(1, 2, 0).numpy())
        assert torch.allclose(out[i], torch.from_numpy(ref).permute(2, 0, 1).float() / 127.5 - 1)
