import cv2
import numpy as np
import pytest

from util.framing import (FRAMING_PRESETS, Frame, FramingParams, bone_scale_ratio, border_color, crop_to_frame,
                          frame_from_box, frame_from_keypoint_sequence, frame_from_keypoints, framing_params,
                          normalize_target_pose, paste_back)
from util.keypoints import KeypointError, valid_joints

DEMO_HW = (128, 64)
DF_HW = (256, 256)


def _pose(x0=300.0, y0=120.0, scale=2.0) -> np.ndarray:
    """Front-facing COCO-18 skeleton, 140 * scale pixels from the eyes to the ankles."""
    rel = [(0, 0), (0, 22), (-15, 22), (-20, 45), (-22, 68), (15, 22), (20, 45), (22, 68), (-9, 70), (-10, 105),
           (-10, 140), (9, 70), (10, 105), (10, 140), (-4, -4), (4, -4), (-8, -2), (8, -2)]
    return np.array([[x0 + scale * dx, y0 + scale * dy] for dx, dy in rel], dtype=np.float32)


def _smooth_image(h=480, w=640, seed=0) -> np.ndarray:
    """Smooth RGB uint8 image (low-frequency content only, so resampling errors stay small)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    channels = []
    for _ in range(3):
        fx, fy, ph = rng.uniform(0.005, 0.02), rng.uniform(0.005, 0.02), rng.uniform(0, 6)
        channels.append(128 + 90 * np.sin(fx * xx + ph) * np.cos(fy * yy))
    return np.clip(np.stack(channels, axis=2), 0, 255).round().astype(np.uint8)


# ----------------------------------------------------------------------------- the frame and its maps

def test_identity_frame_is_exact():
    img = _smooth_image(128, 64)
    frame = Frame.identity(DEMO_HW)
    assert frame.box == (0.0, 0.0, 64.0, 128.0) and frame.scale == (1.0, 1.0)
    np.testing.assert_array_equal(crop_to_frame(img, frame), img)
    other = np.zeros_like(img)
    np.testing.assert_array_equal(paste_back(img, frame, other), img)
    kps = _pose(30, 20, 0.5)
    np.testing.assert_array_equal(frame.to_output(kps), kps)


def test_keypoint_round_trip_within_a_pixel():
    rng = np.random.default_rng(3)
    for _ in range(20):
        kps = _pose(*rng.uniform(100, 900, 2), scale=rng.uniform(0.3, 6)).astype(np.float64)
        kps[rng.random(18) < 0.2] = -1
        for size, preset in ((DF_HW, 'deepfashion'), (DEMO_HW, 'market')):
            frame = frame_from_keypoints(kps, size, preset)
            out = frame.to_output(kps)
            np.testing.assert_array_equal(valid_joints(out), valid_joints(kps))   # every joint stays inside
            back = frame.to_source(out)
            assert np.abs(back - kps).max() < 1e-2   # float32 output; the requirement is one pixel
            assert (back[~valid_joints(kps)] == -1).all()


def test_matrix_conventions():
    frame = Frame((10, 20, 74, 148), DEMO_HW)   # 64x128 box at scale 1: a pure shift
    np.testing.assert_allclose(frame.matrix, [[1, 0, -10], [0, 1, -20]])
    frame2 = Frame((0, 0, 32, 64), DEMO_HW)     # 2x enlargement: pixel centre 0 -> 0.5
    np.testing.assert_allclose(frame2.to_output([[0, 0], [31, 63]]), [[0.5, 0.5], [62.5, 126.5]])
    full = np.concatenate([frame2.matrix, [[0, 0, 1]]]) @ np.concatenate([frame2.inverse_matrix, [[0, 0, 1]]])
    np.testing.assert_allclose(full, np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match='x1 > x0'):
        Frame((5, 0, 5, 10), DEMO_HW)
    with pytest.raises(ValueError, match='out_size'):
        Frame((0, 0, 5, 10), (0, 64))


def test_to_output_drops_joints_outside():
    frame = Frame((100, 100, 164, 228), DEMO_HW)
    out = frame.to_output([[90, 150], [130, 150], [164, 228], [164.5, 200]])
    assert (out[0] == -1).all() and (out[3] == -1).all()
    np.testing.assert_allclose(out[1], [30, 50])
    np.testing.assert_allclose(out[2], [64, 128])     # on the far edge: kept (x <= W, as the datasets do)
    assert frame.to_output([[90, 150]], drop_outside=False)[0, 0] == pytest.approx(-10)


def test_pixels_and_keypoints_stay_aligned():
    """A blob drawn at a keypoint lands where frame.to_output puts the keypoint."""
    img = np.zeros((400, 500), dtype=np.float32)
    point = np.array([231.3, 187.6])
    yy, xx = np.mgrid[0:400, 0:500]
    img += np.exp(-((xx - point[0]) ** 2 + (yy - point[1]) ** 2) / (2 * 6.0 ** 2)).astype(np.float32)
    for box in ((150.2, 90.7, 342.2, 474.7), (200.5, 160.25, 248.5, 256.25)):   # shrink x3 and enlarge x1.33
        frame = Frame(box, DEMO_HW)
        crop = crop_to_frame(img, frame, pad='constant')
        yy_c, xx_c = np.mgrid[0:128, 0:64]
        centroid = np.array([(crop * xx_c).sum(), (crop * yy_c).sum()]) / crop.sum()
        np.testing.assert_allclose(centroid, frame.to_output([point], drop_outside=False)[0], atol=0.1)


# ----------------------------------------------------------------------------- framing rules

@pytest.mark.parametrize('preset', sorted(FRAMING_PRESETS))
def test_frame_from_keypoints_places_the_pose(preset):
    p = FRAMING_PRESETS[preset]
    kps = _pose()
    frame = frame_from_keypoints(kps, DF_HW, preset)
    out = frame.to_output(kps)
    top, bottom = out[:, 1].min(), out[:, 1].max()
    assert (bottom - top) / DF_HW[0] == pytest.approx(p.keypoint_fill, abs=1e-4)
    assert (top + bottom + 1) / 2 / DF_HW[0] == pytest.approx(p.keypoint_center_y, abs=1e-4)
    assert (out[:, 0].min() + out[:, 0].max() + 1) / 2 == pytest.approx(DF_HW[1] / 2, abs=1e-3)
    x0, y0, x1, y1 = frame.box
    assert (x1 - x0) / (y1 - y0) == pytest.approx(1.0)


def test_wide_pose_grows_the_frame_with_side_margins():
    kps = _pose(scale=1.0)
    kps[4] = [kps[1, 0] - 120, kps[1, 1]]   # arms straight out: 240 px wide, 144 px tall
    kps[7] = [kps[1, 0] + 120, kps[1, 1]]
    p = FramingParams(keypoint_fill=0.8, keypoint_center_y=0.5, box_fill=0.9, box_center_y=0.5, side_margin=0.05)
    frame = frame_from_keypoints(kps, DEMO_HW, p)
    out = frame.to_output(kps)
    x0, y0, x1, y1 = frame.box
    assert (x1 - x0) / (y1 - y0) == pytest.approx(0.5)
    kp_h = (out[:, 1].max() - out[:, 1].min())
    free_left, free_right = out[:, 0].min() + 0.5, 64 - (out[:, 0].max() + 0.5)
    assert free_left == pytest.approx(0.05 * kp_h, abs=1e-3) and free_right == pytest.approx(free_left, abs=1e-3)
    assert kp_h / 128 < 0.8   # smaller than the fill: the width decided


def test_demo_preset_reproduces_the_demo_framing():
    """Framing the demo dataset's own labels with the demo preset gives (nearly) the identity frame."""
    from data.synthetic.generate import DemoConfig, _joint_labels, make_scene
    config = DemoConfig()
    scales, shifts = [], []
    for index in range(0, 40):
        scene = make_scene(config, index)
        for frame_data in scene.frames:
            label = np.array(_joint_labels(frame_data.joints, frame_data.side, config.image_size)[0])
            ok = valid_joints(label)
            if not (ok[1] and ok[10] and ok[13]):
                continue
            frame = frame_from_keypoints(label, config.image_size, 'demo')
            scales.append(frame.scale[0])
            shifts.append(np.array(frame.box[:2]) / config.image_size[::-1])
    assert len(scales) > 100
    assert np.median(scales) == pytest.approx(1.0, abs=0.02)
    assert np.abs(np.median(shifts, axis=0)).max() < 0.02


