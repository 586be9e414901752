"""Check a whole dataset folder before training: every file of every split is read once, all problems reported.

``check_dataset(root, dataset_name, layout)`` decodes every image and segmentation and reads every correspondence
file of every pair of every split, checks keypoints and correspondences for NaN/inf and range, and checks that
every file a pair needs exists. Nothing stops at the first problem: the :class:`DatasetReport` groups the problems
by kind, counts them and keeps the first few examples of each.

Errors are what the datasets would refuse (missing, empty, truncated, undecodable or wrongly sized files,
malformed or non-finite correspondences, NaN keypoints, ids absent from the pose file, unreadable split or label
files). Warnings are what they accept but may be a sign of bad data: segmentation labels outside the classes
(an error with ``strict_seg``, as in the datasets), keypoints outside the image, visible correspondences pointing
outside the source image.

The readers are the datasets' own (``decode_image_file``, ``read_corr``, the label reader), so a dataset that
passes loads in training. ``num_workers > 0`` reads the files in a process pool.

:func:`check_dataset_for_options` checks the dataset of a training run (its split and pose files, image size and
class counts); :func:`require_clean_dataset` prints that report and raises :class:`DatasetCheckError` when it
holds an error (the training scripts' ``--check_data 1``). ``scripts/check_dataset.py`` checks both stages' files.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from data.base_dataset import DATASET_SOURCES, DataFileError, decode_image_file
from data.synthetic import is_complete
from util.flow_util import CorrFileError, read_corr
from util.io import load_json
from util.labels import load_label_file

PathLike = str | os.PathLike

# Visible correspondences further than this outside the source image are reported (pixels).
CORR_RANGE_MARGIN = 1.0
_CHUNK = 64  # files per task of the process pool


@dataclass(frozen=True)
class DatasetLayout:
    """Where a dataset's files are, relative to its root (the option presets give these).

    ``splits``: ``(split file, pose file)`` pairs; every split key of every split file is checked with its pose
    file. ``image_size``: ``(H, W)`` every image, segmentation and correspondence must have; None takes the size
    of the first image.
    """

    img_dir: str
    seg_dir: str
    corr_dir: str
    splits: tuple[tuple[str, str], ...]
    image_size: tuple[int, int] | None = None


@dataclass
class DatasetReport:
    """Problems found by :func:`check_dataset`, grouped by category (``'<what>: <kind>'``)."""

    root: Path
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    warning_categories: set[str] = field(default_factory=set)
    checked: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    max_examples: int = 5

    def add(self, category: str, message: str, warning: bool = False, count: int = 1) -> None:
        self.counts[category] = self.counts.get(category, 0) + count
        examples = self.examples.setdefault(category, [])
        if len(examples) < self.max_examples:
            examples.append(message)
        if warning:
            self.warning_categories.add(category)

    @property
    def errors(self) -> dict[str, int]:
        return {c: n for c, n in self.counts.items() if c not in self.warning_categories}

    @property
    def warnings(self) -> dict[str, int]:
        return {c: n for c, n in self.counts.items() if c in self.warning_categories}

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def format(self) -> str:
        """The report as text: what was checked, then errors and warnings by category with examples."""
        checked = ', '.join(f'{n} {what}' for what, n in self.checked.items())
        lines = [f'checked {self.root}: {checked} in {self.seconds:.1f} s']
        for title, group in (('ERROR', self.errors), ('warning', self.warnings)):
            for category, n in sorted(group.items()):
                lines.append(f'{title}: {category}: {n}')
                examples = self.examples[category]
                lines += [f'    {e}' for e in examples]
                if n > len(examples):
                    lines.append(f'    ... and {n - len(examples)} more')
        n_err, n_warn = sum(self.errors.values()), sum(self.warnings.values())
        lines.append('dataset OK' + (f' ({n_warn} warning(s))' if n_warn else '') if self.ok else
                     f'{n_err} error(s) in {len(self.errors)} categories, {n_warn} warning(s)')
        return '\n'.join(lines)


# --------------------------------------------------------------------------------------------------
# Per-file checks (run in the pool workers); each returns (category, message, is_warning) tuples
# --------------------------------------------------------------------------------------------------
Problem = tuple[str, str, bool]


def _read(path: Path) -> np.ndarray | None:
    try:
        return np.frombuffer(path.read_bytes(), dtype=np.uint8)
    except FileNotFoundError:
        return None


def _check_image_files(what: str, paths: Sequence[Path], image_size: tuple[int, int], seg_nc: int,
                       strict_seg: bool) -> list[Problem]:
    problems: list[Problem] = []
    flags = cv2.IMREAD_COLOR if what == 'image' else cv2.IMREAD_GRAYSCALE
    for path in paths:
        try:
            data = _read(path)
            if data is None:
                problems.append((f'{what}: missing', f'{path} not found', False))
                continue
            arr = decode_image_file(path, data, flags, what)
        except DataFileError as e:
            problems.append((f'{what}: {e.kind}', str(e), False))
            continue
        except OSError as e:
            problems.append((f'{what}: unreadable', f'{path}: {e}', False))
            continue
        if arr.shape[:2] != image_size:
            problems.append((f'{what}: wrong size', f'{path} is {arr.shape[0]}x{arr.shape[1]} (HxW), expected '
                                                     f'{image_size[0]}x{image_size[1]}', False))
        if what == 'segmentation' and arr.max() >= seg_nc:
            outside = arr >= seg_nc
            problems.append((f'segmentation: labels outside 0..{seg_nc - 1}',
                             f'{path}: {int(outside.sum())} pixel(s) with labels '
                             f'{np.unique(arr[outside]).tolist()[:10]}', not strict_seg))
    return problems


def _check_corr_files(paths: Sequence[Path], image_size: tuple[int, int], corr_fallback: bool) -> list[Problem]:
    problems: list[Problem] = []
    h, w = image_size
    for path in paths:
        try:
            corr, vis = read_corr(path)
        except CorrFileError as e:
            problems.append((f'correspondence: {e.kind}', str(e), corr_fallback))
            continue
        if corr.shape[:2] != image_size:
            problems.append(('correspondence: wrong size', f'{path} is {corr.shape[0]}x{corr.shape[1]} (HxW), '
                                                           f'expected {h}x{w}', corr_fallback))
            continue
        visible = vis[:, :, 0] == 0
        u, v = corr[:, :, 0][visible], corr[:, :, 1][visible]
        m = CORR_RANGE_MARGIN
        outside = (u < -m) | (u > w - 1 + m) | (v < -m) | (v > h - 1 + m)
        if outside.any():
            problems.append(('correspondence: visible points outside the source image',
                             f'{path}: {int(outside.sum())} of {int(visible.sum())} visible pixel(s) map outside '
                             f'[0, {w - 1}] x [0, {h - 1}] (+-{m:g} px)', True))
    return problems


def _run_task(task: tuple) -> list[Problem]:
    kind, paths, image_size, seg_nc, strict_seg, corr_fallback = task
    if kind == 'correspondence':
        return _check_corr_files(paths, image_size, corr_fallback)
    return _check_image_files(kind, paths, image_size, seg_nc, strict_seg)


# --------------------------------------------------------------------------------------------------
# Split and label files
# --------------------------------------------------------------------------------------------------
def _load_pairs(report: DatasetReport, fn_split: Path) -> dict[str, list[tuple[str, str]]]:
    try:
        data = load_json(fn_split)
    except FileNotFoundError:
        report.add('split file: missing', f'{fn_split} not found')
        return {}
    except (ValueError, UnicodeDecodeError) as e:
        report.add('split file: unreadable', str(e))
        return {}
    if not isinstance(data, dict):
        report.add('split file: malformed', f'{fn_split} must hold an object split -> [[id_1, id_2], ...], got '
                                            f'{type(data).__name__}')
        return {}
    splits: dict[str, list[tuple[str, str]]] = {}
    for split, entries in data.items():
        pairs = []
        for k, pair in enumerate(entries if isinstance(entries, list) else [entries]):
            if isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(s, str) for s in pair):
                pairs.append((pair[0], pair[1]))
            else:
                report.add('split file: malformed pair', f'{fn_split}: entry {k} of split {split!r} must be '
                                                         f'[id_1, id_2] (strings), got {pair!r}')
        splits[split] = pairs
    return splits


def _check_poses(report: DatasetReport, fn_pose: Path, ids: set[str], image_size: tuple[int, int] | None,
                 joint_nc: int) -> None:
    try:
        poses = load_label_file(fn_pose)
    except FileNotFoundError:
        report.add('pose file: missing', f'{fn_pose} not found')
        return
    except (ValueError, UnicodeDecodeError) as e:  # UnsafePickleError included
        report.add('pose file: unreadable', str(e))
        return
    if not isinstance(poses, dict):
        report.add('pose file: malformed', f'{fn_pose} must hold a dict id -> {joint_nc} [x, y], got '
                                           f'{type(poses).__name__}')
        return
    absent = sorted(ids.difference(poses))
    for img_id in absent:
        report.add('pairs: id absent from the pose file', f'{img_id!r} is in a split but not in {fn_pose}')
    keys, tables = [], []
    for key, entry in poses.items():
        try:
            with np.errstate(over='ignore'):  # float32 as the datasets read them: 1e39 becomes inf there too
                kps = np.asarray(entry, dtype=np.float32)
        except (TypeError, ValueError):
            kps = None
        if kps is None or kps.shape != (joint_nc, 2):
            shape = 'not numeric' if kps is None else f'shape {kps.shape}'
            report.add('keypoints: wrong shape', f'{fn_pose}: {key!r} is {shape}, expected ({joint_nc}, 2)')
            continue
        keys.append(key)
        tables.append(kps)
    if not tables:
        return
    kps = np.stack(tables)  # [N, K, 2]
    finite = np.isfinite(kps).all(axis=2)
    for n in np.flatnonzero(~finite.all(axis=1)):
        report.add('keypoints: NaN or inf', f'{fn_pose}: {keys[n]!r}, joint(s) {np.flatnonzero(~finite[n]).tolist()}')
    if image_size is None:
        return
    h, w = image_size
    x, y = kps[:, :, 0], kps[:, :, 1]
    missing = (x == -1) | (y == -1)  # the datasets' convention for a joint that was not detected
    outside = finite & ~missing & ((x < 0) | (x > w) | (y < 0) | (y > h))
    for n in np.flatnonzero(outside.any(axis=1)):
        report.add('keypoints: outside the image', f'{fn_pose}: {keys[n]!r}, joint(s) '
                   f'{np.flatnonzero(outside[n]).tolist()} outside [0, {w}] x [0, {h}] (missing joints are -1)',
                   warning=True)


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------
def _chunks(kind: str, paths: Sequence[Path], *settings: Any) -> Iterable[tuple]:
    for start in range(0, len(paths), _CHUNK):
        yield kind, paths[start:start + _CHUNK], *settings


def _first_image_size(paths: Sequence[Path]) -> tuple[int, int] | None:
    for path in paths:
        data = _read(path) if path.is_file() else None
        if data is not None and data.size:
            try:
                img = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
            except cv2.error:
                img = None
            if img is not None:
                return img.shape[0], img.shape[1]
    return None


def check_dataset(root: PathLike, dataset_name: str, layout: DatasetLayout, *, seg_nc: int = 7,
                  joint_nc: int = 18, strict_seg: bool = False, allow_corr_fallback: bool = False,
                  num_workers: int = 0, max_examples: int = 5) -> DatasetReport:
    """Check every file of every split of the dataset at ``root``; returns the report (never raises on bad data).

    Args:
        dataset_name: names the download command in the report when the root folder is missing.
        layout: folders, split/pose files and image size (:class:`DatasetLayout`).
        strict_seg: segmentation labels ``>= seg_nc`` are errors (else warnings), as the datasets' option.
        allow_corr_fallback: unreadable or wrongly sized correspondence files are warnings (the datasets then
            use zero flow and visibility 2), else errors.
        num_workers: processes reading files in parallel (0: in this process).
        max_examples: examples kept per category.
    """
    start = time.perf_counter()
    root = Path(root)
    report = DatasetReport(root=root, max_examples=max_examples)
    if not root.is_dir():
        hint = DATASET_SOURCES.get(dataset_name)
        report.add('dataset: missing', f'{root} is not a folder' + (f'; get it with `{hint}`' if hint else ''))
        report.seconds = time.perf_counter() - start
        return report
    if dataset_name == 'demo' and not is_complete(root):
        report.add('dataset: incomplete demo', f'{root} has no valid manifest.json (an interrupted generation?); '
                                               f'regenerate it with `python scripts/make_demo_dataset.py --out '
                                               f'{root} --force`')

    pairs: set[tuple[str, str]] = set()
    n_pairs = 0
    pose_ids: dict[Path, set[str]] = {}
    for fn_split, fn_pose in layout.splits:
        split_pairs = _load_pairs(report, root / fn_split)
        ids = pose_ids.setdefault(root / fn_pose, set())
        for entries in split_pairs.values():
            n_pairs += len(entries)
            pairs.update(entries)
            ids.update(i for pair in entries for i in pair)
    ids = sorted({i for pair in pairs for i in pair})
    img_paths = [root / layout.img_dir / f'{i}.jpg' for i in ids]
    seg_paths = [root / layout.seg_dir / f'{i}.bmp' for i in ids]
    corr_paths = [root / layout.corr_dir / f'{id_2}_{id_1}.corr' for id_1, id_2 in sorted(pairs)]
    image_size = tuple(layout.image_size) if layout.image_size is not None else _first_image_size(img_paths)
    for fn_pose, referenced in pose_ids.items():
        _check_poses(report, fn_pose, referenced, image_size, joint_nc)

    if image_size is not None:
        settings = (image_size, seg_nc, strict_seg, allow_corr_fallback)
        tasks = [*_chunks('image', img_paths, *settings), *_chunks('segmentation', seg_paths, *settings),
                 *_chunks('correspondence', corr_paths, *settings)]
        if num_workers > 0 and len(tasks) > 1:
            with ProcessPoolExecutor(max_workers=num_workers) as pool:
                results: Iterable[list[Problem]] = list(pool.map(_run_task, tasks))
        else:
            results = map(_run_task, tasks)
        for problems in results:
            for category, message, warning in problems:
                report.add(category, message, warning)
    elif img_paths:
        report.add('image: cannot be decoded', f'no image under {root / layout.img_dir} could be decoded to learn '
                                               f'the image size')
    report.checked = {'split file(s)': len(layout.splits), 'pairs': n_pairs, 'images': len(img_paths),
                      'segmentations': len(seg_paths), 'correspondence files': len(corr_paths)}
    report.seconds = time.perf_counter() - start
    return report



# --------------------------------------------------------------------------------------------------
# The dataset of a training run
# --------------------------------------------------------------------------------------------------
class DatasetCheckError(ValueError):
    """The dataset check found errors; the message names the folder and the number of problems."""

    def __init__(self, message: str, report: DatasetReport) -> None:
        super().__init__(message)
        self.report = report


def check_dataset_for_options(opt: Any, num_workers: int | None = None) -> DatasetReport:
    """:func:`check_dataset` on the dataset ``opt`` trains on: its ``fn_split`` with its ``fn_pose``, its folders,
    ``image_size``, ``seg_nc``, ``joint_nc``, ``strict_seg`` and ``allow_corr_fallback``.

    ``num_workers``: reader processes (default ``opt.num_workers``).
    """
    layout = DatasetLayout(img_dir=opt.img_dir, seg_dir=opt.seg_dir, corr_dir=opt.corr_dir,
                           splits=((opt.fn_split, opt.fn_pose),),
                           image_size=(int(opt.image_size[0]), int(opt.image_size[1])))
    return check_dataset(opt.data_root, opt.dataset_name, layout, seg_nc=opt.seg_nc, joint_nc=opt.joint_nc,
                         strict_seg=bool(opt.strict_seg), allow_corr_fallback=bool(opt.allow_corr_fallback),
                         num_workers=opt.num_workers if num_workers is None else num_workers)


def require_clean_dataset(opt: Any, num_workers: int | None = None) -> DatasetReport:
    """Check the dataset of ``opt`` (:func:`check_dataset_for_options`), print the report and return it.

    Raises:
        DatasetCheckError: the report holds an error (warnings pass); the printed report lists every problem.
    """
    print(f'checking the dataset at {opt.data_root} (--check_data 1) ...', flush=True)
    report = check_dataset_for_options(opt, num_workers)
    print(report.format(), flush=True)
    if not report.ok:
        n_errors = sum(report.errors.values())
        raise DatasetCheckError(f'the dataset check of {opt.data_root} found {n_errors} error(s) in '
                                f'{len(report.errors)} categories (listed above); restore or regenerate those files '
                                f'and train again (`python scripts/check_dataset.py --dataset_name '
                                f'{opt.dataset_name} --data_root {opt.data_root}` checks the folder alone)', report)
    return report
