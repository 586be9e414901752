import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from util.seg_util import seg_label_to_map, seg_label_to_map_batch, smooth_visibility


def test_seg_label_to_map_one_hot():
    label = np.array([[0, 1, 6], [2, 2, 0]], np.uint8)
    maps = seg_label_to_map(label)
    assert maps.shape == (2, 3, 7) and maps.dtype == np.float32
    assert maps.sum(axis=2).tolist() == [[1, 1, 1], [1, 1, 1]]
    assert maps[0, 2, 6] == 1 and maps[1, 0, 2] == 1 and maps[1, 1, 2] == 1 and maps[0, 0, 0] == 1
    assert maps[:, :, 3:6].sum() == 0
    # [H, W, 1] and float labels give the same result.
    assert np.array_equal(seg_label_to_map(label[:, :, None].astype(np.float32)), maps)
    assert seg_label_to_map(label, nc=8).shape == (2, 3, 8)


def test_labels_outside_the_classes_give_zero_rows_as_the_original():
    label = np.array([[0, 7, 255], [3, 6, 9]], np.uint8)
    maps = seg_label_to_map(label)
    assert maps.shape == (2, 3, 7) and maps.dtype == np.float32
    assert maps.sum(axis=2).tolist() == [[1, 0, 0], [1, 1, 0]]
    assert maps[0, 0, 0] == 1 and maps[1, 0, 3] == 1 and maps[1, 1, 6] == 1
    signed = seg_label_to_map(np.array([[-1, 2]]))
    assert signed[0, 0].sum() == 0 and signed[0, 1, 2] == 1


def test_seg_label_to_map_rejects_bad_labels():
    with pytest.raises(ValueError, match=r'\[1\.5\]'):
        seg_label_to_map(np.array([[0, 1.5]]))
    with pytest.raises(ValueError, match='shape'):
        seg_label_to_map(np.zeros((2, 2, 3)))


def _reference_one_hot(label, nc):
    maps = np.zeros(label.shape + (nc,), np.float32)
    for k in range(nc):
        maps[:, :, k][label == k] = 1
    return maps


def test_seg_label_to_map_bit_identical_to_reference():
    rng = np.random.default_rng(3)
    for dtype in (np.uint8, np.int32, np.int64, np.uint16, np.float32, np.float64):
        for nc in (1, 7, 20):
            label = rng.integers(0, nc, (37, 23)).astype(dtype)
            ref = _reference_one_hot(label, nc)
            hwc = seg_label_to_map(label, nc)
            chw = seg_label_to_map(label[:, :, None], nc, channels_first=True)
            assert hwc.dtype == chw.dtype == np.float32 and hwc.flags.c_contiguous and chw.flags.c_contiguous
            assert hwc.tobytes() == ref.tobytes()
            assert chw.tobytes() == np.ascontiguousarray(ref.transpose(2, 0, 1)).tobytes()
    # labels outside the classes: zero rows in both layouts (as the original), for integer and float labels
    outside = np.array([[0, 7], [9, 3]], np.uint8)
    for label in (outside, outside.astype(np.float32)):
        chw = seg_label_to_map(label, 7, channels_first=True)
        assert chw.tobytes() == np.ascontiguousarray(_reference_one_hot(outside, 7).transpose(2, 0, 1)).tobytes()


def _naive_median(vis, k):
    padded = np.pad(vis, k // 2, mode='edge')  # OpenCV medianBlur replicates the border
    return np.median(sliding_window_view(padded, (k, k)), axis=(2, 3)).astype(np.uint8)


def test_seg_label_to_map_batch_equals_seg_label_to_map():
    """The on-device one-hot maps (--maps_on_device) equal the loader's, labels outside the classes included."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 9, size=(3, 1, 20, 12)).astype(np.uint8)  # 7 and 8 are outside the 7 classes
    for tensor in (torch.from_numpy(labels), torch.from_numpy(labels).float()):
        maps = seg_label_to_map_batch(tensor, 7)
        assert maps.dtype == torch.float32 and maps.shape == (3, 7, 20, 12)
        for n in range(3):
            assert maps[n].numpy().tobytes() == seg_label_to_map(labels[n, 0], 7, channels_first=True).tobytes()
    with pytest.raises(ValueError, match=r'\[N, 1, H, W\]'):
        seg_label_to_map_batch(torch.zeros(3, 20, 12), 7)


def test_smooth_visibility_semantics():
    vis = np.full((9, 9), 2, np.uint8)
    vis[2:7, 2:7] = 0          # human region, visible
    vis[4, 4] = 1              # isolated invisible pixel: flipped by the median
    vis[0, 8] = 0              # isolated human pixel in the background: median says background
    out = smooth_visibility(vis, 3)
    assert out.dtype == np.uint8 and out.shape == vis.shape
    assert out[4, 4] == 0
    assert out[0, 8] == 2
    assert out[2, 2] == 2      # silhouette corner: 5 of its 9 neighbours are background
    assert out[2, 4] == 0      # edge pixel: 6 of 9 neighbours are human
    # Background stays background even when the median would say human.
    vis2 = np.zeros((5, 5), np.uint8)
    vis2[2, 2] = 2
    assert smooth_visibility(vis2, 3)[2, 2] == 2


def test_smooth_visibility_matches_reference_and_shapes():
    rng = np.random.default_rng(0)
    vis = rng.choice(np.array([0, 1, 2], np.uint8), size=(16, 12), p=[0.5, 0.2, 0.3])
    for k in (3, 5):
        ref = np.where(vis < 2, _naive_median(vis, k), vis)
        assert np.array_equal(smooth_visibility(vis, k), ref)
        out = smooth_visibility(vis[:, :, None], k)
        assert out.shape == (16, 12, 1) and np.array_equal(out[:, :, 0], ref)


def test_smooth_visibility_tall_and_wide_maps_match_reference():
    # Tall maps (Market's 128x64) are filtered transposed; the result must be the same median.
    rng = np.random.default_rng(5)
    for shape in ((128, 64), (40, 9), (9, 40), (66, 65)):
        vis = rng.choice(np.array([0, 1, 2], np.uint8), size=shape, p=[0.5, 0.2, 0.3])
        for k in (3, 5, 7):
            ref = np.where(vis < 2, _naive_median(vis, k), vis)
            out = smooth_visibility(vis[:, :, None], k)
            assert out.shape == shape + (1,) and out.flags.c_contiguous and np.array_equal(out[:, :, 0], ref)


def test_smooth_visibility_disabled_and_invalid():
    vis = np.random.default_rng(1).integers(0, 3, (6, 6)).astype(np.uint8)
    out = smooth_visibility(vis, 0)
    assert np.array_equal(out, vis) and out is not vis
    with pytest.raises(ValueError, match='odd'):
        smooth_visibility(vis, 4)
    with pytest.raises(ValueError, match='non-negative'):
        smooth_visibility(vis, -3)
    with pytest.raises(ValueError, match='uint8'):
        smooth_visibility(vis.astype(np.float32), 3)