def test_frame_from_box():
    frame = frame_from_box((100, 50, 160, 250), DEMO_HW, 'market')   # a 60x200 person box
    out = frame.to_output([[100 - 0.5, 50 - 0.5], [160 - 0.5, 250 - 0.5]], drop_outside=False)
    assert (out[1, 1] - out[0, 1]) / 128 == pytest.approx(FRAMING_PRESETS['market'].box_fill)
    assert (out[0, 1] + out[1, 1] + 1) / 2 / 128 == pytest.approx(FRAMING_PRESETS['market'].box_center_y)
    with pytest.raises(ValueError, match='person box'):
        frame_from_box((10, 10, 5, 20), DEMO_HW)


def test_framing_errors():
    few = np.full((18, 2), -1.0)
    few[0] = [10, 10]
    with pytest.raises(KeypointError, match='src.json: 1 valid joint.*at least 2'):
        frame_from_keypoints(few, DF_HW, source='src.json')
    few[1] = [10, 10]
    with pytest.raises(KeypointError, match='at one point'):
        frame_from_keypoints(few, DF_HW)
    with pytest.raises(ValueError, match="unknown framing preset 'fashion'.*deepfashion"):
        framing_params('fashion')
    with pytest.raises(ValueError, match='keypoint_fill'):
        FramingParams(keypoint_fill=0, keypoint_center_y=0.5, box_fill=0.9, box_center_y=0.5)
    with pytest.raises(KeypointError, match=r'\(18, 2\)'):
        frame_from_keypoints(np.zeros((17, 2)), DF_HW)


