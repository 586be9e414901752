import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from util.pose_util import (DRAW_LIMBS, kp_to_map_batch, JOINT_COLORS, JOINT_NAMES, MASK_LIMBS, draw_pose, draw_pose_from_map,
                            get_pose_mask, get_pose_mask_batch, kp_to_map, pose_map_to_joints)

H, W = 128, 64  # Market-1501 size: the transposed quirk matters because H != W


def _missing_pose():
    return np.full((18, 2), -1.0)


# ----------------------------------------------------------------------------- constants

def test_tables():
    assert len(JOINT_NAMES) == len(JOINT_COLORS) == 18
    assert JOINT_NAMES[0] == 'nose' and JOINT_NAMES[1] == 'neck' and JOINT_NAMES[8] == 'right_hip'
    assert len(DRAW_LIMBS) == 19 and len(MASK_LIMBS) == 23
    assert all(0 <= j < 18 for limb in DRAW_LIMBS + MASK_LIMBS for j in limb)
    assert JOINT_COLORS[0] == (255, 0, 0) and JOINT_COLORS[12] == (0, 0, 255) and JOINT_COLORS[17] == (255, 0, 85)
    assert MASK_LIMBS[-6:] == ((1, 16), (1, 17), (8, 11), (11, 5), (8, 2), (16, 17))


# ----------------------------------------------------------------------------- heatmaps

def test_kp_to_map_binary_values():
    kps = [[3, 4], [-1, 5], [5, -1], [7.5, 2.5]]
    maps = kp_to_map((10, 8), kps, mode='binary', radius=2)
    assert maps.shape == (8, 10, 4) and maps.dtype == np.float32
    m = maps[:, :, 0]
    assert m[4, 3] == 1 and m[4, 5] == 1 and m[2, 3] == 1  # d^2 = 0, 4 (on the radius: included)
    assert m[5, 5] == 0 and m[4, 6] == 0                   # d^2 = 5, 9
    assert m.sum() == 13                                    # lattice points with x^2 + y^2 <= 4
    assert not maps[:, :, 1].any() and not maps[:, :, 2].any()  # x == -1 or y == -1: missing
    assert maps[:, :, 3].sum() == 12                        # half-pixel centre: 12 points within 2


def test_kp_to_map_gaussian_values():
    maps = kp_to_map((10, 8), [[3, 4], [-1, -1]], mode='gaussian', radius=4)
    assert maps[4, 3, 0] == 1
    assert maps[4, 4, 0] == pytest.approx(np.exp(-1 / 16), rel=1e-6)
    assert maps[1, 7, 0] == pytest.approx(np.exp(-25 / 16), rel=1e-6)
    assert not maps[:, :, 1].any()


def test_kp_to_map_only_exact_minus_one_is_missing():
    maps = kp_to_map((6, 6), [[-0.5, 2], [-2, 2]], mode='binary', radius=2)
    assert maps[2, 0, 0] == 1          # (-0.5, 2) is not "missing": its disc reaches x = 0, 1
    assert maps[2, 0, 1] == 1          # (-2, 2): only x = 0 is within radius 2


def test_kp_to_map_matches_naive_loop():
    rng = np.random.default_rng(1)
    kps = rng.random((18, 2)) * [W, H]
    kps[[3, 9]] = -1
    for mode in ('binary', 'gaussian'):
        maps = kp_to_map((W, H), kps, mode=mode, radius=4)
        ref = np.zeros((H, W, 18), np.float32)
        for k, (x, y) in enumerate(kps):
            if x == -1 or y == -1:
                continue
            for yy in range(0, H, 7):
                for xx in range(0, W, 5):
                    d2 = (xx - x) ** 2 + (yy - y) ** 2
                    ref[yy, xx, k] = float(d2 <= 16) if mode == 'binary' else np.exp(-d2 / 16)
        assert np.allclose(maps[::7, ::5], ref[::7, ::5], atol=1e-7)


def _reference_heatmaps(width, height, kps, mode, radius):
    """The heatmap definition, one joint at a time over every pixel: float64 ``d^2``, then float32."""
    kps = np.asarray(kps, dtype=np.float64)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    maps = np.zeros((height, width, len(kps)), np.float32)
    for k, (x, y) in enumerate(kps):
        if x == -1 or y == -1:
            continue
        d2 = (cols - x) ** 2 + (rows - y) ** 2
        maps[:, :, k] = d2 <= radius ** 2 if mode == 'binary' else np.exp(-d2 / radius ** 2)
    return maps


