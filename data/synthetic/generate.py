"""Write a synthetic dataset in the DeepFashion on-disk layout and check it.

Layout under ``root`` (``--dataset_name demo``; see docs/architecture.md)::

    Img/img/<id>.jpg                 RGB, JPEG quality 95, 4:4:4 chroma
    Img/seg/<id>.bmp                 8-bit labels 0..6 (0 background, 1 head, 2 torso, 3-6 limbs)
    Label/pose_label.pkl             what a pose estimator sees: -1 out of frame, nose/eyes -1 on back views
    Label/pose_label_adapt.pkl       exact projected joints, -1 only out of frame
    Label/pair_split.json            train / test / test_small (pose transfer)
    Label/pair_split_clean.json      train / test (flow regression), identity-disjoint
    3d/hmr/corr/<id2>_<id1>.corr     exact correspondence + visibility of every listed pair
    manifest.json                    written last: generation parameters and counts

Everything is generated in a sibling folder ``.<name>.partial`` and renamed to ``root`` only after the
manifest is written, so an interrupted run never leaves a folder that looks complete. Identity ``i`` is
generated from its own seed ``SeedSequence(seed, spawn_key=(i,))``, so the bytes written do not depend on
the number of worker processes.

``background='studio'`` (default, DeepFashion-like) or ``'cluttered'`` (Market-like, the only style
before the option existed) changes only the background pixels: for one seed both styles have the same
people, poses, pairs, segmentation, keypoints and correspondence files.
"""
from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from data.synthetic.body import BACK_HIDDEN_JOINTS, Frame, Identity, build_frame, sample_identity, sample_pose
from data.synthetic.render import (BACKGROUND_STYLES, correspondence, render, sample_background,
                                   sample_studio_backdrop, sample_studio_background)
from data.synthetic.texture import sample_texture
from util.flow_util import write_corr
from util.io import load_json, save_json, save_pickle

MANIFEST_NAME = 'manifest.json'
# 2: ``config`` has ``background``. A format-1 manifest is read as ``background='cluttered'``: format 1 had
# no other style, and the cluttered style of format 2 writes the same bytes for the same parameters.
FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)
GENERATOR_NAME = 'data.synthetic'
IMG_DIR, SEG_DIR, CORR_DIR = 'Img/img', 'Img/seg', '3d/hmr/corr'
FN_POSE, FN_POSE_ADAPT = 'Label/pose_label.pkl', 'Label/pose_label_adapt.pkl'
FN_SPLIT, FN_SPLIT_CLEAN = 'Label/pair_split.json', 'Label/pair_split_clean.json'
_ID_RE = re.compile(r'^synthid(\d{8})_(\d{2})(front|back)$')
# spawn_key tail of an identity's studio-backdrop random stream (the main stream has spawn_key (identity,)).
_STUDIO_STREAM = 1


@dataclass(frozen=True)
class DemoConfig:
    """Generation parameters (all stored in the manifest).

    image_size: (H, W). Train identities come first, test identities after them (identity-disjoint
    splits). Every ordered pair of distinct images of a train identity is a train pair; each test
    identity contributes ``test_pairs_per_identity`` random ordered pairs (0: all of them).
    ``test_small`` is an evenly spaced subset of ``test``. ``p_back``: probability of a back view.
    ``background``: ``'studio'`` (plain light backdrop, one per identity, as DeepFashion's in-shop photos)
    or ``'cluttered'`` (a random scene per photo, as Market-1501).
    """

    seed: int = 0
    image_size: tuple[int, int] = (128, 64)
    n_train_identities: int = 100
    n_test_identities: int = 20
    images_per_identity: int = 6
    test_pairs_per_identity: int = 15
    n_test_small: int = 64
    p_back: float = 0.15
    jpeg_quality: int = 95
    background: str = 'studio'

    def __post_init__(self) -> None:
        object.__setattr__(self, 'image_size', tuple(int(v) for v in self.image_size))
        h, w = self.image_size if len(self.image_size) == 2 else (0, 0)
        checks = [
            (len(self.image_size) == 2 and h >= 32 and w >= 16,
             f'image_size must be (H, W) with H >= 32 and W >= 16, got {self.image_size}'),
            (self.n_train_identities >= 1, f'n_train_identities must be >= 1, got {self.n_train_identities}'),
            (self.n_test_identities >= 1, f'n_test_identities must be >= 1, got {self.n_test_identities}'),
            (self.images_per_identity >= 2,
             f'images_per_identity must be >= 2 (pairs need two images), got {self.images_per_identity}'),
            (self.test_pairs_per_identity >= 0,
             f'test_pairs_per_identity must be >= 0, got {self.test_pairs_per_identity}'),
            (self.n_test_small >= 1, f'n_test_small must be >= 1, got {self.n_test_small}'),
            (0.0 <= self.p_back <= 1.0, f'p_back must be in [0, 1], got {self.p_back}'),
            (1 <= self.jpeg_quality <= 100, f'jpeg_quality must be in [1, 100], got {self.jpeg_quality}'),
            (self.background in BACKGROUND_STYLES,
             f'background must be one of {list(BACKGROUND_STYLES)}, got {self.background!r}'),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f'DemoConfig: {msg}')

    @property
    def n_identities(self) -> int:
        return self.n_train_identities + self.n_test_identities

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d['image_size'] = list(self.image_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> 'DemoConfig':
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f'DemoConfig: unknown keys {unknown}; valid keys are {sorted(known)}')
        return cls(**d)