def test_sequence_frames():
    seq = np.stack([_pose(300 + 10 * t, 120) for t in range(5)])
    seq[4, 0] = [300, 10]   # one frame with the nose far above
    median = frame_from_keypoint_sequence(seq, DF_HW, 'deepfashion', mode='median')
    single = frame_from_keypoints(seq[2], DF_HW, 'deepfashion')
    np.testing.assert_allclose(median.box, single.box, atol=1e-6)   # median centre and height = the middle frame
    union = frame_from_keypoint_sequence(seq, DF_HW, 'deepfashion', mode='union')
    assert valid_joints(union.to_output(seq)).all()
    assert union.scale[0] < median.scale[0]
    with pytest.raises(ValueError, match="mode 'mean'"):
        frame_from_keypoint_sequence(seq, DF_HW, mode='mean')


# ----------------------------------------------------------------------------- target normalisation

def test_normalize_target_by_its_own_skeleton():
    target = _pose(800, 400, 3.0)
    out, frame = normalize_target_pose(target, DF_HW, reference='target', params='deepfashion')
    np.testing.assert_allclose(out, frame_from_keypoints(target, DF_HW, 'deepfashion').to_output(target))


def test_normalize_target_by_the_source():
    source_in_frame = frame_from_keypoints(_pose(), DEMO_HW, 'demo').to_output(_pose())
    # The same body photographed 3x larger elsewhere, arms raised: limbs and torso keep their lengths.
    target = _pose(900, 500, 6.0)   # the source pose has scale 2
    target[[4, 7], 1] -= 60
    out, frame = normalize_target_pose(target, DEMO_HW, reference='source', source_keypoints=source_in_frame)
    untouched = [0, 1, 2, 5, 8, 9, 10, 11, 12, 13]
    np.testing.assert_allclose(out[untouched], source_in_frame[untouched], atol=1e-3)
    assert bone_scale_ratio(source_in_frame, target) == pytest.approx(frame.scale[0])
    seq = np.stack([target, target + [30.0, 0.0]])
    out_seq, _ = normalize_target_pose(seq, DEMO_HW, reference='source', source_keypoints=source_in_frame)
    np.testing.assert_allclose(out_seq[0], out, atol=1e-4)
    np.testing.assert_allclose((out_seq[1] - out_seq[0])[untouched, 0], 30 * frame.scale[0], atol=1e-3)
    with pytest.raises(ValueError, match='needs source_keypoints'):
        normalize_target_pose(target, DEMO_HW, reference='source')
    with pytest.raises(ValueError, match="unknown target reference 'photo'"):
        normalize_target_pose(target, DEMO_HW, reference='photo')
    head_only = np.full((18, 2), -1.0)
    head_only[[0, 14, 15]] = target[[0, 14, 15]]
    with pytest.raises(KeypointError, match='no bone'):
        normalize_target_pose(head_only, DEMO_HW, reference='source', source_keypoints=source_in_frame)


# ----------------------------------------------------------------------------- images

