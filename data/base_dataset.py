"""Shared machinery of the two pair datasets: layout, validation, file readers, item assembly.

A dataset is a list of ``(id_1, id_2)`` pairs (source, target) from a split JSON file, plus a pose
pickle with the keypoints of every id. Construction validates cheaply (root folder, split file and key,
pair format, every id present in the pose file); images, segmentations and correspondence files are
validated lazily when an item is loaded, and every error names the file or id.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from data.synthetic import is_complete as demo_dataset_is_complete
from util.flow_util import CorrFileError, read_corr
from util.image_file import describe_undecodable, image_bytes_problem
from util.io import load_json
from util.labels import load_label_file
from util.pose_util import kp_to_map, kp_to_map_batch
from util.seg_util import seg_label_to_map, seg_label_to_map_batch

# How to obtain each dataset; named in the error raised for a missing dataset root.
DATASET_SOURCES = {
    'deepfashion': 'bash scripts/download_deepfashion.sh',
    'market': 'bash scripts/download_market1501.sh',
    'demo': 'python scripts/make_demo_dataset.py',
}
DEBUG_NUM_PAIRS = 32  # `--debug` keeps this many pairs of every split, as in the original
# 8-bit level -> [-1, 1] through the same float32 steps as the formula (/255, then (x - 0.5) / 0.5), so a table
# lookup gives the identical values in one pass.
_LEVEL_TO_UNIT = (np.arange(256, dtype=np.uint8).astype(np.float32) / 255.0 - 0.5) / 0.5


# Item keys derived from others (heatmaps from the keypoints, one-hot maps from the label maps); with
# ``maps_on_device`` the loader leaves them out and draw_device_maps adds them to the batch on the device.
DEVICE_MAP_KEYS = ('joint_1', 'joint_2', 'seg_1', 'seg_2')


def draw_device_maps(batch: dict[str, Any], joint_mode: str, joint_radius: float, seg_nc: int) -> None:
    """Add the maps a ``maps_on_device`` loader left out to ``batch``, on the device its tensors are on.

    ``batch`` holds ``img_1`` ``[N, 3, H, W]`` (for the map size), ``joint_c_1/2`` ``[N, K, 2]`` and
    ``seg_label_1/2`` ``[N, 1, H, W]``; it gains ``joint_1/2`` (float32 ``[N, K, H, W]``, the loader's heatmaps:
    bit-identical for ``joint_mode='binary'``, see :func:`util.pose_util.kp_to_map_batch`) and ``seg_1/2``
    (float32 ``[N, seg_nc, H, W]``, identical). Keys already present are an error: the maps would be drawn twice.
    """
    present = [k for k in DEVICE_MAP_KEYS if k in batch]
    if present:
        raise ValueError(f'draw_device_maps: the batch already holds {present}; it comes from a loader without '
                         f'maps_on_device, so there is nothing to draw')
    height, width = batch['img_1'].shape[-2:]
    for side in ('1', '2'):
        batch[f'joint_{side}'] = kp_to_map_batch(batch[f'joint_c_{side}'], height, width, joint_mode, joint_radius)
        batch[f'seg_{side}'] = seg_label_to_map_batch(batch[f'seg_label_{side}'], seg_nc)


class DataFileError(ValueError):
    """A dataset file is unreadable, truncated or inconsistent with the options. The message names it.

    ``kind`` says what is wrong, for reports that group problems (``empty``, ``truncated``, ``cannot be decoded``,
    ``wrong size``, ``labels outside the classes``, ...; ``other`` by default).
    """

    def __init__(self, message: str, kind: str = 'other') -> None:
        super().__init__(message)
        self.kind = kind


def _source_hint(opt: Any) -> str:
    name = getattr(opt, 'dataset_name', None)
    cmd = DATASET_SOURCES.get(name)
    if cmd is None:
        return f'(dataset_name {name!r} has no download script; known datasets: {sorted(DATASET_SOURCES)})'
    if name == 'demo':
        return f'generate it with `{cmd} --out {opt.data_root}`'
    return f'download it with `{cmd}` (run from the repository root)'


def shift_image(arr: np.ndarray, dx: int, dy: int, pad: float) -> np.ndarray:
    """Translate by whole pixels: output ``(x + dx, y + dy)`` <- input ``(x, y)``; uncovered area = ``pad``.

    Works on ``[H, W]`` or ``[H, W, C]`` arrays; the dtype is kept.
    """
    h, w = arr.shape[:2]
    out = np.full_like(arr, pad)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        arr[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def normalize_image(rgb: np.ndarray) -> np.ndarray:
    """RGB ``uint8 [H, W, 3]`` -> ``float32 [H, W, 3]`` in [-1, 1]: ``x / 255``, then ``(x - 0.5) / 0.5``, in float32.

    The encoding of every image the networks see: the datasets' images (:meth:`BaseDataset.read_image`, through the
    same table) and the inference pipeline's photos.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        desc = f'{rgb.dtype} {rgb.shape}' if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ValueError(f'normalize_image expects an RGB uint8 image [H, W, 3], got {desc}')
    return cv2.LUT(rgb, _LEVEL_TO_UNIT)


