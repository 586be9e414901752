"""What the page offers: the pose-transfer models under a checkpoints folder, and the test images and poses of the
dataset each model was trained on.

A *model* is an experiment folder holding a ``train_opt.json`` of a pose-transfer experiment
(``dataset_type: pose_transfer``); its weights (``<epoch>_net_netG.pth``) may be missing, which the page reports when
the model is used. Its *dataset* is the ``data_root`` of that ``train_opt.json`` (a relative path is taken from the
current folder, then from the checkpoints folder's parent), read in the layout of docs/architecture.md: the test
split's image ids from ``Label/pair_split.json`` and their keypoints from ``Label/pose_label.pkl`` (or its
converted twin, see :mod:`util.labels`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.pipeline import available_epochs
from util.io import load_json
from util.keypoints import DEFAULT_MIN_JOINTS, KeypointError, check_keypoints
from util.labels import load_label_file

PathLike = str | os.PathLike

# At most this many test images / poses are offered in a gallery.
GALLERY_SIZE = 24


@dataclass(frozen=True)
class ModelEntry:
    """One pose-transfer experiment folder.

    path: the folder. name: its name (``PoseTransfer_demo_5``). dataset_name: ``demo``, ``deepfashion``, ...
    image_size: ``(H, W)`` the model takes. data_root: the dataset it was trained on (as written in its options).
    epochs: labels of its generator weights (``best``, ``latest``, ``3``...), empty when it has none.
    img_dir, fn_split, fn_pose: the dataset's image folder, split file and pose-label file, relative to data_root.
    """

    path: Path
    name: str
    dataset_name: str
    image_size: tuple[int, int]
    data_root: str
    epochs: tuple[str, ...]
    img_dir: str = 'Img/img'
    fn_split: str = 'Label/pair_split.json'
    fn_pose: str = 'Label/pose_label.pkl'

    @property
    def label(self) -> str:
        """What the drop-down shows: name, dataset and image size (and a note when it has no weights)."""
        height, width = self.image_size
        note = '' if self.epochs else ', no weights'
        return f'{self.name} ({self.dataset_name}, {height}x{width}{note})'


def read_model_entry(folder: PathLike) -> ModelEntry | None:
    """The :class:`ModelEntry` of ``folder``, or None when it is no pose-transfer experiment folder."""
    folder = Path(folder)
    opt_file = folder / 'train_opt.json'
    if not opt_file.is_file():
        return None
    try:
        opt = load_json(opt_file)
    except (ValueError, UnicodeDecodeError, OSError):
        return None
    if not isinstance(opt, dict) or opt.get('dataset_type') != 'pose_transfer':
        return None
    size = opt.get('image_size')
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        return None
    return ModelEntry(path=folder, name=folder.name, dataset_name=str(opt.get('dataset_name', '?')),
                      image_size=(size[0], size[1]), data_root=str(opt.get('data_root', '')),
                      epochs=tuple(available_epochs(folder)),
                      **{key: str(opt[key]) for key in ('img_dir', 'fn_split', 'fn_pose') if opt.get(key)})


def list_models(checkpoints_dir: PathLike) -> list[ModelEntry]:
    """The pose-transfer experiment folders directly under ``checkpoints_dir``, sorted by name (empty when the
    folder does not exist)."""
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return []
    entries = (read_model_entry(p) for p in sorted(root.iterdir()) if p.is_dir())
    return [e for e in entries if e is not None]


def resolve_data_root(entry: ModelEntry, checkpoints_dir: PathLike) -> Path | None:
    """The model's dataset folder, or None when it is not on this machine."""
    if not entry.data_root:
        return None
    root = Path(entry.data_root)
    candidates = [root] if root.is_absolute() else [root, Path(checkpoints_dir).resolve().parent / root]
    return next((c for c in candidates if (c / entry.fn_split).is_file()), None)


@dataclass(frozen=True, eq=False)
class DatasetGallery:
    """Test images of a dataset and their poses, in the model frame (the dataset's images are at the model size).

    ids: image ids, in the order the test split first names them. images: the image files. poses:
    ``float32 [N, 18, 2]`` keypoints (-1 for missing joints). image_size: ``(H, W)``.
    """

    root: Path
    ids: tuple[str, ...]
    images: tuple[Path, ...]
    poses: np.ndarray
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.ids)


def load_gallery(entry: ModelEntry, data_root: PathLike, *, limit: int = GALLERY_SIZE) -> DatasetGallery:
    """Up to ``limit`` images of the test split of ``entry``'s dataset at ``data_root`` with their labelled poses.

    Images whose pose has fewer than the joints needed to frame a person are left out.

    Raises:
        FileNotFoundError: the split or pose file is missing. KeypointError / ValueError: unreadable files.
    """
    root = Path(data_root)
    image_size = entry.image_size
    split = load_json(root / entry.fn_split)
    if not isinstance(split, dict) or not isinstance(split.get('test'), list):
        raise ValueError(f'{root / entry.fn_split}: no "test" split')
    labels = load_label_file(root / entry.fn_pose)  # or its converted .json/.npz twin
    if not isinstance(labels, dict):
        raise KeypointError(f'{root / entry.fn_pose}: expected a dict id -> 18 [x, y]')
    ids: list[str] = []
    images: list[Path] = []
    poses: list[np.ndarray] = []
    seen: set[str] = set()
    for pair in split['test']:
        for img_id in pair:
            if len(ids) >= limit:
                break
            if img_id in seen or img_id not in labels:
                continue
            seen.add(img_id)
            path = root / entry.img_dir / f'{img_id}.jpg'
            if not path.is_file():
                continue
            try:
                pose = check_keypoints(labels[img_id], source=f'pose label {img_id}', image_size=image_size,
                                       min_joints=DEFAULT_MIN_JOINTS)
            except KeypointError:
                continue
            ids.append(img_id)
            images.append(path)
            poses.append(pose)
    poses_arr = np.stack(poses) if poses else np.zeros((0, 18, 2), np.float32)
    return DatasetGallery(root=root, ids=tuple(ids), images=tuple(images), poses=poses_arr, image_size=image_size)