def test_crop_pads_with_the_border_colour():
    img = np.empty((200, 150, 3), dtype=np.uint8)
    img[:] = (210, 200, 190)
    img[20:180, 20:130] = (20, 40, 60)
    np.testing.assert_array_equal(border_color(img), [210, 200, 190])
    frame = Frame((-100, -50, 100, 350), DEMO_HW)   # reaches beyond the image on three sides
    crop = crop_to_frame(img, frame)
    assert crop.shape == (128, 64, 3) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop[:, :10], np.broadcast_to([210, 200, 190], (128, 10, 3)))   # left of the image
    np.testing.assert_array_equal(crop[120:], np.broadcast_to([210, 200, 190], (8, 64, 3)))       # below it
    black = crop_to_frame(img, frame, pad='constant', pad_value=0)
    assert (black[:, :10] == 0).all()
    gray = crop_to_frame(img[:, :, 0], frame, pad='replicate')
    assert gray.shape == (128, 64) and (gray[:, :10] == 210).all()
    outside = crop_to_frame(img, Frame((1000, 1000, 1064, 1128), DEMO_HW))
    assert (outside == [210, 200, 190]).all()
    with pytest.raises(ValueError, match="unknown pad mode 'mirror'"):
        crop_to_frame(img, frame, pad='mirror')


def test_paste_back_reproduces_the_crop_region():
    img = _smooth_image()
    for box in ((201.3, 40.6, 301.3, 240.6),      # shrink by 1.56 (anti-aliased), then enlarge back
                (250.0, 100.0, 282.0, 164.0),     # enlarge x2, then shrink back
                (-30.5, 300.25, 89.5, 540.25)):   # partly outside the image
        frame = Frame(box, DEMO_HW)
        crop = crop_to_frame(img, frame)
        canvas = np.zeros_like(img)
        pasted = paste_back(crop, frame, canvas)
        x0, y0, x1, y1 = frame.box
        inner = (slice(max(int(np.ceil(y0)) + 1, 0), min(int(np.floor(y1)) - 1, 480)),
                 slice(max(int(np.ceil(x0)) + 1, 0), min(int(np.floor(x1)) - 1, 640)))
        err = np.abs(pasted[inner].astype(int) - img[inner].astype(int))
        assert err.mean() < 1.0 and err.max() <= 8, (box, err.mean(), err.max())
        outer = np.ones(img.shape[:2], dtype=bool)
        outer[max(int(np.floor(y0)) - 1, 0):int(np.ceil(y1)) + 1, max(int(np.floor(x0)) - 1, 0):int(np.ceil(x1)) + 1] \
            = False
        assert (pasted[outer] == 0).all()   # nothing outside the box changes


def test_paste_back_mask_and_checks():
    img = _smooth_image(300, 200)
    frame = Frame((50, 40, 114, 168), DEMO_HW)
    result = np.full((128, 64, 3), 255, dtype=np.uint8)
    np.testing.assert_array_equal(paste_back(result, frame, img, mask=np.zeros((128, 64))), img)
    half = paste_back(result, frame, img, mask=np.full((128, 64), 0.5))
    region = (slice(41, 167), slice(51, 113))
    np.testing.assert_allclose(half[region], (img[region].astype(float) + 255) / 2, atol=0.51)
    float_img = img.astype(np.float32) / 255
    pasted = paste_back(result.astype(np.float32) / 255, frame, float_img)
    assert pasted.dtype == np.float32 and pasted[region].min() == pytest.approx(1.0)
    with pytest.raises(ValueError, match='frame output is 128x64'):
        paste_back(result[:100], frame, img)
    with pytest.raises(ValueError, match='channels must match'):
        paste_back(result[:, :, 0], frame, img)
    with pytest.raises(ValueError, match='mask'):
        paste_back(result, frame, img, mask=np.full((128, 64), 2.0))


def test_crop_anti_aliases_when_shrinking():
    noise = np.random.default_rng(0).random((400, 200)).astype(np.float32)   # all energy above the new Nyquist
    frame = Frame((0.3, 0.3, 200.3, 400.3), (40, 20))
    crop = crop_to_frame(noise, frame, pad='replicate')
    assert crop[2:-2, 2:-2].std() < 0.05
    assert cv2.warpAffine(noise, frame.matrix, (20, 40)).std() > 0.15   # plain resampling aliases