def to_chw(arr: np.ndarray) -> torch.Tensor:
    """``[H, W, C]`` numpy -> contiguous ``float32 [C, H, W]`` tensor (``[H, W]`` -> ``[1, H, W]``).

    No copy when ``arr`` is a float32 ``[H, W, C]`` view of contiguous ``[C, H, W]`` memory.
    """
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32))


def decode_image_file(path: Path, data: np.ndarray, flags: int, what: str) -> np.ndarray:
    """Decode the bytes ``data`` of ``path`` with OpenCV (any format it reads, as the original's ``cv2.imread``).

    Raises :class:`DataFileError` naming the file and the cause: empty file, a JPEG without its end-of-image
    marker (cut short: OpenCV would decode it partially), a BMP shorter than its header declares, or content
    that does not decode (saying which format it looks like, or that it is not an image).
    """
    problem = image_bytes_problem(data)
    if problem is not None:
        kind, detail = problem
        advice = '; restore the file from the dataset archive' if kind == 'empty' else ''
        raise DataFileError(f'{what} {path} {detail}{advice}', kind)
    try:
        decoded = cv2.imdecode(data, flags)
    except cv2.error:  # OpenCV asserts on some malformed headers instead of returning None
        decoded = None
    if decoded is None:
        raise DataFileError(f'{what} {path} cannot be decoded: {describe_undecodable(data)} ({data.size} bytes)',
                            'cannot be decoded')
    return decoded