def image_id(identity: int, image: int, side: int) -> str:
    """DeepFashion-like id: contains ``id`` + 8 digits (an In-shop item number) and exactly one ``_``."""
    return f'synthid{identity:08d}_{image:02d}{"back" if side else "front"}'


def parse_image_id(img_id: str) -> tuple[int, int]:
    """``synthid00000012_03front`` -> (identity 12, image 3); ValueError naming the id otherwise."""
    m = _ID_RE.match(img_id)
    if m is None:
        raise ValueError(f'{img_id!r} is not a synthetic image id (expected synthid<8 digits>_<2 digits>front|back)')
    return int(m.group(1)), int(m.group(2))


@dataclass
class Scene:
    """One identity: the person, their frames (one per image), image ids and the selected ordered pairs."""

    ident: Identity
    frames: list[Frame]
    ids: list[str]
    pairs: list[tuple[int, int]]  # (source image, target image)


def make_scene(config: DemoConfig, index: int) -> Scene:
    """Deterministically sample identity ``index`` (same config + index -> same scene)."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(index,)))
    ident = sample_identity(rng, index)
    ident.texture = sample_texture(rng)
    studio = config.background == 'studio'
    if studio:
        studio_rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(index, _STUDIO_STREAM)))
        backdrop = sample_studio_backdrop(studio_rng)
    frames = []
    for _ in range(config.images_per_identity):
        pose = sample_pose(rng, ident, config.image_size, config.p_back)
        # The cluttered parameters are drawn in both styles so that the main stream, hence everything but
        # the background, is the same for one seed; the studio backdrop has its own stream.
        frame = build_frame(ident, pose, sample_background(rng))
        if studio:
            frame = replace(frame, background=sample_studio_background(studio_rng, backdrop, frame.joints,
                                                                       config.image_size))
        frames.append(frame)
    n = config.images_per_identity
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    is_test = index >= config.n_train_identities
    if is_test and 0 < config.test_pairs_per_identity < len(pairs):
        keep = np.sort(rng.choice(len(pairs), size=config.test_pairs_per_identity, replace=False))
        pairs = [pairs[k] for k in keep]
    ids = [image_id(index, j, f.side) for j, f in enumerate(frames)]
    return Scene(ident=ident, frames=frames, ids=ids, pairs=pairs)


def _joint_labels(joints: np.ndarray, side: int, image_size: tuple[int, int]) -> tuple[list, list]:
    """(estimator-like label, exact adapted label) as lists of 18 [x, y]; -1 marks a missing joint."""
    h, w = image_size
    adapt = np.asarray(joints, dtype=np.float64).copy()
    out = (adapt[:, 0] < 0) | (adapt[:, 0] >= w) | (adapt[:, 1] < 0) | (adapt[:, 1] >= h)
    adapt[out] = -1
    # A detector reports pixel positions and cannot see the face from behind.
    label = np.round(np.asarray(joints, dtype=np.float64))
    out = (label[:, 0] < 0) | (label[:, 0] > w - 1) | (label[:, 1] < 0) | (label[:, 1] > h - 1)
    label[out] = -1
    if side:
        label[list(BACK_HIDDEN_JOINTS)] = -1
    return label.tolist(), adapt.tolist()


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [H, W, 3] in [0, 1] -> uint8 (rounded)."""
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def _jpeg_params(quality: int) -> list[int]:
    # Full-resolution chroma (4:4:4): with the default 4:2:0 the saturated synthetic colours lose
    # 4 grey levels on average instead of 1.5, which would dominate the warp self-check.
    return [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]