def _random_keypoints(rng, width, height, n=18):
    """Fractional, integer and half-pixel joints inside, near and beyond the borders; missing ones."""
    kps = rng.uniform(-0.3, 1.3, (n, 2)) * [width, height]
    kps[: n // 3] = np.round(kps[: n // 3] * 2) / 2
    kps[n // 3] = [-1, -1]
    kps[n // 3 + 1, 0] = -1                          # missing by x alone
    kps[n // 3 + 2, 1] = -1                          # missing by y alone
    kps[n // 3 + 3] = [width + 1e6, -1e6]             # far outside
    kps[n // 3 + 4] = [-0.5, height - 0.5]            # just outside a corner, disc reaches in
    kps[n // 3 + 5] = [width - 1, 0]                  # on the last column, first row
    return kps


@pytest.mark.parametrize('mode', ['binary', 'gaussian'])
def test_kp_to_map_bit_identical_to_reference(mode):
    rng = np.random.default_rng(7)
    for trial in range(60):
        width, height = [(W, H), (23, 37), (256, 256), (5, 3)][trial % 4]
        radius = [1, 2.5, 4, 8, 0.5][trial % 5]
        kps = _random_keypoints(rng, width, height)
        for dtype in (np.float32, np.float64):
            k = kps.astype(dtype)
            ref = _reference_heatmaps(width, height, k, mode, radius)
            hwk = kp_to_map((width, height), k, mode=mode, radius=radius)
            khw = kp_to_map((width, height), k, mode=mode, radius=radius, channels_first=True)
            assert hwk.dtype == khw.dtype == np.float32 and hwk.flags.c_contiguous and khw.flags.c_contiguous
            assert hwk.shape == ref.shape and hwk.tobytes() == ref.tobytes(), (trial, width, height, radius)
            assert khw.tobytes() == np.ascontiguousarray(ref.transpose(2, 0, 1)).tobytes()


@pytest.mark.parametrize('mode', ['binary', 'gaussian'])
def test_kp_to_map_batch_equals_kp_to_map(mode):
    """The on-device drawing (--maps_on_device) gives the loader's maps: a batch of samples with fractional,
    half-pixel, missing, border and far-away joints, on several sizes and radii."""
    rng = np.random.default_rng(11)
    for trial in range(20):
        width, height = [(W, H), (23, 37), (256, 256), (5, 3)][trial % 4]
        radius = [1, 2.5, 4, 8, 0.5][trial % 5]
        kps = np.stack([_random_keypoints(rng, width, height) for _ in range(3)]).astype(np.float32)
        maps = kp_to_map_batch(torch.from_numpy(kps), height, width, mode=mode, radius=radius)
        assert maps.dtype == torch.float32 and maps.shape == (3, 18, height, width)
        for n in range(3):
            ref = kp_to_map((width, height), kps[n], mode=mode, radius=radius, channels_first=True)
            if mode == 'binary':
                assert maps[n].numpy().tobytes() == ref.tobytes(), (trial, n)
            else:  # float64 exp of torch and numpy may differ in the last bit: at most one float32 ulp
                np.testing.assert_allclose(maps[n].numpy(), ref, rtol=2 ** -23, atol=0)
        assert maps.sum() > 0


def test_kp_to_map_batch_bad_arguments():
    with pytest.raises(ValueError, match='unknown mode'):
        kp_to_map_batch(torch.zeros(1, 18, 2), 8, 8, mode='disc')
    with pytest.raises(ValueError, match=r'\[N, K, 2\]'):
        kp_to_map_batch(torch.zeros(18, 2), 8, 8)


def test_kp_to_map_gaussian_tail_rounds_to_zero():
    # Gaussian values are only computed within 10.25 radii of a joint: beyond d^2 / r^2 = 104 the float32 value is 0.
    assert np.float32(np.exp(-103.0)) > 0
    assert np.float32(np.exp(-104.0)) == 0
    maps = kp_to_map((256, 4), [[0, 1]], mode='gaussian', radius=1)
    np.testing.assert_array_equal(maps, _reference_heatmaps(256, 4, [[0, 1]], 'gaussian', 1))
    assert maps[1, 10, 0] > 0 and maps[1, 11, 0] == 0  # exp(-100), exp(-121)


@pytest.mark.parametrize('mode', ['binary', 'gaussian'])
def test_kp_to_map_degenerate_inputs_follow_the_formula(mode):
    kps = [[np.nan, 3], [np.inf, 2], [2, -np.inf], [2, 3], [-1, -1]]
    with np.errstate(all='ignore'):
        for radius in (4, 0):
            ref = _reference_heatmaps(9, 7, kps, mode, radius)
            assert kp_to_map((9, 7), kps, mode=mode, radius=radius).tobytes() == ref.tobytes()
            batch = kp_to_map_batch(torch.tensor([kps, kps[::-1]]), 7, 9, mode=mode, radius=radius)
            np.testing.assert_array_equal(batch[0].numpy(), ref.transpose(2, 0, 1))  # NaN where the formula is
            np.testing.assert_array_equal(batch[1].numpy(), ref.transpose(2, 0, 1)[::-1])


def test_kp_to_map_bad_mode():
    with pytest.raises(ValueError, match="'binary', 'gaussian'"):
        kp_to_map((4, 4), [[1, 1]], mode='gauss')


# ----------------------------------------------------------------------------- pose mask

def _naive_closing(mask):
    """5x5 dilation (outside = False) then 5x5 erosion (outside = True), written out directly."""
    dil = sliding_window_view(np.pad(mask, 2, constant_values=False), (5, 5)).any(axis=(2, 3))
    return sliding_window_view(np.pad(dil, 2, constant_values=True), (5, 5)).all(axis=(2, 3))


def _naive_disc(shape, row, col, radius=4):
    rr, cc = np.mgrid[0:shape[0], 0:shape[1]]
    return ((rr - row) / radius) ** 2 + ((cc - col) / radius) ** 2 < 1


def _single_limb_pose(p_shoulder, p_elbow):
    kps = _missing_pose()
    kps[2], kps[3] = p_shoulder, p_elbow  # limb (2, 3) is in MASK_LIMBS
    return kps


def test_pose_mask_correct_orientation_single_limb():
    # Vertical limb x = 20.5, y from 30.5 to 60.5: no pixel centre lies on a boundary.
    kps = _single_limb_pose((20.5, 30.5), (20.5, 60.5))
    mask = get_pose_mask(kps, (H, W), transposed=False)
    assert mask.dtype == np.bool_ and mask.shape == (H, W)
    raw = np.zeros((H, W), bool)
    raw[31:61, 17:25] = True  # band of half-width 4: columns 16.5..24.5, rows 30.5..60.5
    raw |= _naive_disc((H, W), 30.5, 20.5) | _naive_disc((H, W), 60.5, 20.5)
    expected = _naive_closing(raw)
    assert np.array_equal(mask, expected)
    assert mask[45, 17] and mask[45, 24] and not mask[45, 16] and not mask[45, 25]
    assert mask[27, 20] and not mask[26, 20]


def test_pose_mask_transposed_quirk():
    # Limb spans y = 30.5..100.5: transposed, y becomes the column and is clipped at W = 64.
    kps = _single_limb_pose((20.5, 30.5), (20.5, 100.5))
    mask = get_pose_mask(kps, (H, W))  # default: transposed=True, like the original
    raw = np.zeros((H, W), bool)
    raw[17:25, 31:] = True  # rows from x (16.5..24.5), columns from y (30.5.., clipped)
    raw |= _naive_disc((H, W), 20.5, 30.5)  # the disc at (row 20.5, col 100.5) is outside
    assert np.array_equal(mask, _naive_closing(raw))
    assert not mask[64:].any()  # rows come from x in [0, 64): nothing below row 64 here
    # Equals the correct-orientation mask of the swapped coordinates.
    assert np.array_equal(mask, get_pose_mask(kps[:, ::-1].copy(), (H, W), transposed=False))
    assert not np.array_equal(mask, get_pose_mask(kps, (H, W), transposed=False))


def test_pose_mask_transposed_equals_swapped_full_pose():
    rng = np.random.default_rng(3)
    kps = rng.random((18, 2)) * [W, H]
    kps[[4, 13]] = -1
    assert np.array_equal(get_pose_mask(kps, (H, W), transposed=True),
                          get_pose_mask(kps[:, ::-1].copy(), (H, W), transposed=False))


def test_pose_mask_disc_is_strict_and_degenerate_limb_is_safe():
    kps = _missing_pose()
    kps[0] = (10, 20)  # nose only: no limb has two valid joints
    mask = get_pose_mask(kps, (H, W), transposed=False)
    assert mask[23, 10] and not mask[24, 10]      # (r - 20)^2 = 16 is not < 16
    assert mask[20, 13] and not mask[20, 14]
    assert np.array_equal(mask, _naive_closing(_naive_disc((H, W), 20, 10)))
    # A zero-length limb (both ends equal): the 1e-8 keeps the normal finite, only the discs remain.
    kps[1] = kps[0]
    assert np.array_equal(get_pose_mask(kps, (H, W), transposed=False), mask)


def test_pose_mask_empty_and_border_clipping():
    assert not get_pose_mask(_missing_pose(), (H, W)).any()
    kps = _missing_pose()
    kps[0] = (0, 0)  # disc clipped at the corner; the closing must not erode it away at the border
    mask = get_pose_mask(kps, (H, W), transposed=False)
    assert mask[0, 0] and mask[3, 0] and not mask[4, 0]


def test_pose_mask_float32_and_float64_accepted():
    rng = np.random.default_rng(4)
    kps = rng.random((18, 2)) * [W, H]
    m64 = get_pose_mask(kps, (H, W))
    m32 = get_pose_mask(kps.astype(np.float32), (H, W))
    # The precision can flip isolated boundary pixels only.
    assert (m64 != m32).sum() <= 4 and m64.sum() > 100
    with pytest.raises(ValueError, match='18 joints'):
        get_pose_mask(kps[:17], (H, W))


def test_pose_mask_batch():
    rng = np.random.default_rng(5)
    kps = torch.from_numpy(rng.random((3, 18, 2)) * [W, H]).float()
    kps[1, 5:] = -1
    out = get_pose_mask_batch(kps, (H, W))
    assert out.shape == (3, 1, H, W) and out.dtype == torch.float32
    for i in range(3):
        assert np.array_equal(out[i, 0].numpy(), get_pose_mask(kps[i].numpy(), (H, W)).astype(np.float32))
    out_t = get_pose_mask_batch(kps.double().numpy(), (H, W), transposed=False)
    assert torch.equal(out_t[2, 0], torch.from_numpy(get_pose_mask(kps[2].double().numpy(), (H, W),
                                                                   transposed=False)).float())
    with pytest.raises(ValueError, match=r'\[N, 18, 2\]'):
        get_pose_mask_batch(kps[0], (H, W))


# ----------------------------------------------------------------------------- drawing

def test_pose_map_to_joints_first_max_and_threshold():
    pose_map = np.zeros((6, 5, 3), np.float32)
    pose_map[2, 3, 0] = pose_map[4, 1, 0] = 0.9    # ties: first in row-major order wins -> (x=3, y=2)
    pose_map[1, 1, 1] = 0.1                        # not > 0.1: missing
    pose_map[5, 4, 2] = 0.2
    assert pose_map_to_joints(pose_map) == [(3, 2), None, (4, 5)]
    assert pose_map_to_joints(torch.from_numpy(pose_map).permute(2, 0, 1)) == [(3, 2), None, (4, 5)]


def test_draw_pose_from_map():
    kps = _missing_pose()
    kps[1] = (20, 30)   # neck
    kps[2] = (20, 60)   # right shoulder: limb (1, 2) vertical
    kps[5] = (40, 30)   # left shoulder: limb (1, 5) horizontal
    maps = kp_to_map((W, H), kps, mode='gaussian', radius=4)
    img, joints = draw_pose_from_map(maps)
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    assert joints[1] == (20, 30) and joints[2] == (20, 60) and joints[5] == (40, 30)
    assert all(joints[j] is None for j in range(18) if j not in (1, 2, 5))
    for j in (1, 2, 5):
        x, y = joints[j]
        assert tuple(img[y, x]) == JOINT_COLORS[j]
        assert tuple(img[y + 1, x + 1]) == JOINT_COLORS[j]  # radius-2 disc covers the 3x3 block
        assert tuple(img[y + 2, x]) != JOINT_COLORS[j]      # strictly inside: distance 2 excluded
    # Limb pixels are gray; far away is black.
    assert img[45, 20, 0] == img[45, 20, 1] == img[45, 20, 2] > 0
    assert img[30, 30, 0] == img[30, 30, 1] == img[30, 30, 2] > 0
    assert img[100:, :].max() == 0 and img[45, 30].max() == 0
    # A [K, H, W] tensor gives the same drawing.
    img_t, joints_t = draw_pose_from_map(torch.from_numpy(maps).permute(2, 0, 1))
    assert np.array_equal(img_t, img) and joints_t == joints


def test_draw_pose_from_keypoints():
    kps = _missing_pose()
    kps[0] = (10.4, 12.6)
    img = draw_pose(kps, (32, 24))
    assert tuple(img[12, 10]) == JOINT_COLORS[0]
    assert (img.reshape(-1, 3).any(axis=1)).sum() == 9  # one 3x3 disc, no limbs
