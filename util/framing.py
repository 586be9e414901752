"""Framing a person in any photo the way the training images frame them, and putting results back.

The networks only ever saw people framed one way: DeepFashion shows a (mostly full-body) person centred
in 256x256, Market-1501 a pedestrian crop of 128x64, the demo dataset a full-body person in 128x64. A
:class:`Frame` is the crop of a source photo that reproduces this framing: an axis-aligned box in the
photo (pixel-edge coordinates, ``x1``/``y1`` exclusive like a slice, so ``(0, 0, W, H)`` is the whole
image) and the output size ``(H, W)`` the box is resampled to. The box has the output's aspect ratio,
so the mapping is a uniform scale plus a translation. Keypoints are ``(x, y)`` pixel-centre coordinates
(pixel ``i`` spans ``[i - 0.5, i + 0.5]``), so a source point ``x`` maps to
``u = (x + 0.5 - x0) * W / (x1 - x0) - 0.5``: the same convention OpenCV's ``warpAffine`` uses for the
image, so pixels and keypoints stay aligned.

Framing rule (``frame_from_keypoints``): the bounding box of the valid joints is scaled so its height
is ``keypoint_fill`` of the output height, its vertical centre sits at ``keypoint_center_y`` of the
output height and it is centred horizontally. When the pose is wider than that frame allows (arms
spread in a narrow Market crop), the frame grows, keeping the aspect ratio, until there are
``side_margin`` keypoint-box heights free on each side. A person box (a detector's, tight around the
whole body) uses ``box_fill`` and ``box_center_y`` instead. A skeleton without legs gives a half-body
close-up, as in DeepFashion's upper-body images.

Preset numbers (fractions of the output height; see :data:`FRAMING_PRESETS`):

* ``demo``, measured with ``benchmarks/demo_framing.py`` on the default demo configuration (the 690 of
  its 720 images whose label has both ankles and the neck): keypoint box height 0.76 of the image height
  (10-90 %: 0.69-0.82), vertical centre 0.49; person silhouette (218 rendered images) height 0.83
  (0.76-0.89), centre 0.48; the keypoint box's horizontal centre is within 1 % of the image centre.
* ``deepfashion`` and ``market``: estimates, not measurements (the datasets are not part of the
  repository). DeepFashion full-body shots show the person about 0.90 of the image height, centred;
  Market-1501's DPM crops about 0.92. Converted to keypoint-box heights with the ratio measured on the
  demo images (keypoint box = 0.91 of the silhouette height) this gives 0.82 and 0.84, centred slightly
  low (0.51) because there is more head above the eyes than foot below the ankles. Tune them with the
  ``FramingParams`` fields if results look too small or too large.

Cropping pads the parts of the frame outside the photo with the photo's border colour (per-channel
median of the outermost ``border_width`` pixels), not black, because the training images have plain
light backgrounds that reach the image edges. Downscaling is anti-aliased with a Gaussian of
``sigma = (1 / scale - 1) / 2`` before bilinear resampling. ``paste_back`` inverts the crop and blends
the result into the photo, optionally through a soft mask (e.g. the predicted person region).

Target poses (``normalize_target_pose``) are brought into the output frame either by their own
skeleton's framing (``reference='target'``) or with the source person's scale and position
(``reference='source'``: scale = median ratio of corresponding bone lengths, torso centre on the
source's torso centre), which keeps the source's body size when the target comes from a different
photo or a video.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from util.keypoints import MISSING, NUM_JOINTS, KeypointError, valid_joints


@dataclass(frozen=True)
class FramingParams:
    """How the person sits in the output image (fractions of the output height unless said otherwise).

    keypoint_fill: height of the bounding box of the valid joints / output height.
    keypoint_center_y: vertical centre of that box / output height (0.5 = centred).
    box_fill: height of a tight person box (detector box) / output height.
    box_center_y: vertical centre of the person box / output height.
    side_margin: least free width on each side of the box, in units of the box height; the default 0.05 is
        about a hand's length, so hands reaching past the wrists stay inside the frame.
    """

    keypoint_fill: float
    keypoint_center_y: float
    box_fill: float
    box_center_y: float
    side_margin: float = 0.05

    def __post_init__(self) -> None:
        for name in ('keypoint_fill', 'keypoint_center_y', 'box_fill', 'box_center_y'):
            value = getattr(self, name)
            if not 0 < value <= 1.5:
                raise ValueError(f'FramingParams.{name} must be in (0, 1.5], got {value}')
        if not 0 <= self.side_margin < 1:
            raise ValueError(f'FramingParams.side_margin must be in [0, 1), got {self.side_margin}')


FRAMING_PRESETS = {
    'demo': FramingParams(keypoint_fill=0.76, keypoint_center_y=0.49, box_fill=0.83, box_center_y=0.48),
    'deepfashion': FramingParams(keypoint_fill=0.82, keypoint_center_y=0.51, box_fill=0.90, box_center_y=0.50),
    'market': FramingParams(keypoint_fill=0.84, keypoint_center_y=0.51, box_fill=0.92, box_center_y=0.50),
}
PAD_MODES = ('border', 'replicate', 'constant')
TARGET_REFERENCES = ('target', 'source')
SEQUENCE_MODES = ('median', 'union')
# Bones whose length ratio gives the source/target scale: torso sides and limbs. Shoulder and hip widths
# are left out because they shrink to nothing when the person turns sideways.
SCALE_BONES = ((1, 8), (1, 11), (8, 9), (9, 10), (11, 12), (12, 13), (2, 3), (3, 4), (5, 6), (6, 7))
TORSO_JOINTS = (1, 2, 5, 8, 11)


def framing_params(params: str | FramingParams) -> FramingParams:
    """A preset name of :data:`FRAMING_PRESETS` or a :class:`FramingParams` -> ``FramingParams``."""
    if isinstance(params, FramingParams):
        return params
    if params not in FRAMING_PRESETS:
        raise ValueError(f'unknown framing preset {params!r}; valid presets are {sorted(FRAMING_PRESETS)} '
                         f'(or pass a FramingParams)')
    return FRAMING_PRESETS[params]


def _size_hw(size: Sequence[int], name: str) -> tuple[int, int]:
    if len(size) != 2 or any(int(v) != v or v < 1 for v in size):
        raise ValueError(f'{name} must be (H, W) positive integers, got {size}')
    return int(size[0]), int(size[1])


# --------------------------------------------------------------------------------------------------
# The frame
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """A crop box in a source image and the size it is resampled to.

    box: ``(x0, y0, x1, y1)`` in source pixel-edge coordinates (may extend beyond the image).
    out_size: ``(H, W)`` of the output.
    """

    box: tuple[float, float, float, float]
    out_size: tuple[int, int]

    def __post_init__(self) -> None:
        box = tuple(float(v) for v in self.box)
        if len(box) != 4 or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f'Frame.box must be finite (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {self.box}')
        object.__setattr__(self, 'box', box)
        object.__setattr__(self, 'out_size', _size_hw(self.out_size, 'Frame.out_size'))

    @classmethod
    def identity(cls, image_size: Sequence[int]) -> 'Frame':
        """The whole ``(H, W)`` image at its own size (no resampling; crop and paste-back are exact copies)."""
        height, width = _size_hw(image_size, 'image_size')
        return cls((0.0, 0.0, float(width), float(height)), (height, width))

    @classmethod
    def from_similarity(cls, scale: float, source_point: Sequence[float], output_point: Sequence[float],
                        out_size: Sequence[int]) -> 'Frame':
        """The frame with output pixels per source pixel ``scale`` that maps ``source_point`` to ``output_point``."""
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f'Frame.from_similarity: scale must be positive, got {scale}')
        height, width = _size_hw(out_size, 'out_size')
        x0 = source_point[0] + 0.5 - (output_point[0] + 0.5) / scale
        y0 = source_point[1] + 0.5 - (output_point[1] + 0.5) / scale
        return cls((x0, y0, x0 + width / scale, y0 + height / scale), (height, width))

    @property
    def scale(self) -> tuple[float, float]:
        """Output pixels per source pixel ``(sx, sy)`` (equal for frames built here)."""
        x0, y0, x1, y1 = self.box
        return self.out_size[1] / (x1 - x0), self.out_size[0] / (y1 - y0)

    @property
    def matrix(self) -> np.ndarray:
        """``float64 [2, 3]`` affine map source pixel centres -> output pixel centres (OpenCV convention)."""
        sx, sy = self.scale
        x0, y0 = self.box[:2]
        return np.array([[sx, 0.0, sx * (0.5 - x0) - 0.5], [0.0, sy, sy * (0.5 - y0) - 0.5]])

    @property
    def inverse_matrix(self) -> np.ndarray:
        """``float64 [2, 3]`` affine map output pixel centres -> source pixel centres."""
        sx, sy = self.scale
        x0, y0 = self.box[:2]
        return np.array([[1 / sx, 0.0, 0.5 / sx + x0 - 0.5], [0.0, 1 / sy, 0.5 / sy + y0 - 0.5]])

    def to_output(self, keypoints, drop_outside: bool = True) -> np.ndarray:
        """Source keypoints ``[..., 2]`` -> output coordinates; missing joints stay ``-1``.

        With ``drop_outside`` (default) a joint that lands outside ``[0, W] x [0, H]`` becomes missing, as the
        datasets do for joints outside the image (the models never saw joints outside).
        """
        return _apply_affine(self.matrix, keypoints, self.out_size if drop_outside else None)

    def to_source(self, keypoints) -> np.ndarray:
        """Output keypoints ``[..., 2]`` -> source image coordinates; missing joints stay ``-1``."""
        return _apply_affine(self.inverse_matrix, keypoints, None)


def _apply_affine(matrix: np.ndarray, keypoints, drop_outside_hw: tuple[int, int] | None) -> np.ndarray:
    kps = np.asarray(keypoints, dtype=np.float64)
    if kps.shape[-1] != 2:
        raise ValueError(f'keypoints must have shape [..., 2] of (x, y), got {kps.shape}')
    valid = valid_joints(kps)
    out = kps @ matrix[:, :2].T + matrix[:, 2]
    if drop_outside_hw is not None:
        height, width = drop_outside_hw
        valid &= (out[..., 0] >= 0) & (out[..., 0] <= width) & (out[..., 1] >= 0) & (out[..., 1] <= height)
    return np.where(valid[..., None], out, MISSING).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Computing frames
# --------------------------------------------------------------------------------------------------
def _frame_around(left: float, top: float, right: float, bottom: float, out_size: tuple[int, int], fill: float,
                  center_y: float, side_margin: float) -> Frame:
    """Frame for a content box given in pixel-edge coordinates."""
    height, width = out_size
    content_h, content_w = bottom - top, right - left
    crop_h = content_h / fill
    # Grow the frame (same aspect ratio) when the content plus side margins is wider than it.
    crop_h = max(crop_h, (content_w + 2 * side_margin * content_h) * height / width)
    crop_w = crop_h * width / height
    cx = 0.5 * (left + right)
    y0 = 0.5 * (top + bottom) - center_y * crop_h
    return Frame((cx - 0.5 * crop_w, y0, cx + 0.5 * crop_w, y0 + crop_h), out_size)


def _joint_box(keypoints: np.ndarray, source: str, min_joints: int) -> tuple[float, float, float, float]:
    """Pixel-edge box of the valid joints of ``[..., 2]`` keypoints."""
    pts = keypoints.reshape(-1, 2)
    pts = pts[valid_joints(pts)]
    if len(pts) < min_joints:
        raise KeypointError(f'{source}: {len(pts)} valid joint(s), at least {min_joints} are needed to frame '
                            f'the person')
    left, top = pts.min(axis=0) + 0.5
    right, bottom = pts.max(axis=0) + 0.5
    if right - left <= 0 and bottom - top <= 0:
        raise KeypointError(f'{source}: all valid joints are at one point {pts[0].tolist()}; cannot frame the person')
    return float(left), float(top), float(right), float(bottom)


def _check_pose(keypoints, source: str) -> np.ndarray:
    kps = np.asarray(keypoints, dtype=np.float64)
    if kps.shape != (NUM_JOINTS, 2):
        raise KeypointError(f'{source}: expected keypoints of shape ({NUM_JOINTS}, 2), got {kps.shape}')
    if not np.isfinite(kps).all():
        raise KeypointError(f'{source}: keypoints contain NaN or infinite values')
    return kps


def frame_from_keypoints(keypoints, out_size: Sequence[int], params: str | FramingParams = 'deepfashion', *,
                         min_joints: int = 2, source: str = '<keypoints>') -> Frame:
    """The frame that places a pose like the training data (rule and numbers in the module docstring).

    Args:
        keypoints: ``[18, 2]`` ``(x, y)`` in the source image, -1 for missing joints.
        out_size: ``(H, W)`` the model expects (256x256 DeepFashion, 128x64 Market and demo).
        params: a preset name of :data:`FRAMING_PRESETS` or :class:`FramingParams`.
        min_joints: fewest valid joints accepted; they must not all coincide.
        source: named in errors.

    Raises:
        KeypointError: too few joints to frame the person.
    """
    p = framing_params(params)
    box = _joint_box(_check_pose(keypoints, source), source, min_joints)
    return _frame_around(*box, _size_hw(out_size, 'out_size'), p.keypoint_fill, p.keypoint_center_y, p.side_margin)


def frame_from_box(box: Sequence[float], out_size: Sequence[int], params: str | FramingParams = 'deepfashion') -> Frame:
    """The frame for a tight person box ``(x0, y0, x1, y1)`` (pixel edges, e.g. a detector's box)."""
    p = framing_params(params)
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (np.isfinite([x0, y0, x1, y1]).all() and x1 > x0 and y1 > y0):
        raise ValueError(f'person box must be finite (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {tuple(box)}')
    return _frame_around(x0, y0, x1, y1, _size_hw(out_size, 'out_size'), p.box_fill, p.box_center_y, p.side_margin)


def frame_from_keypoint_sequence(sequence, out_size: Sequence[int], params: str | FramingParams = 'deepfashion', *,
                                 mode: str = 'median', min_joints: int = 2,
                                 source: str = '<keypoint sequence>') -> Frame:
    """One frame for a whole pose sequence, so the motion is kept rather than re-centred every frame.

    Args:
        sequence: ``[T, 18, 2]`` poses.
        mode: ``'median'``: the median of the per-frame frames' centres and heights (the person keeps the
            training-data size; extreme poses such as jumps may leave the frame); ``'union'``: the frame of all
            joints of all frames together (everything stays inside, the person gets smaller).
    """
    if mode not in SEQUENCE_MODES:
        raise ValueError(f'unknown sequence framing mode {mode!r}; valid modes are {SEQUENCE_MODES}')
    seq = np.asarray(sequence, dtype=np.float64)
    if seq.ndim != 3 or seq.shape[1:] != (NUM_JOINTS, 2) or seq.shape[0] == 0:
        raise KeypointError(f'{source}: expected a pose sequence [T, {NUM_JOINTS}, 2], got shape {seq.shape}')
    p = framing_params(params)
    size = _size_hw(out_size, 'out_size')
    if mode == 'union':
        box = _joint_box(seq, source, min_joints)
        return _frame_around(*box, size, p.keypoint_fill, p.keypoint_center_y, p.side_margin)
    frames = [frame_from_keypoints(kps, size, p, min_joints=min_joints, source=f'{source} frame {t}')
              for t, kps in enumerate(seq)]
    boxes = np.array([f.box for f in frames])
    cx = np.median(0.5 * (boxes[:, 0] + boxes[:, 2]))
    cy = np.median(0.5 * (boxes[:, 1] + boxes[:, 3]))
    crop_h = np.median(boxes[:, 3] - boxes[:, 1])
    crop_w = crop_h * size[1] / size[0]
    return Frame((cx - crop_w / 2, cy - crop_h / 2, cx + crop_w / 2, cy + crop_h / 2), size)


def bone_scale_ratio(reference, other) -> float:
    """Median over :data:`SCALE_BONES` of ``length in reference / length in other``.

    Args:
        reference: ``[18, 2]`` pose. other: ``[18, 2]`` or ``[T, 18, 2]`` (ratios of all frames pooled).

    Raises:
        KeypointError: no bone is present in both.
    """
    ref = np.asarray(reference, dtype=np.float64)
    oth = np.asarray(other, dtype=np.float64).reshape(-1, NUM_JOINTS, 2)
    a, b = np.array(SCALE_BONES).T
    ref_len = np.linalg.norm(ref[a] - ref[b], axis=-1)
    oth_len = np.linalg.norm(oth[:, a] - oth[:, b], axis=-1)
    ref_ok = valid_joints(ref)[a] & valid_joints(ref)[b]
    oth_ok = valid_joints(oth)[:, a] & valid_joints(oth)[:, b] & (oth_len > 1e-6)
    usable = ref_ok[None] & oth_ok
    if not usable.any():
        raise KeypointError('cannot take the scale from the source: no bone (neck-hip, hip-knee, knee-ankle, '
                            'shoulder-elbow, elbow-wrist) is present in both poses; use reference="target"')
    ratios = np.broadcast_to(ref_len, oth_len.shape)[usable] / oth_len[usable]
    return float(np.median(ratios))


def _anchor_points(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroids of the torso joints present in both poses (all common joints if no torso joint is)."""
    common = valid_joints(reference) & valid_joints(other)
    torso = np.zeros(NUM_JOINTS, dtype=bool)
    torso[list(TORSO_JOINTS)] = True
    use = common & torso if (common & torso).any() else common
    if not use.any():
        raise KeypointError('cannot place the target on the source: the two poses share no joint; '
                            'use reference="target"')
    return reference[use].mean(axis=0), other[use].mean(axis=0)


def normalize_target_pose(target, out_size: Sequence[int], *, reference: str = 'target', source_keypoints=None,
                          params: str | FramingParams = 'deepfashion', sequence_mode: str = 'median',
                          min_joints: int = 2, source: str = '<target pose>') -> tuple[np.ndarray, Frame]:
    """Bring a target pose (or pose sequence) from its own coordinates into the model's output frame.

    Args:
        target: ``[18, 2]`` pose or ``[T, 18, 2]`` sequence in the coordinates of the image/video it came from.
        out_size: ``(H, W)`` of the model.
        reference: ``'target'``: frame the target by its own skeleton, exactly as a source would be framed
            (for a sequence one frame for all poses, see :func:`frame_from_keypoint_sequence`);
            ``'source'``: give it the source person's scale (median bone-length ratio, pooled over a
            sequence) and put its torso centre (the first pose's, for a sequence) on the source's.
        source_keypoints: ``[18, 2]`` source pose already in output coordinates (required for ``'source'``).
        params: framing preset or :class:`FramingParams` (for ``'target'``).
        sequence_mode: ``'median'`` or ``'union'`` for sequences with ``reference='target'``.

    Returns:
        (``float32`` pose(s) in output coordinates, same shape as ``target``, joints outside the output
        marked -1; the :class:`Frame` that maps the target's coordinates to the output).
    """
    if reference not in TARGET_REFERENCES:
        raise ValueError(f'unknown target reference {reference!r}; valid references are {TARGET_REFERENCES}')
    tgt = np.asarray(target, dtype=np.float64)
    is_sequence = tgt.ndim == 3
    if tgt.shape[-2:] != (NUM_JOINTS, 2) or tgt.ndim not in (2, 3):
        raise KeypointError(f'{source}: expected [{NUM_JOINTS}, 2] or [T, {NUM_JOINTS}, 2], got shape {tgt.shape}')
    if not np.isfinite(tgt).all():
        raise KeypointError(f'{source}: the target pose contains NaN or infinite values')
    size = _size_hw(out_size, 'out_size')
    if reference == 'target':
        if is_sequence:
            frame = frame_from_keypoint_sequence(tgt, size, params, mode=sequence_mode, min_joints=min_joints,
                                                 source=source)
        else:
            frame = frame_from_keypoints(tgt, size, params, min_joints=min_joints, source=source)
    else:
        if source_keypoints is None:
            raise ValueError('normalize_target_pose: reference="source" needs source_keypoints (the source pose in '
                             'output coordinates)')
        src = _check_pose(source_keypoints, 'source keypoints')
        scale = bone_scale_ratio(src, tgt)
        src_anchor, tgt_anchor = _anchor_points(src, tgt[0] if is_sequence else tgt)
        frame = Frame.from_similarity(scale, tgt_anchor, src_anchor, size)
    return frame.to_output(tgt), frame


# --------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------
def _check_image(image, name: str) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f'{name} must be a numpy image [H, W] or [H, W, C], got '
                         f'{getattr(image, "shape", type(image).__name__)}')
    if image.dtype not in (np.uint8, np.float32, np.float64):
        raise ValueError(f'{name} must be uint8, float32 or float64, got {image.dtype}')
    if image.ndim == 3 and image.shape[2] > 4:
        raise ValueError(f'{name} has {image.shape[2]} channels; at most 4 are supported')
    return image


def border_color(image: np.ndarray, width: int = 4) -> np.ndarray:
    """Per-channel median of the outermost ``width`` pixels of the image (``float64 [C]``, ``[1]`` for gray)."""
    image = _check_image(image, 'image')
    h, w = image.shape[:2]
    width = max(1, min(int(width), (min(h, w) + 1) // 2))
    img = image.reshape(h, w, -1)
    ring = np.concatenate([img[:width].reshape(-1, img.shape[2]), img[-width:].reshape(-1, img.shape[2]),
                           img[:, :width].reshape(-1, img.shape[2]), img[:, -width:].reshape(-1, img.shape[2])])
    return np.median(ring, axis=0)


def _antialias(image: np.ndarray, scale: float) -> np.ndarray:
    """Gaussian pre-filter before shrinking by ``scale`` < 1 (``sigma = (1/scale - 1) / 2``)."""
    if scale >= 1:
        return image
    sigma = (1.0 / scale - 1.0) / 2.0
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)


def _roi(box: Sequence[float], image_hw: tuple[int, int], margin: int) -> tuple[int, int, int, int]:
    """Integer region of the image covering ``box`` plus ``margin`` pixels, clipped to the image."""
    h, w = image_hw
    x0 = max(int(np.floor(box[0])) - margin, 0)
    y0 = max(int(np.floor(box[1])) - margin, 0)
    x1 = min(int(np.ceil(box[2])) + margin, w)
    y1 = min(int(np.ceil(box[3])) + margin, h)
    return x0, y0, x1, y1


def crop_to_frame(image: np.ndarray, frame: Frame, *, pad: str = 'border', pad_value: float | Sequence[float] = 0,
                  border_width: int = 4, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Resample the frame's box of ``image`` to ``frame.out_size``.

    Args:
        image: ``[H, W]`` or ``[H, W, C]`` (C <= 4), uint8 or float.
        frame: the crop.
        pad: what fills the parts of the box outside the image: ``'border'`` the median border colour
            (:func:`border_color`), ``'replicate'`` the nearest edge pixel, ``'constant'`` ``pad_value``.
        border_width: ring width for ``'border'``.
        interpolation: OpenCV interpolation flag (bilinear by default; shrinking is anti-aliased first).

    Returns:
        ``[out_H, out_W(, C)]`` of the input dtype.
    """
    image = _check_image(image, 'image')
    if pad not in PAD_MODES:
        raise ValueError(f'unknown pad mode {pad!r}; valid modes are {PAD_MODES}')
    out_h, out_w = frame.out_size
    channels = 1 if image.ndim == 2 else image.shape[2]
    if pad == 'border':
        fill = border_color(image, border_width)
    else:
        fill = np.broadcast_to(np.asarray(pad_value, dtype=np.float64), (channels,))
    if image.dtype == np.uint8:
        fill = np.clip(np.round(fill), 0, 255)
    scale = min(frame.scale)
    sigma_margin = int(np.ceil(3 * (1 / scale - 1) / 2)) if scale < 1 else 0
    rx0, ry0, rx1, ry1 = _roi(frame.box, image.shape[:2], sigma_margin + 2)
    shape = (out_h, out_w) if image.ndim == 2 else (out_h, out_w, channels)
    if rx1 <= rx0 or ry1 <= ry0:  # the box does not touch the image
        if pad == 'replicate':
            rx0, ry0 = min(max(rx0, 0), image.shape[1] - 1), min(max(ry0, 0), image.shape[0] - 1)
            rx1, ry1 = rx0 + 1, ry0 + 1
        else:
            return np.broadcast_to(fill.astype(image.dtype).reshape(shape[2:] or ()), shape).copy()
    roi = _antialias(np.ascontiguousarray(image[ry0:ry1, rx0:rx1]), scale)
    matrix = frame.matrix.copy()
    matrix[:, 2] += matrix[:, :2] @ np.array([rx0, ry0], dtype=np.float64)  # ROI -> image coordinates first
    border_mode = cv2.BORDER_REPLICATE if pad == 'replicate' else cv2.BORDER_CONSTANT
    out = cv2.warpAffine(roi, matrix, (out_w, out_h), flags=interpolation, borderMode=border_mode,
                         borderValue=tuple(float(v) for v in fill) + (0.0,) * (4 - channels))
    return out.reshape(shape)


def paste_back(result: np.ndarray, frame: Frame, original_image: np.ndarray, *, mask: np.ndarray | None = None,
               interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Put a model output back into the photo it was cropped from.

    The output is resampled into the frame's box (anti-aliased when it shrinks) and alpha-blended over a
    copy of the photo; the alpha is the warped ``mask`` (1 everywhere by default), so pixels outside the box
    are unchanged and the box edge blends over one pixel. Premultiplied blending keeps the box edge free of
    dark fringes.

    Args:
        result: ``[out_H, out_W(, C)]`` in the value range and channel order of ``original_image``.
        frame: the frame ``result`` was made in.
        original_image: ``[H, W(, C)]`` uint8 or float.
        mask: optional ``[out_H, out_W]`` weights in [0, 1] (e.g. the predicted person region) in output
            coordinates; the photo shows through where it is 0.

    Returns:
        A new image like ``original_image``.
    """
    original_image = _check_image(original_image, 'original_image')
    result = _check_image(result, 'result')
    out_h, out_w = frame.out_size
    if result.shape[:2] != (out_h, out_w):
        raise ValueError(f'result is {result.shape[0]}x{result.shape[1]} but the frame output is {out_h}x{out_w}')
    if result.shape[2:] != original_image.shape[2:]:
        raise ValueError(f'result has shape {result.shape} but original_image has {original_image.shape}: the '
                         f'channels must match')
    if mask is None:
        alpha = np.ones((out_h, out_w), dtype=np.float32)
    else:
        alpha = np.asarray(mask, dtype=np.float32)
        if alpha.shape != (out_h, out_w) or not np.isfinite(alpha).all() or alpha.min() < 0 or alpha.max() > 1:
            raise ValueError(f'mask must be finite [{out_h}, {out_w}] values in [0, 1], got shape {alpha.shape}')
    out = original_image.copy()
    rx0, ry0, rx1, ry1 = _roi(frame.box, original_image.shape[:2], 1)
    if rx1 <= rx0 or ry1 <= ry0:
        return out
    scale = min(frame.scale)
    res = result.astype(np.float32).reshape(out_h, out_w, -1)
    premultiplied = _antialias(res * alpha[:, :, None], 1 / scale).reshape(res.shape)
    alpha = _antialias(alpha, 1 / scale)
    matrix = frame.inverse_matrix.copy()
    matrix[:, 2] -= (rx0, ry0)
    size = (rx1 - rx0, ry1 - ry0)
    warped = cv2.warpAffine(premultiplied, matrix, size, flags=interpolation, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0).reshape(size[1], size[0], -1)
    coverage = cv2.warpAffine(alpha, matrix, size, flags=interpolation, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=0)[:, :, None]
    region = out[ry0:ry1, rx0:rx1].astype(np.float32).reshape(size[1], size[0], -1)
    blended = warped + (1.0 - coverage) * region
    if out.dtype == np.uint8:
        blended = np.clip(np.round(blended), 0, 255)
    out[ry0:ry1, rx0:rx1] = blended.reshape(out[ry0:ry1, rx0:rx1].shape).astype(out.dtype)
    return out