def _generate_identity(args: tuple[dict, int, str]) -> dict:
    """Worker: render one identity's images, write images/segs/corr files, return labels and pairs."""
    config_dict, index, root = args
    config = DemoConfig.from_dict(config_dict)
    root = Path(root)
    scene = make_scene(config, index)
    renders = [render(scene.ident, f, config.image_size) for f in scene.frames]
    result = dict(index=index, ids=scene.ids, label={}, adapt={}, pairs=[], vis_counts=np.zeros(3, np.int64))
    for img_id, frame, r in zip(scene.ids, scene.frames, renders):
        bgr = to_uint8(r['image'])[:, :, ::-1]
        if not cv2.imwrite(str(root / IMG_DIR / f'{img_id}.jpg'), bgr, _jpeg_params(config.jpeg_quality)):
            raise OSError(f'cannot write {root / IMG_DIR / f"{img_id}.jpg"}')
        if not cv2.imwrite(str(root / SEG_DIR / f'{img_id}.bmp'), r['seg']):
            raise OSError(f'cannot write {root / SEG_DIR / f"{img_id}.bmp"}')
        result['label'][img_id], result['adapt'][img_id] = _joint_labels(frame.joints, frame.side, config.image_size)
    for i, j in scene.pairs:
        corr, vis = correspondence(scene.ident, renders[j], scene.frames[i], config.image_size)
        write_corr(root / CORR_DIR / f'{scene.ids[j]}_{scene.ids[i]}.corr', corr, vis)
        result['pairs'].append([scene.ids[i], scene.ids[j]])
        result['vis_counts'] += np.bincount(vis.ravel(), minlength=3)
    return result


