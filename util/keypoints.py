"""Reading, converting, checking, writing and smoothing body keypoints for inference on any photo.

The models were trained on 18 joints in the OpenPose COCO-18 order (0 nose, 1 neck, 2-4 right shoulder,
elbow, wrist, 5-7 left shoulder, elbow, wrist, 8-10 right hip, knee, ankle, 11-13 left hip, knee, ankle,
14/15 right/left eye, 16/17 right/left ear; "right" is the person's right). A pose here is a float32
array ``[18, 2]`` of ``(x, y)`` pixel coordinates (x = column, y = row, pixel centres at integers), with
``(-1, -1)`` for a missing joint, exactly like the dataset pose labels.

Readable inputs (``read_keypoints`` detects the format; ``format=`` forces one):

* ``'openpose'``: OpenPose JSON, ``{"people": [{"pose_keypoints_2d": [x, y, c, ...]}, ...]}`` (the older
  key ``pose_keypoints`` too), BODY_18 (= COCO-18, 54 values) or BODY_25 (75 values, mapped to 18).
  Coordinates must be in pixels (OpenPose's default ``--keypoint_scale 0``).
* ``'coco'``: COCO-17 person keypoints, ``keypoints`` = 51 values ``[x, y, v]`` per annotation: a COCO
  annotation file (``{"annotations": [...], "images": [...]}``), a results list ``[{...}, ...]`` or a
  single annotation dict. Mapped to 18; the neck is the midpoint of the shoulders, present only when both
  shoulders are. ``v`` (or a detector's score) acts as the confidence: ``v = 0`` (unlabelled) is missing.
* ``'list'``: a plain JSON list ``[[x, y], ...]`` of 18 joints in COCO-18 order, ``[-1, -1]`` for a
  missing joint; ``[x, y, c]`` rows add a confidence. A ``.npy`` file of the same shape is read as a list.
* ``'pose_label'``: the project's pose label files, a dict ``id -> 18 [x, y]`` (the datasets'
  ``Label/pose_label.pkl``, or the same dict saved as JSON); ``entry_id`` picks the entry.

Confidence: a joint whose confidence is below ``confidence_threshold`` is missing. The default 0.05 is
OpenPose's own rendering threshold; COCO's visibility flags 1 and 2 pass it, 0 does not.

Person choice: ``person_index`` picks a person by position in the file. By default the person whose
confident joints span the largest extent (diagonal of their bounding box) is taken: the main subject
of a photo is the largest person in it, and the extent does not collapse for a person seen side-on the way
a box area can. Ties go to the person with more joints, then to the higher total confidence.

Pickles are read with ``util.io.load_pickle``, which accepts only plain containers, numbers and numpy arrays,
so a keypoint file cannot run code.

Smoothing of keypoint sequences (``smooth_keypoint_sequence``): ``'moving_average'``, a centred moving
average over ``window`` frames (no lag, for offline sequences), or ``'one_euro'``, the One-Euro filter
(Casiez et al., CHI 2012; causal, adapts its cut-off to the speed). Both handle each joint separately
and never invent joints: a missing joint stays missing and does not contribute to its neighbours.

This module imports only numpy and the standard library (plus ``util.io``).
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from util.io import atomic_write, load_json, load_pickle

PathLike = str | os.PathLike

COCO18_JOINT_NAMES = (
    'nose', 'neck', 'right_shoulder', 'right_elbow', 'right_wrist', 'left_shoulder', 'left_elbow',
    'left_wrist', 'right_hip', 'right_knee', 'right_ankle', 'left_hip', 'left_knee', 'left_ankle',
    'right_eye', 'left_eye', 'right_ear', 'left_ear',
)
NUM_JOINTS = len(COCO18_JOINT_NAMES)
COCO17_JOINT_NAMES = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder', 'left_elbow',
    'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee', 'right_knee',
    'left_ankle', 'right_ankle',
)
BODY25_JOINT_NAMES = (
    'nose', 'neck', 'right_shoulder', 'right_elbow', 'right_wrist', 'left_shoulder', 'left_elbow', 'left_wrist',
    'mid_hip', 'right_hip', 'right_knee', 'right_ankle', 'left_hip', 'left_knee', 'left_ankle', 'right_eye',
    'left_eye', 'right_ear', 'left_ear', 'left_big_toe', 'left_small_toe', 'left_heel', 'right_big_toe',
    'right_small_toe', 'right_heel',
)
MISSING = -1.0
KEYPOINT_FORMATS = ('openpose', 'coco', 'list', 'pose_label')
DEFAULT_CONFIDENCE_THRESHOLD = 0.05
DEFAULT_MIN_JOINTS = 4
SMOOTHING_METHODS = ('moving_average', 'one_euro')

# COCO-18 joint i is BODY_25 joint BODY25_TO_COCO18[i] (BODY_25 inserts mid_hip at 8 and adds feet at 19-24).
BODY25_TO_COCO18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
# COCO-18 joint i is COCO-17 joint COCO17_TO_COCO18[i]; the neck (None) is the midpoint of the shoulders.
COCO17_TO_COCO18 = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
_COCO17_SHOULDERS = (5, 6)  # left, right


class KeypointError(ValueError):
    """A keypoint file or array is unusable; the message names the file and says what to do."""


@dataclass(frozen=True, eq=False)
class Person:
    """One person's COCO-18 pose.

    keypoints: ``float32 [18, 2]`` of ``(x, y)`` pixels, ``-1`` for a missing joint.
    scores: ``float32 [18]`` confidence of each joint (1 where the format has none, 0 for a missing joint).
    """

    keypoints: np.ndarray
    scores: np.ndarray

    @property
    def num_joints(self) -> int:
        return int(valid_joints(self.keypoints).sum())


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------
def valid_joints(keypoints: np.ndarray) -> np.ndarray:
    """``bool [..., K]``: joints whose two coordinates are >= 0 (the pose-mask rule of the datasets)."""
    keypoints = np.asarray(keypoints)
    return (keypoints[..., 0] >= 0) & (keypoints[..., 1] >= 0)


def missing_pose(num_joints: int = NUM_JOINTS) -> np.ndarray:
    """``float32 [num_joints, 2]`` filled with -1 (every joint missing)."""
    return np.full((num_joints, 2), MISSING, dtype=np.float32)


def keypoint_extent(keypoints: np.ndarray) -> float:
    """Diagonal of the bounding box of the valid joints of ``[K, 2]`` (-1 if there is none)."""
    keypoints = np.asarray(keypoints)
    valid = valid_joints(keypoints)
    if not valid.any():
        return -1.0
    pts = keypoints[valid]
    return float(np.hypot(*(pts.max(axis=0) - pts.min(axis=0))))


def _apply_threshold(xy: np.ndarray, conf: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Joints with ``conf < threshold`` become ``(-1, -1)`` with score 0."""
    keep = conf >= threshold
    xy = np.where(keep[:, None], xy, MISSING).astype(np.float32)
    return xy, np.where(keep, conf, 0.0).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Joint-set conversions
