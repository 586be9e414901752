"""The page's work, without the page: :class:`ReposeService` loads models, reads and checks uploads, runs the
pipeline one request at a time and turns every failure into a readable :class:`AppError`.

The web page (:mod:`webapp.page`) only moves values between its widgets and these methods, so everything here is tested
without a browser.

Coordinates of a target pose live in one of two spaces (:class:`PoseSpace`): the *model frame* (the dataset's test
poses, poses derived from them) or the *photo* the pose was read from or detected in (an uploaded keypoint file or
image). A dataset test image as source with a model-frame target is run like the test script (``framing='identity'``,
the images are already at the model size); every other combination is framed automatically
(``framing='auto'``: the source cropped around its keypoints, the target framed by its own skeleton), exactly as
``scripts/repose.py`` does.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from webapp.catalog import DatasetGallery, ModelEntry, list_models, load_gallery, resolve_data_root
from webapp.uploads import (MAX_UPLOAD_BYTES, check_image_upload, check_keypoint_upload,
                         extract_keypoint_zip)
from inference.media import load_image, save_image, write_video
from inference.pipeline import KeypointFile, PoseTransferPipeline, ReposeResult
from models.keypoint_detector import detect_person
from util.keypoints import (DEFAULT_MIN_JOINTS, NUM_JOINTS, check_keypoints, list_keypoint_files, read_keypoints,
                            read_keypoint_sequence)
from util.pose_util import JOINT_NAMES, draw_pose
from util.visualizer import VIS_COLORS

PathLike = str | os.PathLike
T = TypeVar('T')
log = logging.getLogger(__name__)

# Frames and amplitude of the built-in walk cycle.
WALK_FRAMES = 16
WALK_SWING_DEGREES = 28.0
# The skeleton previews are drawn at most this large on their longer side.
PREVIEW_SIDE = 256


class AppError(Exception):
    """A request failed; ``str(e)`` is the message shown on the page (no stack trace)."""


@dataclass(frozen=True)
class PoseSpace:
    """Where a pose's coordinates live: ``'model'`` (the model frame, ``size`` = the model size) or ``'photo'``
    (the image it was read from or detected in; ``size`` its ``(H, W)``, or None for a keypoint file alone)."""

    kind: str
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ('model', 'photo'):
            raise ValueError(f"PoseSpace.kind must be 'model' or 'photo', got {self.kind!r}")


@dataclass(frozen=True)
class SourceChoice:
    """The source person: an uploaded photo (``image``; its keypoints from ``keypoints``, an uploaded keypoint file,
    or detected) or a dataset test image (``dataset_index`` into the model's gallery)."""

    image: Path | None = None
    keypoints: Path | None = None
    dataset_index: int | None = None

    def __post_init__(self) -> None:
        if (self.image is None) == (self.dataset_index is None):
            raise ValueError('SourceChoice needs exactly one of image (an upload) and dataset_index')


@dataclass(frozen=True)
class Panel:
    """One labelled intermediate image: ``image`` ``uint8 [H, W, 3]``, its PNG ``path`` and ``label``."""

    label: str
    image: np.ndarray
    path: Path


@dataclass(frozen=True)
class ReposeOutput:
    """A finished single request: the result image and its PNG (the download), the labelled panels, the time."""

    image: np.ndarray
    path: Path
    panels: list[Panel]
    seconds: float
    framing: str
    model: str

    @property
    def summary(self) -> str:
        return (f'Done in {self.seconds:.2f} s with {self.model} (framing: {self.framing}, result '
                f'{self.image.shape[0]}x{self.image.shape[1]}).')


@dataclass(frozen=True)
class SequenceOutput:
    """A finished sequence: the animation file (GIF), its frames and the time."""

    path: Path
    n_frames: int
    seconds: float
    fps: float
    model: str
    frames: list[np.ndarray] = field(repr=False, default_factory=list)

    @property
    def summary(self) -> str:
        return (f'Done in {self.seconds:.2f} s: {self.n_frames} frames at {self.fps:g} fps with {self.model}.')


# --------------------------------------------------------------------------------------------------
# Poses
# --------------------------------------------------------------------------------------------------
def pose_table(keypoints: np.ndarray) -> list[list[Any]]:
    """Rows ``[joint name, x, y]`` of a COCO-18 pose (``-1, -1`` for a missing joint), for the joint editor."""
    kps = np.asarray(keypoints, dtype=np.float64).reshape(NUM_JOINTS, 2)
    return [[name, float(x), float(y)] for name, (x, y) in zip(JOINT_NAMES, kps)]


def pose_from_table(rows: Any) -> np.ndarray:
    """The joint editor's rows (a list of ``[name, x, y]`` or a table with ``x``/``y`` columns) -> ``float32
    [18, 2]``, validated (:func:`util.keypoints.check_keypoints`).

    Raises:
        AppError: wrong number of rows, a value that is no number.
    """
    if hasattr(rows, 'to_numpy'):  # a pandas DataFrame
        rows = rows.to_numpy().tolist()
    if rows is None or len(rows) != NUM_JOINTS:
        raise AppError(f'the target pose needs {NUM_JOINTS} joints (rows); pick a pose first')
    xy = []
    for i, row in enumerate(rows):
        try:
            x, y = float(row[1]), float(row[2])
        except (TypeError, ValueError, IndexError):
            raise AppError(f'joint {i} ({JOINT_NAMES[i]}): x and y must be numbers (-1 for a missing joint), got '
                           f'{list(row)[1:3]}') from None
        xy.append((x, y))
    try:
        return check_keypoints(np.array(xy), source='the target pose', min_joints=DEFAULT_MIN_JOINTS)
    except ValueError as e:
        raise AppError(str(e)) from e


def draw_skeleton(keypoints: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``uint8 [H, W, 3]`` skeleton of ``keypoints`` on black, on a canvas of ``size`` (or the pose's extent)
    scaled to at most :data:`PREVIEW_SIDE` pixels on its longer side."""
    kps = np.asarray(keypoints, dtype=np.float64).reshape(NUM_JOINTS, 2)
    valid = (kps >= 0).all(axis=1)
    if size is None:
        extent = kps[valid].max(axis=0) if valid.any() else np.array([64.0, 128.0])
        size = (int(math.ceil(extent[1] * 1.1)) + 1, int(math.ceil(extent[0] * 1.1)) + 1)
    height, width = size
    scale = min(1.0, PREVIEW_SIDE / max(height, width))
    shown = np.where(valid[:, None], kps * scale, -1.0)
    return draw_pose(shown, (max(1, round(height * scale)), max(1, round(width * scale))))


def walk_cycle(base: np.ndarray, n_frames: int = WALK_FRAMES, swing_degrees: float = WALK_SWING_DEGREES) -> np.ndarray:
    """A walk cycle from one pose: legs swing about the hips and arms about the shoulders, in opposite phase
    (left leg with right arm), one sine period over ``n_frames``; knees bend on the forward swing.

    Args:
        base: ``[18, 2]`` COCO-18 pose (the stance; missing joints stay missing).

    Returns:
        ``float32 [n_frames, 18, 2]``, coordinates clipped at 0 so that no joint turns into the missing marker.
    """
    base = np.asarray(base, dtype=np.float64).reshape(NUM_JOINTS, 2)
    present = (base >= 0).all(axis=1)
    # (pivot, moved joints, phase): right arm, left arm, right leg, left leg.
    limbs = ((2, (3, 4), math.pi), (5, (6, 7), 0.0), (8, (9, 10), 0.0), (11, (12, 13), math.pi))
    frames = []
    for t in range(n_frames):
        pose = base.copy()
        for pivot, joints, phase in limbs:
            if not present[pivot]:
                continue
            angle = math.radians(swing_degrees) * math.sin(2 * math.pi * t / n_frames + phase)
            c, s = math.cos(angle), math.sin(angle)
            for k, j in enumerate(joints):
                if not present[j]:
                    continue
                d = base[j] - base[pivot]
                rotated = np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]])
                if k == 1 and pivot in (8, 11) and present[joints[0]] and angle > 0:
                    # knee bend: the ankle swings a little further back than the thigh
                    knee = pose[joints[0]] - base[pivot]
                    shin = rotated - knee
                    b = -0.5 * angle
                    rotated = knee + np.array([math.cos(b) * shin[0] - math.sin(b) * shin[1],
                                               math.sin(b) * shin[0] + math.cos(b) * shin[1]])
                pose[j] = base[pivot] + rotated
        pose[present] = np.clip(pose[present], 0.0, None)
        frames.append(pose)
    return np.stack(frames).astype(np.float32)


def visibility_rgb(visibility: np.ndarray) -> np.ndarray:
    """Visibility labels ``[H, W]`` (0 visible, 1 hidden, 2 background) -> ``uint8 [H, W, 3]`` (green, red,
    blue: the colours of the training visuals)."""
    table = np.array(VIS_COLORS, dtype=np.uint8)
    return table[np.clip(visibility.astype(np.int64), 0, len(VIS_COLORS) - 1)]


def intermediate_panels(result: ReposeResult) -> list[tuple[str, np.ndarray]]:
    """Labelled panels of a result computed with ``return_intermediates=True``, in the order of the model's path."""
    h, w = result.image.shape[:2]
    panels = [('source (framed)', result.source),
              ('source pose', draw_pose(result.source_keypoints, (h, w))),
              ('target pose', draw_pose(result.target_keypoints, (h, w)))]
    inter = result.intermediates
    if inter is not None:
        if inter.flow_rgb is not None:
            panels.append(('flow (hue: direction, brightness: length)', inter.flow_rgb))
        if inter.visibility is not None:
            panels.append(('visibility (green: visible, red: hidden, blue: background)',
                           visibility_rgb(inter.visibility)))
        if inter.warped_source is not None:
            panels.append(('warped source', inter.warped_source))
        if inter.generator_output is not None:
            panels.append(('generator output (before pixel warping)', inter.generator_output))
        if inter.pixel_warping_mask is not None:
            mask = np.round(np.clip(inter.pixel_warping_mask, 0, 1) * 255).astype(np.uint8)
            panels.append(('pixel-warping mask (white: taken from the warped source)',
                           np.repeat(mask[:, :, None], 3, axis=2)))
    panels.append(('result', result.image))
    return panels


# --------------------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------------------
class ReposeService:
    """Models under ``checkpoints_dir``, their galleries, and the requests of the page.

    Args:
        checkpoints_dir: folder whose experiment folders are offered (``checkpoints/``).
        device: where models run (``'auto'``, ``'cpu'``, ``'cuda'``...).
        detector: keypoint detector backend for photos uploaded without keypoints (``'torchvision'``), a
            :class:`models.keypoint_detector.KeypointDetector`, or None (keypoints must be uploaded).
        detector_weights: the detector's weights file (default: the torch hub cache; never downloaded).
        work_dir: where results are written (default: a new temporary folder, removed by :meth:`close`).
        max_upload_bytes: size limit of every upload.

    Requests run one at a time (a lock around every use of a model), whatever calls them.
    """

    def __init__(self, checkpoints_dir: PathLike, *, device: str = 'auto', detector: Any = 'torchvision',
                 detector_weights: PathLike | None = None, work_dir: PathLike | None = None,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.checkpoints_dir = Path(checkpoints_dir)
        self.device = device
        self.detector = detector
        self.detector_weights = detector_weights
        self.max_upload_bytes = int(max_upload_bytes)
        self._own_work_dir = work_dir is None
        self.work_dir = Path(tempfile.mkdtemp(prefix='intrinsic_flow_app_')) if work_dir is None else Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._pipeline: tuple[Path, PoseTransferPipeline] | None = None
        self._galleries: dict[Path, DatasetGallery | None] = {}

    def close(self) -> None:
        """Remove the work folder when the service made it."""
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    # ------------------------------------------------------------------------------------------ models
    def models(self) -> list[ModelEntry]:
        """The pose-transfer experiment folders under the checkpoints folder (read anew on each call)."""
        return list_models(self.checkpoints_dir)

    def model(self, name: str | None) -> ModelEntry:
        """The model folder ``name`` (a folder name under the checkpoints folder).

        Raises:
            AppError: no model chosen or no such folder.
        """
        models = self.models()
        if not name:
            raise AppError(self.no_models_message() if not models else 'choose a model first')
        for entry in models:
            if entry.name == name:
                return entry
        raise AppError(f'model {name!r} is not a pose-transfer experiment folder in {self.checkpoints_dir}; '
                       f'reload the page to see the current models')

    def no_models_message(self) -> str:
        return (f'no pose-transfer model in {self.checkpoints_dir}/: run the quick start (python scripts/demo.py) '
                f'or download the released models (bash scripts/download_models.sh), then reload the page')

    def gallery(self, name: str) -> DatasetGallery | None:
        """The test images and poses of the model's dataset, or None when the dataset is not on this machine."""
        entry = self.model(name)
        if entry.path not in self._galleries:
            root = resolve_data_root(entry, self.checkpoints_dir)
            gallery = None
            if root is not None:
                try:
                    gallery = load_gallery(entry, root)
                except (OSError, ValueError) as e:
                    log.warning('no gallery for %s: %s', entry.name, e)
            self._galleries[entry.path] = gallery
        return self._galleries[entry.path]

    def gallery_note(self, name: str) -> str:
        """One line about the model's dataset gallery, for the page."""
        entry = self.model(name)
        gallery = self.gallery(name)
        if gallery is None or len(gallery) == 0:
            return (f'The dataset of {entry.name} ({entry.data_root or "unknown"}) is not on this machine: upload '
                    f'photos and keypoint files instead.')
        return f'{len(gallery)} test images of {gallery.root} ({entry.dataset_name}, {entry.image_size[0]}x' \
               f'{entry.image_size[1]}).'

    def pipeline(self, name: str) -> PoseTransferPipeline:
        """The loaded pipeline of model ``name`` (the last one used stays loaded). Call under the lock."""
        entry = self.model(name)
        if self._pipeline is not None and self._pipeline[0] == entry.path:
            return self._pipeline[1]
        self._pipeline = None  # free the previous model first
        pipe = PoseTransferPipeline.from_pretrained(entry.path, device=self.device, detector=self.detector,
                                                    detector_weights=self.detector_weights)
        self._pipeline = (entry.path, pipe)
        return pipe

    # ------------------------------------------------------------------------------------------ running
    def run(self, what: Callable[[], T], uploads: tuple[Path | None, ...] = ()) -> T:
        """``what()`` under the model lock, with every failure turned into an :class:`AppError`.

        Expected failures (bad uploads, poses, model folders, missing detector weights; ``ValueError``,
        ``OSError``, ``RuntimeError``) keep their message, with the server's upload folders cut from file names;
        anything else is logged with its traceback on the server and reported as an internal error.
        """
        with self._lock:
            try:
                return what()
            except AppError:
                raise
            except (ValueError, OSError, RuntimeError) as e:
                raise AppError(self._readable(str(e), uploads)) from e
            except Exception as e:  # noqa: BLE001 - the page must get a message, the server must keep running
                log.exception('internal error while serving a request')
                raise AppError(f'internal error ({type(e).__name__}); the server log has the details') from e

    def _readable(self, message: str, uploads: tuple[Path | None, ...]) -> str:
        for path in uploads:
            if path is not None:
                message = message.replace(str(path), path.name)
        return message

    def _new_dir(self) -> Path:
        out = self.work_dir / uuid.uuid4().hex
        out.mkdir(parents=True)
        return out

    # ------------------------------------------------------------------------------------------ inputs
    def check_source_upload(self, path: PathLike) -> np.ndarray:
        """Check an uploaded source photo and decode it: ``uint8 [H, W, 3]`` for the preview."""
        path = Path(path)
        return self.run(lambda: load_image(check_image_upload(path, self.max_upload_bytes)), (path,))

    def check_keypoint_file(self, path: PathLike) -> np.ndarray:
        """An uploaded keypoint file's pose ``float32 [18, 2]`` (its largest person), in its photo's pixels."""
        path = Path(path)
        return self.run(lambda: read_keypoints(check_keypoint_upload(path, self.max_upload_bytes),
                                               min_joints=DEFAULT_MIN_JOINTS), (path,))

    def detect_pose(self, name: str, path: PathLike) -> tuple[np.ndarray, tuple[int, int]]:
        """The pose of the largest person in an uploaded photo (keypoint detector) and the photo's ``(H, W)``."""
        path = Path(path)

        def detect() -> tuple[np.ndarray, tuple[int, int]]:
            image = load_image(check_image_upload(path, self.max_upload_bytes))
            detection = detect_person(self.pipeline(name).detector, image, image_name=path.name)
            kps = check_keypoints(detection.keypoints, source=f'the keypoints detected in {path.name}',
                                  image_size=image.shape[:2], min_joints=DEFAULT_MIN_JOINTS)
            return kps, image.shape[:2]

        return self.run(detect, (path,))

    def _source_args(self, name: str, source: SourceChoice) -> tuple[Any, Any, bool]:
        """(image, keypoints, from the dataset) for the pipeline."""
        if source.dataset_index is not None:
            gallery = self.gallery(name)
            if gallery is None or not 0 <= source.dataset_index < len(gallery):
                raise AppError('the chosen dataset image is not in the gallery of this model; pick it again')
            return gallery.images[source.dataset_index], gallery.poses[source.dataset_index], True
        image = check_image_upload(source.image, self.max_upload_bytes)
        keypoints = None
        if source.keypoints is not None:
            keypoints = KeypointFile(check_keypoint_upload(source.keypoints, self.max_upload_bytes))
        return image, keypoints, False

    @staticmethod
    def framing_for(from_dataset: bool, space: PoseSpace) -> str:
        return 'identity' if from_dataset and space.kind == 'model' else 'auto'

    # ------------------------------------------------------------------------------------------ requests
    def repose(self, name: str, source: SourceChoice, target: np.ndarray, space: PoseSpace) -> ReposeOutput:
        """The source person in the ``target`` pose (``[18, 2]`` in ``space``), with the labelled panels."""

        def work() -> ReposeOutput:
            start = time.perf_counter()
            pipe = self.pipeline(name)
            image, keypoints, from_dataset = self._source_args(name, source)
            framing = self.framing_for(from_dataset, space)
            result = pipe(image, np.asarray(target, dtype=np.float32), source_keypoints=keypoints,
                          return_intermediates=True, framing=framing)
            seconds = time.perf_counter() - start
            out_dir = self._new_dir()
            path = save_image(out_dir / 'result.png', result.image)
            panels = [Panel(label, img, save_image(out_dir / f'panel_{i}.png', img))
                      for i, (label, img) in enumerate(intermediate_panels(result))]
            return ReposeOutput(image=result.image, path=path, panels=panels, seconds=seconds, framing=framing,
                                model=f'{pipe.model_dir.name} ({pipe.which_epoch})')

        return self.run(work, (source.image, source.keypoints))

    def read_sequence_zip(self, path: PathLike) -> np.ndarray:
        """The poses ``float32 [T, 18, 2]`` of an uploaded ZIP of per-frame keypoint files (natural file order)."""
        path = Path(path)

        def read() -> np.ndarray:
            folder = self._new_dir()
            extract_keypoint_zip(path, folder, self.max_upload_bytes)
            return read_keypoint_sequence(list_keypoint_files(folder), min_joints=DEFAULT_MIN_JOINTS)

        return self.run(read, (path,))

    def sequence(self, name: str, source: SourceChoice, poses: np.ndarray, space: PoseSpace,
                 fps: float = 8.0) -> SequenceOutput:
        """The source person in every pose of ``poses`` ``[T, 18, 2]`` (one target frame for all, so the motion
        is kept), written as an animated GIF. A model-frame sequence that leaves the model frame is framed
        automatically."""

        def work() -> SequenceOutput:
            start = time.perf_counter()
            if not fps > 0:
                raise AppError(f'the frame rate must be positive, got {fps}')
            pipe = self.pipeline(name)
            image, keypoints, from_dataset = self._source_args(name, source)
            seq = np.asarray(poses, dtype=np.float32)
            framing = self.framing_for(from_dataset, space)
            height, width = pipe.image_size
            if framing == 'identity' and ((seq[..., 0] > width) | (seq[..., 1] > height)).any():
                framing = 'auto'  # the motion leaves the model frame: frame the whole sequence by its skeletons
            results = pipe.repose_sequence(image, seq, source_keypoints=keypoints, framing=framing)
            frames = [r.image for r in results]
            video = write_video(self._new_dir() / 'sequence.gif', frames, fps=fps)
            return SequenceOutput(path=video.path, n_frames=len(frames), seconds=time.perf_counter() - start,
                                  fps=fps, model=f'{pipe.model_dir.name} ({pipe.which_epoch})', frames=frames)

        return self.run(work, (source.image, source.keypoints))