def read_manifest(root: str | os.PathLike) -> dict:
    """The manifest of a complete generated dataset; FileNotFoundError/ValueError saying how to regenerate."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f'{path} not found: {root} is not a complete synthetic dataset (generation was '
                                f'interrupted or never run); run '
                                f'`python scripts/make_demo_dataset.py --out {root} --force`')
    manifest = load_json(path)
    if manifest.get('generator') != GENERATOR_NAME or manifest.get('format_version') not in READABLE_FORMAT_VERSIONS:
        raise ValueError(f'{path} was not written by {GENERATOR_NAME} format {list(READABLE_FORMAT_VERSIONS)} '
                         f'(generator={manifest.get("generator")!r}, '
                         f'format_version={manifest.get("format_version")!r}); regenerate it with '
                         f'`python scripts/make_demo_dataset.py --out {root} --force`')
    if manifest['format_version'] == 1:
        manifest['config'] = {**manifest['config'], 'background': 'cluttered'}
    return manifest


def is_complete(root: str | os.PathLike, config: DemoConfig | None = None) -> bool:
    """True if ``root`` holds a complete synthetic dataset readable by this generator version and, if
    ``config`` is given, generated with exactly these parameters (background style included)."""
    try:
        manifest = read_manifest(root)
    except (FileNotFoundError, ValueError):
        return False
    return config is None or manifest['config'] == config.to_dict()


def generate_demo_dataset(out: str | os.PathLike, config: DemoConfig = DemoConfig(), workers: int | None = None,
                          force: bool = False, verbose: bool = True) -> dict:
    """Generate the dataset into ``out`` (atomically: build ``.<name>.partial``, then rename).

    Args:
        out: destination folder. If it exists: complete with the same config -> nothing is done unless
            ``force``; otherwise a FileExistsError explains the situation unless ``force`` (which replaces it).
        workers: processes over identities (default ``min(2, cpu count)``; 1 = in this process).

    Returns:
        stats: ``n_images``, ``n_pairs`` (dict per split), ``n_corr``, ``seconds``, ``pairs_per_second``,
        ``vis_fractions`` (of all corr pixels: visible / hidden / background), ``skipped``.
    """
    out = Path(out)
    if out.exists() and not force:
        if not is_complete(out):
            raise FileExistsError(f'{out} exists but is not a complete synthetic dataset (no valid {MANIFEST_NAME}); '
                                  f'delete it or pass --force to replace it')
        old = read_manifest(out)['config']
        if old != config.to_dict():
            raise FileExistsError(f'{out} was generated with different parameters {old}; pass --force to '
                                  f'regenerate it with {config.to_dict()}')
        if verbose:
            print(f'{out} is already complete (same parameters); nothing to do')
        return dict(skipped=True, **read_manifest(out)['counts'])
    start = time.perf_counter()
    partial = out.parent / f'.{out.name}.partial'
    if partial.exists():
        shutil.rmtree(partial)
    for sub in (IMG_DIR, SEG_DIR, CORR_DIR, 'Label'):
        (partial / sub).mkdir(parents=True)
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f'workers must be >= 1, got {workers}')
    tasks = [(config.to_dict(), i, str(partial)) for i in range(config.n_identities)]
    results = []
    if workers == 1:
        for t in tasks:
            results.append(_generate_identity(t))
            _progress(verbose, len(results), len(tasks), start)
    else:
        # fork (where available) needs no `if __name__ == '__main__'` guard in the caller; the workers use
        # only numpy and OpenCV, never the parent's torch thread pools.
        method = 'fork' if 'fork' in multiprocessing.get_all_start_methods() else 'spawn'
        with multiprocessing.get_context(method).Pool(workers) as pool:
            for r in pool.imap(_generate_identity, tasks, chunksize=2):
                results.append(r)
                _progress(verbose, len(results), len(tasks), start)
    label, adapt, train, test = {}, {}, [], []
    vis_counts = np.zeros(3, np.int64)
    for r in results:  # identity order, independent of scheduling
        label.update(r['label'])
        adapt.update(r['adapt'])
        (train if r['index'] < config.n_train_identities else test).extend(r['pairs'])
        vis_counts += r['vis_counts']
    n_small = min(config.n_test_small, len(test))
    small_idx = np.unique(np.round(np.linspace(0, len(test) - 1, n_small)).astype(int))
    test_small = [test[k] for k in small_idx]
    save_pickle(label, partial / FN_POSE)
    save_pickle(adapt, partial / FN_POSE_ADAPT)
    save_json({'train': train, 'test': test, 'test_small': test_small}, partial / FN_SPLIT)
    save_json({'train': train, 'test': test}, partial / FN_SPLIT_CLEAN)
    counts = dict(n_identities=config.n_identities, n_images=len(label), n_corr=len(train) + len(test),
                  n_pairs={'train': len(train), 'test': len(test), 'test_small': len(test_small)},
                  vis_fractions=(vis_counts / max(vis_counts.sum(), 1)).round(6).tolist())
    save_json(dict(generator=GENERATOR_NAME, format_version=FORMAT_VERSION, config=config.to_dict(), counts=counts,
                   layout=dict(img_dir=IMG_DIR, seg_dir=SEG_DIR, corr_dir=CORR_DIR, fn_pose=FN_POSE,
                               fn_pose_adapt=FN_POSE_ADAPT, fn_split=FN_SPLIT, fn_split_clean=FN_SPLIT_CLEAN)),
              partial / MANIFEST_NAME, indent=1)
    if out.exists():
        shutil.rmtree(out)
    os.replace(partial, out)
    seconds = time.perf_counter() - start
    stats = dict(skipped=False, seconds=seconds, pairs_per_second=counts['n_corr'] / seconds, **counts)
    if verbose:
        print(f'\nwrote {out}: {counts["n_images"]} images, {counts["n_corr"]} pairs {counts["n_pairs"]} in '
              f'{seconds:.1f} s ({stats["pairs_per_second"]:.0f} pairs/s, {workers} worker(s))')
    return stats


def _progress(verbose: bool, done: int, total: int, start: float) -> None:
    if verbose and (done == total or done % 10 == 0):
        print(f'\r  identities {done}/{total} ({time.perf_counter() - start:.1f} s)', end='', flush=True)