# --------------------------------------------------------------------------------------------------
def _split_columns(keypoints, expected: int, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    arr = np.asarray(keypoints, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != expected or arr.shape[1] not in (2, 3):
        raise KeypointError(f'{name} expects [{expected}, 2] (x, y) or [{expected}, 3] (x, y, score), '
                            f'got shape {arr.shape}')
    return arr[:, :2], (arr[:, 2] if arr.shape[1] == 3 else None)


def _join_columns(xy: np.ndarray, scores: np.ndarray | None) -> np.ndarray:
    out = xy if scores is None else np.concatenate([xy, scores[:, None]], axis=1)
    return out.astype(np.float32)


def body25_to_coco18(keypoints) -> np.ndarray:
    """OpenPose BODY_25 -> COCO-18 (drops mid-hip and the six foot joints).

    Args:
        keypoints: ``[25, 2]`` ``(x, y)`` or ``[25, 3]`` ``(x, y, score)``, -1 for missing joints.

    Returns:
        ``float32 [18, 2]`` or ``[18, 3]`` (same columns as the input).
    """
    xy, scores = _split_columns(keypoints, len(BODY25_JOINT_NAMES), 'body25_to_coco18')
    idx = list(BODY25_TO_COCO18)
    return _join_columns(xy[idx], None if scores is None else scores[idx])


def coco17_to_coco18(keypoints) -> np.ndarray:
    """COCO-17 -> COCO-18: reorder, and add the neck as the midpoint of the two shoulders.

    The neck is present only when both shoulders are (coordinates >= 0); its score is then the smaller
    shoulder score, otherwise the neck is ``(-1, -1)`` with score 0.

    Args:
        keypoints: ``[17, 2]`` ``(x, y)`` or ``[17, 3]`` ``(x, y, score)``, -1 for missing joints (apply a
            confidence threshold first).

    Returns:
        ``float32 [18, 2]`` or ``[18, 3]`` (same columns as the input).
    """
    xy, scores = _split_columns(keypoints, len(COCO17_JOINT_NAMES), 'coco17_to_coco18')
    idx = [0 if j is None else j for j in COCO17_TO_COCO18]
    out_xy = xy[idx].copy()
    out_scores = None if scores is None else scores[idx].copy()
    left, right = _COCO17_SHOULDERS
    if valid_joints(xy[[left, right]]).all():
        out_xy[1] = 0.5 * (xy[left] + xy[right])
        if out_scores is not None:
            out_scores[1] = min(scores[left], scores[right])
    else:
        out_xy[1] = MISSING
        if out_scores is not None:
            out_scores[1] = 0.0
    return _join_columns(out_xy, out_scores)


def load_keypoint_data(path: PathLike) -> Any:
    """The raw content of a keypoint file: ``.json`` (JSON), ``.pkl``/``.pickle`` (restricted pickle), ``.npy``.

    Raises:
        FileNotFoundError: no such file. KeypointError: unreadable content or an unknown file type.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'keypoint file not found: {path}')
    suffix = path.suffix.lower()
    if suffix == '.json':
        try:
            return load_json(path)
        except (ValueError, UnicodeDecodeError) as e:
            raise KeypointError(f'{path} is not a readable JSON keypoint file: {e}') from e
    if suffix in ('.pkl', '.pickle'):
        try:
            return load_pickle(path)
        except ValueError as e:  # UnsafePickleError included: the message names the file and the refused global
            raise KeypointError(f'{e} (keypoint pickles may hold only lists, dicts, numbers and numpy arrays)'
                                ) from e
    if suffix == '.npy':
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as e:
            raise KeypointError(f'cannot read {path} as a numeric .npy array: {e}') from e
    raise KeypointError(f'{path}: unknown keypoint file type {suffix!r}; expected .json (OpenPose, COCO, '
                        f'[[x, y], ...] list or pose-label dict), .pkl (pose-label dict) or .npy ([18, 2] array)')


# --------------------------------------------------------------------------------------------------
# Format detection and parsing
# --------------------------------------------------------------------------------------------------
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _is_point_table(value: Any) -> bool:
    """A ``[K, 2|3]`` numeric table (list of rows or an array)."""
    if isinstance(value, np.ndarray):
        return value.ndim == 2 and value.shape[1] in (2, 3) and np.issubdtype(value.dtype, np.number)
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(r, (list, tuple, np.ndarray)) and len(r) in (2, 3) and all(_is_number(v) for v in r)
                    for r in value))


def detect_format(data: Any, source: str = '<keypoints>') -> str:
    """Which of :data:`KEYPOINT_FORMATS` ``data`` (loaded JSON / pickle / array) is in.

    Raises:
        KeypointError: naming ``source`` when no format matches.
    """
    if isinstance(data, dict):
        if 'people' in data:
            return 'openpose'
        if 'annotations' in data or 'keypoints' in data:
            return 'coco'
        values = list(data.values())[:8]
        if values and all(_is_point_table(v) for v in values):
            return 'pose_label'
    elif isinstance(data, (list, tuple)) and data and all(isinstance(a, dict) and 'keypoints' in a for a in data):
        return 'coco'
    elif _is_point_table(data):
        return 'list'
    kind = type(data).__name__
    keys = f' with keys {sorted(map(str, data))[:8]}' if isinstance(data, dict) else ''
    raise KeypointError(
        f'{source}: unknown keypoint format (a {kind}{keys}). Expected OpenPose JSON ({{"people": [{{'
        f'"pose_keypoints_2d": [...]}}]}}), COCO keypoints ("keypoints": [51 values]), a list of 18 [x, y] '
        f'(-1 for missing) or a pose-label dict id -> 18 [x, y]; pass format= one of {KEYPOINT_FORMATS} to force one')


def _numeric(values: Any, source: str, what: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise KeypointError(f'{source}: {what} is not numeric ({e})') from e
    if not np.isfinite(arr).all():
        raise KeypointError(f'{source}: {what} contains NaN or infinite values')
    return arr


def _check_missing_markers(xy: np.ndarray, source: str, what: str,
                           names: Sequence[str] = COCO18_JOINT_NAMES) -> np.ndarray:
    """``-1`` convention -> bool present mask; any other negative coordinate is an error."""
    missing = (xy[:, 0] == MISSING) & (xy[:, 1] == MISSING)
    bad = ~missing & (xy < 0).any(axis=1)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise KeypointError(f'{source}: {what} joint {j} ({names[j]}) has coordinates '
                            f'{xy[j].tolist()}; coordinates must be >= 0 pixels, and a missing joint is [-1, -1]')
    return ~missing


def _openpose_people(data: dict, source: str, threshold: float) -> list[Person]:
    people = data['people']
    if not isinstance(people, list):
        raise KeypointError(f'{source}: "people" must be a list, got {type(people).__name__}')
    out = []
    for i, person in enumerate(people):
        key = next((k for k in ('pose_keypoints_2d', 'pose_keypoints') if isinstance(person, dict) and k in person),
                   None)
        if key is None:
            raise KeypointError(f'{source}: people[{i}] has no "pose_keypoints_2d" list')
        flat = _numeric(person[key], source, f'people[{i}].{key}').ravel()
        if flat.size not in (3 * NUM_JOINTS, 3 * len(BODY25_JOINT_NAMES)):
            raise KeypointError(
                f'{source}: people[{i}].{key} has {flat.size} values; expected 54 (COCO-18 / BODY_18: 18 joints '
                f'of x, y, c) or 75 (BODY_25); other OpenPose models (MPI, BODY_135) are not supported')
        table = flat.reshape(-1, 3)
        xy, conf = _apply_threshold(table[:, :2], table[:, 2], threshold)
        is_body25 = table.shape[0] == len(BODY25_JOINT_NAMES)
        _check_missing_markers(xy, source, f'people[{i}]', BODY25_JOINT_NAMES if is_body25 else COCO18_JOINT_NAMES)
        if is_body25:
            mapped = body25_to_coco18(np.concatenate([xy, conf[:, None]], axis=1))
            xy, conf = mapped[:, :2], mapped[:, 2]
        out.append(Person(xy.astype(np.float32), conf.astype(np.float32)))
    return out


def _coco_annotations(data: Any, source: str, entry_id: Any) -> list[dict]:
    images: list = []
    if isinstance(data, dict) and 'annotations' in data:
        anns, images = data['annotations'], data.get('images') or []
    elif isinstance(data, dict):
        anns = [data]
    else:
        anns = list(data)
    if not isinstance(anns, list) or not all(isinstance(a, dict) for a in anns):
        raise KeypointError(f'{source}: COCO "annotations" must be a list of objects')
    if entry_id is not None:
        wanted = {str(entry_id)}
        for img in images:
            name = str(img.get('file_name', ''))
            if str(entry_id) in (name, Path(name).name, Path(name).stem):
                wanted.add(str(img.get('id')))
        anns = [a for a in anns if str(a.get('image_id')) in wanted]
        if not anns:
            raise KeypointError(f'{source}: no annotation for image {entry_id!r} (matched against image_id and the '
                                f'file_name of "images")')
    else:
        image_ids = {str(a.get('image_id')) for a in anns}
        if len(image_ids) > 1:
            raise KeypointError(f'{source}: annotations of {len(image_ids)} images; pass entry_id (an image_id or '
                                f'file name, e.g. {sorted(image_ids)[0]!r}) to choose one')
    return anns


def _coco_people(data: Any, source: str, threshold: float, entry_id: Any) -> list[Person]:
    out = []
    for i, ann in enumerate(_coco_annotations(data, source, entry_id)):
        if 'keypoints' not in ann:
            raise KeypointError(f'{source}: annotation {i} has no "keypoints"')
        flat = _numeric(ann['keypoints'], source, f'annotation {i} keypoints').ravel()
        if flat.size != 3 * len(COCO17_JOINT_NAMES):
            raise KeypointError(f'{source}: annotation {i} has {flat.size} keypoint values; COCO person keypoints '
                                f'are 51 values (17 joints of x, y, v)')
        table = flat.reshape(-1, 3)
        xy, conf = _apply_threshold(table[:, :2], table[:, 2], threshold)
        _check_missing_markers(xy, source, f'annotation {i} (COCO-17)', COCO17_JOINT_NAMES)
        mapped = coco17_to_coco18(np.concatenate([xy, conf[:, None]], axis=1))
        out.append(Person(mapped[:, :2].copy(), mapped[:, 2].copy()))
    return out


def _table_person(table: Any, source: str, threshold: float, what: str) -> Person:
    arr = _numeric(table, source, what)
    if arr.ndim != 2 or arr.shape[1] not in (2, 3) or arr.shape[0] != NUM_JOINTS:
        hint = ''
        if arr.ndim == 2 and arr.shape[0] == len(COCO17_JOINT_NAMES):
            hint = ' (17 joints looks like COCO-17: write it as a COCO annotation {"keypoints": [51 values]})'
        elif arr.ndim == 2 and arr.shape[0] == len(BODY25_JOINT_NAMES):
            hint = ' (25 joints looks like BODY_25: write it as OpenPose JSON)'
        raise KeypointError(f'{source}: {what} has shape {arr.shape}; expected {NUM_JOINTS} joints of [x, y] '
                            f'(or [x, y, c]) in OpenPose COCO-18 order{hint}')
    xy = arr[:, :2]
    present = _check_missing_markers(xy, source, what)
    conf = arr[:, 2] if arr.shape[1] == 3 else np.ones(NUM_JOINTS)
    conf = np.where(present, conf, 0.0)
    xy, conf = _apply_threshold(xy, conf, threshold)
    return Person(xy, conf)


def _pose_label_people(data: dict, source: str, threshold: float, entry_id: Any) -> list[Person]:
    if entry_id is None:
        if len(data) != 1:
            examples = [str(k) for k in list(data)[:3]]
            raise KeypointError(f'{source}: pose-label file with {len(data)} entries; pass entry_id (the image id, '
                                f'e.g. {examples}) to choose one')
        entry_id = next(iter(data))
    if entry_id not in data:
        examples = [str(k) for k in list(data)[:3]]
        raise KeypointError(f'{source}: no entry {entry_id!r} among its {len(data)} entries (e.g. {examples})')
    return [_table_person(data[entry_id], source, threshold, f'entry {entry_id!r}')]


def parse_people(data: Any, *, source: str = '<keypoints>', format: str | None = None, entry_id: Any = None,
                 confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD) -> list[Person]:
    """Every person of already-loaded keypoint data, as COCO-18 :class:`Person` objects in file order.

    Args:
        data: the loaded JSON / pickle / array (see the module docstring for the formats).
        source: name used in error messages (the file path).
        format: one of :data:`KEYPOINT_FORMATS`, or ``None`` to detect it.
        entry_id: the image to take from a multi-image file (pose-label id; COCO image_id or file name).
        confidence_threshold: joints with a lower confidence are missing.

    Raises:
        KeypointError: unknown format, wrong number of joints, NaN/inf, negative coordinates.
    """
    if format is None:
        format = detect_format(data, source)
    if format not in KEYPOINT_FORMATS:
        raise KeypointError(f'{source}: unknown keypoint format {format!r}; valid formats are {KEYPOINT_FORMATS}')
    try:
        if format == 'openpose':
            if not isinstance(data, dict) or 'people' not in data:
                raise KeypointError(f'{source}: not OpenPose JSON (no "people" list)')
            return _openpose_people(data, source, confidence_threshold)
        if format == 'coco':
            if not (isinstance(data, (dict, list, tuple))):
                raise KeypointError(f'{source}: not COCO keypoint JSON')
            return _coco_people(data, source, confidence_threshold, entry_id)
        if format == 'list':
            return [_table_person(data, source, confidence_threshold, 'keypoint list')]
        if not isinstance(data, dict):
            raise KeypointError(f'{source}: a pose-label file must hold a dict id -> 18 [x, y], '
                                f'got {type(data).__name__}')
        return _pose_label_people(data, source, confidence_threshold, entry_id)
    except KeypointError:
        raise
    except (KeyError, TypeError, AttributeError) as e:
        # Structurally wrong content for the forced format.
        raise KeypointError(f'{source}: not valid {format} keypoint data ({type(e).__name__}: {e})') from e


def select_person(people: Sequence[Person], person_index: int | None = None, *,
                  source: str = '<keypoints>') -> Person:
    """``people[person_index]``, or by default the person with the largest joint extent (see module doc).

    Raises:
        KeypointError: no person with a valid joint, or ``person_index`` out of range.
    """
    if person_index is not None:
        if not -len(people) <= person_index < len(people):
            raise KeypointError(f'{source}: person_index {person_index} out of range; the file has '
                                f'{len(people)} person(s)')
        return people[person_index]
    candidates = [i for i, p in enumerate(people) if p.num_joints > 0]
    if not candidates:
        raise KeypointError(f'{source}: no person found (the file has {len(people)} person(s) with no joint above '
                            f'the confidence threshold)')
    best = max(candidates, key=lambda i: (keypoint_extent(people[i].keypoints), people[i].num_joints,
                                          float(people[i].scores.sum()), -i))
    return people[best]


def check_keypoints(keypoints, *, source: str = '<keypoints>', image_size: tuple[int, int] | None = None,
                    min_joints: int = DEFAULT_MIN_JOINTS) -> np.ndarray:
    """Validate a COCO-18 pose; returns it as ``float32 [18, 2]``.

    Args:
        keypoints: ``[18, 2]`` ``(x, y)``, ``(-1, -1)`` for a missing joint.
        source: named in error messages.
        image_size: ``(H, W)`` of the image the pose belongs to; when given, a joint with ``x > W`` or
            ``y > H`` is an error (joints up to the far image edge are inside, as in the datasets).
        min_joints: fewest valid joints accepted (framing needs a few).

    Raises:
        KeypointError: wrong shape, NaN/inf, a negative coordinate other than the ``(-1, -1)`` marker,
        out-of-image coordinates, fewer than ``min_joints`` joints.
    """
    arr = _numeric(keypoints, source, 'keypoints')
    if arr.shape != (NUM_JOINTS, 2):
        raise KeypointError(f'{source}: keypoints have shape {arr.shape}; expected ({NUM_JOINTS}, 2) (x, y) in '
                            f'OpenPose COCO-18 order')
    present = _check_missing_markers(arr, source, 'keypoints')
    if image_size is not None:
        height, width = (int(v) for v in image_size)
        outside = present & ((arr[:, 0] > width) | (arr[:, 1] > height))
        if outside.any():
            j = int(np.flatnonzero(outside)[0])
            raise KeypointError(f'{source}: joint {j} ({COCO18_JOINT_NAMES[j]}) at {arr[j].tolist()} lies outside '
                                f'the {height}x{width} (HxW) image; are the keypoints from another image or '
                                f'resolution?')
    n = int(present.sum())
    if n < min_joints:
        raise KeypointError(f'{source}: only {n} joint(s) present, at least {min_joints} are needed to frame the '
                            f'person; lower the confidence threshold or give a pose with more visible joints')
    return arr.astype(np.float32)


def read_people(path: PathLike, *, format: str | None = None, entry_id: Any = None,
                confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD) -> list[Person]:
    """Every person in a keypoint file (see :func:`parse_people`)."""
    data = load_keypoint_data(path)
    return parse_people(data, source=str(path), format=format, entry_id=entry_id,
                        confidence_threshold=confidence_threshold)


def read_keypoints(path: PathLike, *, format: str | None = None, person_index: int | None = None,
                   entry_id: Any = None, confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
                   image_size: tuple[int, int] | None = None, min_joints: int = DEFAULT_MIN_JOINTS) -> np.ndarray:
    """One person's COCO-18 pose from a keypoint file, validated.

    Args:
        path: ``.json``, ``.pkl`` or ``.npy`` keypoint file (formats in the module docstring).
        format: force one of :data:`KEYPOINT_FORMATS` (default: detected).
        person_index: person by position in the file (default: the largest, see :func:`select_person`).
        entry_id: the image to take from multi-image files (pose-label id, COCO image_id or file name).
        confidence_threshold: joints with a lower confidence are missing.
        image_size: ``(H, W)`` of the matching image, to reject out-of-image coordinates.
        min_joints: fewest valid joints accepted.

    Returns:
        ``float32 [18, 2]`` ``(x, y)``, -1 for missing joints.
    """
    people = read_people(path, format=format, entry_id=entry_id, confidence_threshold=confidence_threshold)
    person = select_person(people, person_index, source=str(path))
    return check_keypoints(person.keypoints, source=str(path), image_size=image_size, min_joints=min_joints)


# --------------------------------------------------------------------------------------------------
# Sequences
# --------------------------------------------------------------------------------------------------
def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r'(\d+)', path.name)]


def list_keypoint_files(folder: PathLike, pattern: str = '*.json') -> list[Path]:
    """Files of ``folder`` matching ``pattern`` in natural order (``frame2`` before ``frame10``).

    Raises:
        FileNotFoundError: ``folder`` is not a folder. KeypointError: no matching file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'keypoint folder not found: {folder}')
    files = sorted((p for p in folder.glob(pattern) if p.is_file()), key=_natural_key)
    if not files:
        raise KeypointError(f'{folder}: no keypoint file matching {pattern!r}')
    return files


def _mean_joint_distance(a: np.ndarray, b: np.ndarray) -> float:
    common = valid_joints(a) & valid_joints(b)
    if not common.any():
        return math.inf
    return float(np.linalg.norm(a[common] - b[common], axis=1).mean())


def read_keypoint_sequence(paths: PathLike | Sequence[PathLike], *, format: str | None = None,
                           person_index: int | None = None, confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
                           image_size: tuple[int, int] | None = None,
                           min_joints: int = DEFAULT_MIN_JOINTS) -> np.ndarray:
    """Poses of one person over a sequence of keypoint files (e.g. OpenPose's per-frame JSON of a video).

    Args:
        paths: a folder (its ``*.json`` files in natural order) or the files in frame order.
        person_index: the person in every frame, by position in the files. By default the first frame's
            largest person is taken, and in each later frame the person nearest (mean distance of the
            joints both poses have) to the previous frame's choice, so the same person is followed when
            the file order of people changes; a frame sharing no joint with the previous choice falls back
            to the largest person.
        other arguments: as :func:`read_keypoints`, applied to every frame.

    Returns:
        ``float32 [T, 18, 2]``.
    """
    if isinstance(paths, (str, os.PathLike)):
        files = list_keypoint_files(paths) if Path(paths).is_dir() else [Path(paths)]
    else:
        files = [Path(p) for p in paths]
    if not files:
        raise KeypointError('read_keypoint_sequence: no keypoint files given')
    poses = []
    previous: np.ndarray | None = None
    for path in files:
        people = read_people(path, format=format, confidence_threshold=confidence_threshold)
        if person_index is not None or previous is None:
            person = select_person(people, person_index, source=str(path))
        else:
            nearest = min(((_mean_joint_distance(p.keypoints, previous), i) for i, p in enumerate(people)),
                          default=(math.inf, -1))
            person = people[nearest[1]] if math.isfinite(nearest[0]) else select_person(people, source=str(path))
        kps = check_keypoints(person.keypoints, source=str(path), image_size=image_size, min_joints=min_joints)
        poses.append(kps)
        previous = kps
    return np.stack(poses)


def _check_sequence(sequence, name: str) -> np.ndarray:
    seq = np.asarray(sequence, dtype=np.float64)
    if seq.ndim != 3 or seq.shape[2] != 2:
        raise KeypointError(f'{name}: expected a keypoint sequence [T, K, 2], got shape {seq.shape}')
    if not np.isfinite(seq).all():
        raise KeypointError(f'{name}: the keypoint sequence contains NaN or infinite values')
    return seq


def smooth_moving_average(sequence, window: int = 5) -> np.ndarray:
    """Centred moving average over ``window`` frames, per joint, ignoring frames where the joint is missing.

    Frame ``t`` averages the valid values of frames ``t - window//2 .. t + window//2`` (fewer at the ends).
    A joint missing at ``t`` stays missing. Positions move by at most the motion within the window: a
    linear motion is unchanged away from the ends and from gaps.

    Args:
        sequence: ``[T, K, 2]`` ``(x, y)``, -1 for missing joints.
        window: odd number of frames >= 1 (1 = no smoothing).

    Returns:
        ``float32 [T, K, 2]``.
    """
    seq = _check_sequence(sequence, 'smooth_moving_average')
    if not (isinstance(window, (int, np.integer)) and window >= 1 and window % 2 == 1):
        raise ValueError(f'smooth_moving_average: window must be an odd integer >= 1, got {window!r}')
    valid = valid_joints(seq)
    values = np.where(valid[..., None], seq, 0.0)
    half = window // 2
    # Windowed sums as differences of cumulative sums, padded with zeros so windows are clipped at the ends.
    cum_v = np.concatenate([np.zeros((1,) + values.shape[1:]), np.cumsum(values, axis=0)])
    cum_n = np.concatenate([np.zeros((1,) + valid.shape[1:]), np.cumsum(valid, axis=0)])
    t = np.arange(seq.shape[0])
    lo, hi = np.clip(t - half, 0, seq.shape[0]), np.clip(t + half + 1, 0, seq.shape[0])
    sums = cum_v[hi] - cum_v[lo]
    counts = cum_n[hi] - cum_n[lo]
    mean = sums / np.maximum(counts, 1)[..., None]
    return np.where(valid[..., None], mean, MISSING).astype(np.float32)


def smooth_one_euro(sequence, *, fps: float = 30.0, min_cutoff: float = 1.0, beta: float = 0.01,
                    d_cutoff: float = 1.0) -> np.ndarray:
    """One-Euro filter (Casiez et al. 2012) along time, per joint coordinate; causal.

    A low-pass filter whose cut-off frequency rises with the speed: ``cutoff = min_cutoff + beta * |speed|``
    (Hz, speed in pixels per second), so slow jitter is removed and fast motion lags little. A missing
    joint stays missing and restarts that joint's filter at its next valid frame.

    Args:
        sequence: ``[T, K, 2]`` ``(x, y)``, -1 for missing joints.
        fps: frame rate of the sequence. min_cutoff: cut-off at rest (Hz; lower = smoother).
        beta: speed coefficient (higher = less lag on fast motion). d_cutoff: cut-off of the speed estimate (Hz).

    Returns:
        ``float32 [T, K, 2]``.
    """
    seq = _check_sequence(sequence, 'smooth_one_euro')
    if fps <= 0 or min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
        raise ValueError(f'smooth_one_euro: need fps, min_cutoff, d_cutoff > 0 and beta >= 0, got fps={fps}, '
                         f'min_cutoff={min_cutoff}, beta={beta}, d_cutoff={d_cutoff}')
    dt = 1.0 / fps

    def alpha(cutoff):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    valid = valid_joints(seq)
    out = np.full_like(seq, MISSING)
    x_prev = np.zeros(seq.shape[1:])
    dx_prev = np.zeros(seq.shape[1:])
    started = np.zeros(seq.shape[1], dtype=bool)
    a_d = alpha(d_cutoff)
    # The recursion is sequential in time; every step is vectorised over joints and coordinates.
    for t in range(seq.shape[0]):
        v = valid[t]
        x = seq[t]
        fresh = v & ~started
        dx = np.where(started[:, None], (x - x_prev) / dt, 0.0)
        dx_hat = a_d * dx + (1 - a_d) * dx_prev
        a = alpha(min_cutoff + beta * np.abs(dx_hat))
        x_hat = np.where(fresh[:, None], x, a * x + (1 - a) * x_prev)
        out[t] = np.where(v[:, None], x_hat, MISSING)
        x_prev = np.where(v[:, None], x_hat, x_prev)
        dx_prev = np.where(v[:, None], np.where(fresh[:, None], 0.0, dx_hat), dx_prev)
        started = v
    return out.astype(np.float32)


def smooth_keypoint_sequence(sequence, method: str = 'moving_average', **params: Any) -> np.ndarray:
    """Dispatch to :func:`smooth_moving_average` (``window``) or :func:`smooth_one_euro` (``fps``, ``min_cutoff``,
    ``beta``, ``d_cutoff``). ``method`` is one of :data:`SMOOTHING_METHODS`."""
    functions = {'moving_average': smooth_moving_average, 'one_euro': smooth_one_euro}
    if method not in functions:
        raise ValueError(f'unknown smoothing method {method!r}; valid methods are {SMOOTHING_METHODS}')
    return functions[method](sequence, **params)


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------
def write_openpose_json(path: PathLike, keypoints, scores=None) -> Path:
    """Write poses as OpenPose COCO-18 JSON (``pose_keypoints_2d``; missing joints as ``0, 0, 0``).

    Coordinates and scores are rounded to 1/1000.

    Args:
        path: output ``.json`` (written atomically, parent folders created).
        keypoints: one pose ``[18, 2]`` or several ``[P, 18, 2]``, -1 for missing joints.
        scores: ``[18]`` / ``[P, 18]`` confidences (default 1 for every present joint).

    Returns:
        ``path`` as a ``Path``; :func:`read_keypoints` reads it back to the same keypoints.
    """
    kps = _numeric(keypoints, str(path), 'keypoints')
    if kps.ndim == 2:
        kps = kps[None]
    if kps.ndim != 3 or kps.shape[1:] != (NUM_JOINTS, 2):
        raise KeypointError(f'{path}: keypoints to write must be [18, 2] or [P, 18, 2], got {kps.shape}')
    for p in range(kps.shape[0]):
        _check_missing_markers(kps[p], str(path), f'person {p}')
    valid = valid_joints(kps)
    if scores is None:
        conf = valid.astype(np.float64)
    else:
        conf = _numeric(scores, str(path), 'scores').reshape(kps.shape[:2])
    conf = np.where(valid, conf, 0.0)
    xy = np.where(valid[..., None], kps, 0.0)
    people = [{'person_id': [-1],
               'pose_keypoints_2d': [round(float(v), 3) for v in np.concatenate([xy[p], conf[p][:, None]], 1).ravel()],
               'face_keypoints_2d': [], 'hand_left_keypoints_2d': [], 'hand_right_keypoints_2d': [],
               'pose_keypoints_3d': [], 'face_keypoints_3d': [], 'hand_left_keypoints_3d': [],
               'hand_right_keypoints_3d': []}
              for p in range(kps.shape[0])]
    text = json.dumps({'version': 1.3, 'people': people})
    return atomic_write(path, lambda f: f.write(text + '\n'), mode='w')