class BaseDataset(Dataset):
    """Pairs of one split of one dataset (on-disk layout: docs/architecture.md).

    Reads from ``opt``: ``data_root``, ``fn_split``, ``fn_pose``, ``img_dir``, ``seg_dir``, ``corr_dir``,
    ``image_size`` ``[H, W]``, ``joint_nc``, ``joint_mode``, ``joint_radius``, ``seg_nc``,
    ``vis_smooth_rate``, ``allow_corr_fallback``, ``debug``, ``is_train``, ``dataset_name`` and, when present,
    ``maps_on_device``: 1 leaves the derived maps (:data:`DEVICE_MAP_KEYS`) out of the items, for
    :func:`draw_device_maps` to add to the batch on the training device.

    ``strict_seg``: segmentation labels ``>= seg_nc`` raise :class:`DataFileError` instead of being kept (with
    all-zero one-hot rows, as in the original) and reported once per file.

    ``corr_fallback_count``: number of correspondence files replaced by zero correspondence and
    visibility 2 because ``opt.allow_corr_fallback`` is 1 and the file was unreadable. Each DataLoader
    worker process holds its own copy of the dataset, so with ``num_workers > 0`` the count stays in the
    workers (the warning naming each file is still printed); read it with ``num_workers=0``.
    """

    def __init__(self, opt: Any, split: str, strict_seg: bool = False) -> None:
        super().__init__()
        self.opt = opt
        self.split = split
        self.strict_seg = bool(strict_seg)
        self._seg_warned: set[Path] = set()  # segmentation files already reported (labels outside the classes)
        self.root = Path(opt.data_root)
        if not self.root.is_dir():
            raise FileNotFoundError(f'dataset root {self.root} not found (dataset_name={opt.dataset_name!r}); '
                                    f'{_source_hint(opt)}')
        if opt.dataset_name == 'demo':
            if not demo_dataset_is_complete(self.root):
                raise FileNotFoundError(f'{self.root} is an incomplete demo dataset (no valid manifest.json; an '
                                        f'interrupted generation?); regenerate it with '
                                        f'`python scripts/make_demo_dataset.py --out {self.root} --force`')
        if len(opt.image_size) != 2:
            raise ValueError(f'opt.image_size must be [H, W], got {opt.image_size}')
        self.image_size = (int(opt.image_size[0]), int(opt.image_size[1]))
        self.img_dir = self.root / opt.img_dir
        self.seg_dir = self.root / opt.seg_dir
        self.corr_dir = self.root / opt.corr_dir
        self.fn_split = self.root / opt.fn_split
        self.fn_pose = self.root / opt.fn_pose
        self.pairs_all = self._load_pairs()
        self.pose_label = self._load_poses(self.pairs_all)
        if opt.debug:
            self.pairs_all = self.pairs_all[:DEBUG_NUM_PAIRS]
        self.pairs = self.pairs_all
        self.corr_fallback_count = 0
        # An options object of an older release (or a hand-made namespace) has no such key: the classic items.
        self.maps_on_device = bool(getattr(opt, 'maps_on_device', 0))

    # ----------------------------------------------------------------------------------------------
    # Construction-time validation (cheap)

    def _load_pairs(self) -> list[tuple[str, str]]:
        if not self.fn_split.is_file():
            raise FileNotFoundError(f'split file {self.fn_split} not found; the dataset at {self.root} is incomplete, '
                                    f'{_source_hint(self.opt)}')
        split_data = load_json(self.fn_split)
        if not isinstance(split_data, dict) or self.split not in split_data:
            keys = sorted(split_data) if isinstance(split_data, dict) else type(split_data).__name__
            raise KeyError(f'split {self.split!r} not in {self.fn_split}; available splits: {keys}')
        pairs = []
        for k, pair in enumerate(split_data[self.split]):
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
                raise DataFileError(f'{self.fn_split}: entry {k} of split {self.split!r} must be a pair '
                                    f'[id_1, id_2] of strings, got {pair!r}')
            pairs.append((pair[0], pair[1]))
        return pairs

    def _load_poses(self, pairs: list[tuple[str, str]]) -> dict:
        poses = load_label_file(self.fn_pose)  # the converted .json when present (scripts/convert_labels.py)
        if not isinstance(poses, dict):
            raise DataFileError(f'{self.fn_pose} must hold a dict id -> list of [x, y], got {type(poses).__name__}')
        ids = {i for pair in pairs for i in pair}
        missing = sorted(ids.difference(poses))
        if missing:
            raise DataFileError(f'{len(missing)} id(s) of split {self.split!r} in {self.fn_split} are absent from the '
                                f'pose file {self.fn_pose}, e.g. {missing[:5]}')
        return poses

    # ----------------------------------------------------------------------------------------------
    # Length

    def __len__(self) -> int:
        return len(self.pairs)

    def set_len(self, n: int) -> None:
        """Use the first ``n`` pairs (``n > 0``, at most the split size) or, for ``n <= 0``, all of them."""
        self.pairs = self.pairs_all[:n] if n > 0 else self.pairs_all

    # ----------------------------------------------------------------------------------------------
    # File readers (lazy validation; every error names the file)

    def _read_bytes(self, path: Path, what: str) -> np.ndarray:
        try:
            return np.frombuffer(path.read_bytes(), dtype=np.uint8)  # read-only; np.fromfile is 3x slower
        except FileNotFoundError:
            raise FileNotFoundError(f'{what} file {path} not found (dataset {self.root}); {_source_hint(self.opt)}'
                                    ) from None
        except OSError as e:
            raise DataFileError(f'cannot read {what} file {path}: {e}') from e

    def _check_size(self, path: Path, arr: np.ndarray, what: str) -> None:
        if arr.shape[:2] != self.image_size:
            raise DataFileError(f'{what} {path} is {arr.shape[0]}x{arr.shape[1]} (HxW) but opt.image_size is '
                                f'{self.image_size[0]}x{self.image_size[1]}; images are never resized, set '
                                f'--image_size to the size on disk')

    def image_path(self, img_id: str) -> Path:
        """Where the image of ``img_id`` is: ``<data_root>/<img_dir>/<id>.jpg``."""
        return self.img_dir / f'{img_id}.jpg'

    def read_image(self, img_id: str, contiguous: bool = False) -> np.ndarray:
        """``Img/img/<id>.jpg`` -> ``float32 [H, W, 3]`` RGB in [-1, 1] (OpenCV BGR -> RGB, /255, (x-0.5)/0.5).

        By default the array is a view of channel-first memory, so :func:`to_chw` passes it on without a
        copy; ``contiguous=True`` gives a C-contiguous array instead, which OpenCV warps read without a copy.
        """
        path = self.image_path(img_id)
        img = decode_image_file(path, self._read_bytes(path, 'image'), cv2.IMREAD_COLOR, 'image')
        self._check_size(path, img, 'image')
        if contiguous:
            return cv2.LUT(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), _LEVEL_TO_UNIT)
        rgb = np.empty((3,) + img.shape[:2], dtype=np.float32)
        for channel, plane in enumerate(reversed(cv2.split(img))):  # BGR -> RGB
            cv2.LUT(plane, _LEVEL_TO_UNIT, dst=rgb[channel])
        return rgb.transpose(1, 2, 0)

    def read_seg(self, img_id: str) -> np.ndarray:
        """``Img/seg/<id>.bmp`` -> ``uint8 [H, W]`` labels, normally in ``[0, seg_nc)``.

        Labels ``>= seg_nc`` are kept, as in the original (their one-hot rows are all zero): one warning per file
        gives the file and the pixel count, or, with ``strict_seg``, :class:`DataFileError` is raised.
        """
        path = self.seg_dir / f'{img_id}.bmp'
        seg = decode_image_file(path, self._read_bytes(path, 'segmentation'), cv2.IMREAD_GRAYSCALE, 'segmentation')
        self._check_size(path, seg, 'segmentation')
        if seg.max() >= self.opt.seg_nc:
            outside = seg >= self.opt.seg_nc
            message = (f'{path}: {int(outside.sum())} pixel(s) with labels {np.unique(seg[outside]).tolist()[:10]} '
                       f'outside 0..{self.opt.seg_nc - 1} (opt.seg_nc)')
            if self.strict_seg:
                raise DataFileError(f'{message}; raised because of --strict_seg 1 (with 0 they get all-zero one-hot '
                                    f'rows, as in the original)')
            if path not in self._seg_warned:
                self._seg_warned.add(path)
                warnings.warn(f'{message}: their one-hot rows are all zero, as in the original (--strict_seg 1 '
                              f'makes this an error)', stacklevel=2)
        return seg

    def read_joints(self, img_id: str) -> np.ndarray:
        """Pose-file entry -> ``float32 [joint_nc, 2]`` of (x, y); -1 marks a missing joint."""
        entry = self.pose_label[img_id]
        try:
            kps = np.asarray(entry, dtype=np.float32)
        except (ValueError, TypeError) as e:
            raise DataFileError(f'{self.fn_pose}: pose entry of {img_id!r} is not a numeric [{self.opt.joint_nc}, 2] '
                                f'array ({e})') from e
        if kps.shape != (self.opt.joint_nc, 2):
            raise DataFileError(f'{self.fn_pose}: pose entry of {img_id!r} has shape {kps.shape}, expected '
                                f'({self.opt.joint_nc}, 2) (opt.joint_nc joints of (x, y))')
        finite = np.isfinite(kps).all(axis=1)
        if not finite.all():
            raise DataFileError(f'{self.fn_pose}: pose entry of {img_id!r} holds NaN or inf at joint(s) '
                                f'{np.flatnonzero(~finite).tolist()}; missing joints are [-1, -1]')
        return kps

    def read_corr(self, id_1: str, id_2: str) -> tuple[np.ndarray, np.ndarray]:
        """``<corr_dir>/<id_2>_<id_1>.corr`` -> (corr ``float32 [H, W, 2]``, vis ``uint8 [H, W, 1]``).

        With ``opt.allow_corr_fallback == 1`` an unreadable file (missing, truncated, malformed, wrong
        size) becomes zero correspondence and visibility 2 (the original's behaviour), counted in
        ``corr_fallback_count`` and reported with a warning naming the file; otherwise it raises
        :class:`CorrFileError`.
        """
        path = self.corr_dir / f'{id_2}_{id_1}.corr'
        try:
            corr, vis = read_corr(path)
            if corr.shape[:2] != self.image_size:
                raise CorrFileError(f'{path}: correspondence is {corr.shape[0]}x{corr.shape[1]} (HxW) but '
                                    f'opt.image_size is {self.image_size[0]}x{self.image_size[1]}')
        except CorrFileError as e:
            if not self.opt.allow_corr_fallback:
                raise CorrFileError(f'{e} (pair id_1={id_1!r} -> id_2={id_2!r} of split {self.split!r})') from e
            self.corr_fallback_count += 1
            warnings.warn(f'{e}; using zero correspondence and visibility 2 instead (allow_corr_fallback=1, '
                          f'{self.corr_fallback_count} substitution(s) so far in this process)', stacklevel=2)
            h, w = self.image_size
            return np.zeros((h, w, 2), np.float32), np.full((h, w, 1), 2, np.uint8)
        return corr, vis

    # ----------------------------------------------------------------------------------------------
    # Item assembly

    def heatmaps(self, kps: np.ndarray, width: int, height: int) -> np.ndarray:
        """Keypoints -> ``float32 [joint_nc, H, W]`` heatmaps."""
        return kp_to_map((width, height), kps, mode=self.opt.joint_mode, radius=self.opt.joint_radius,
                         channels_first=True)

    def make_item(self, id_1: str, id_2: str, img_1: np.ndarray, img_2: np.ndarray, joint_c_1: np.ndarray,
                  joint_c_2: np.ndarray, seg_1: np.ndarray, seg_2: np.ndarray, flow: np.ndarray,
                  vis: np.ndarray, heatmap_size: tuple[int, int]) -> dict[str, Any]:
        """Assemble the item dict from ``[H, W, C]`` numpy arrays (``heatmap_size = (W, H)``)."""
        w, h = heatmap_size
        item = {
            'img_1': to_chw(img_1),
            'img_2': to_chw(img_2),
            'joint_c_1': torch.from_numpy(np.ascontiguousarray(joint_c_1, dtype=np.float32)),
            'joint_c_2': torch.from_numpy(np.ascontiguousarray(joint_c_2, dtype=np.float32)),
            'seg_label_1': to_chw(seg_1),
            'seg_label_2': to_chw(seg_2),
            'flow_2to1': to_chw(flow),
            'vis_2': to_chw(vis),
            'id_1': id_1,
            'id_2': id_2,
        }
        if not self.maps_on_device:
            # Drawn from the float32 keypoints of the item (read_joints and the augmentations keep float32), so
            # draw_device_maps, which sees the same keypoints, gives the same maps.
            item['joint_1'] = torch.from_numpy(self.heatmaps(joint_c_1, w, h))
            item['joint_2'] = torch.from_numpy(self.heatmaps(joint_c_2, w, h))
            item['seg_1'] = torch.from_numpy(seg_label_to_map(seg_1, self.opt.seg_nc, channels_first=True))
            item['seg_2'] = torch.from_numpy(seg_label_to_map(seg_2, self.opt.seg_nc, channels_first=True))
        return item

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, pairs={len(self)}, '
                f'image_size={self.image_size})')
