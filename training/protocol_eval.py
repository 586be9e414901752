"""Evaluate a folder of generated images under a named protocol, in one pass over the images.

The folder holds ``<id_1>_<id_2>.jpg`` (or ``.png``) files as written by ``scripts/test_pose_transfer.py
--save_output``. Each file is matched with a pair of the dataset's split file (or with ``<gt_dir>/<id_2>.*``);
generated image, target and, for the masked metrics, the target's keypoints are read once per pair, brought to
the protocol's size and uint8 rule (:mod:`metrics.image_prep`), and every requested metric consumes the same
decoded batch on the chosen device. Afterwards each metric reduces its per-image values by the protocol's rules
(batch means, dropped remainders, shuffles, splits). FID also needs a real set (the training images), read in a
second pass.

Nothing is averaged silently over a subset: every file that could not be used is listed with the reason (no pair
of the split, unreadable, wrong size, unreadable target), the result states how many images each metric used,
and a metric whose weights file is missing is reported as skipped with the file it needs (``strict=True`` turns
both into errors).
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import sys
import time
from argparse import Namespace
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from data.base_dataset import BaseDataset, DataFileError
from data.download import sha256sum
from metrics.attr_rec import load_attr_labels, mean_average_precision, match_label_key, recall_at_k, \
    resolve_attr_label_file
from metrics.averaging import average, n_used
from metrics.fashion_classifiers import eval_transform, find_classifier_checkpoint, load_classifier, predict_arrays
from metrics.fid import frechet_distance
from metrics.fid_torchvision import TorchvisionInceptionPool, frechet_distance_sqrtm
from metrics.image_folder import IMAGE_EXTS, list_images, resolve_image_folder, split_pair_name
from metrics.image_prep import ImageReadError, decode_image, resize_image, target_uint8, transform_keypoints
from metrics.inception_score import (TF_GRAPH_DIR, TF_GRAPH_SHA256, TorchFidelityInception, TFInceptionGraph,
                                     inception_score_from_probs, load_pose_labels)
from metrics.lpips_metric import build_lpips, lpips_arrays
from metrics.pose_mask import PoseMaskSettings, pose_masks
from metrics.protocols import MASKED_METRICS, METRIC_NAMES, Protocol, customize, get_protocol
from metrics.psnr import psnr_batch
from metrics.ssim import ssim_configurable
from options.pose_transfer_options import POSE_PRESETS
from util.io import save_json

MAX_LISTED_SKIPS = 200
# Display name and number format of each metric in the Markdown tables.
TABLE_COLUMNS = {
    'ssim': ('SSIM', '{:.4f}'), 'ssim_gauss': ('SSIM (Gaussian)', '{:.4f}'), 'mask_ssim': ('masked SSIM', '{:.4f}'),
    'psnr': ('PSNR', '{:.2f}'), 'lpips': ('LPIPS', '{:.4f}'), 'mask_lpips': ('mask-LPIPS', '{:.4f}'),
    'fid': ('FID', '{:.2f}'), 'is': ('IS', '{:.3f}'), 'masked_is': ('masked IS', '{:.3f}'),
    'fashion_is': ('FashionIS', '{:.3f}'), 'attr_rec': ('AttrRec-3/5/10/20', '{:.1f}'),
}
VERSIONED_PACKAGES = ('torch', 'torchvision', 'numpy', 'scipy', 'scikit-image', 'pillow', 'opencv-python',
                      'opencv-python-headless', 'lpips', 'torch-fidelity', 'tensorflow', 'tensorflow-cpu')


class EvaluationError(ValueError):
    """The evaluation cannot produce a trustworthy number; the message says what is wrong and what to do."""


class MissingWeights(FileNotFoundError):
    """A metric's weights (or label) file is missing; the metric is skipped unless strict."""


@dataclasses.dataclass
class WeightPaths:
    """Where the pretrained files are (None: the default location of each; see README "Weight files")."""
    inception: str | None = None          # torch-fidelity's weights-inception-2015-12-05-6726825d.pth (IS, FID)
    tf_graph_dir: str = TF_GRAPH_DIR      # classify_image_graph_def.pb (IS with backend tf)
    tf_graph_sha256: str = TF_GRAPH_SHA256
    fid_torchvision: str | None = None    # inception_v3_google-0cc3c7bd.pth (GFLA FID)
    alexnet: str | None = None            # alexnet-owt-7be5be79.pth (LPIPS)
    checkpoints_dir: str = 'checkpoints'  # Fashion_Inception / Fashion_Attr folders
    fashion_inception: str | None = None
    fashion_attr: str | None = None
    attr_labels: str | None = None


@dataclasses.dataclass
class EvalConfig:
    """Everything :func:`evaluate_results` needs (the command line of ``scripts/evaluate.py``)."""
    results_dir: str
    dataset_name: str = 'deepfashion'
    protocol: str = 'intrinsic_flow'
    overrides: Sequence[str] = ()
    metrics: Sequence[str] | None = None
    data_root: str | None = None
    split: str = 'test'
    fn_split: str | None = None
    img_dir: str | None = None
    fn_pose: str | None = None
    image_size: Sequence[int] | None = None
    gt_dir: str | None = None
    pose_file: str | None = None
    real_dir: str | None = None
    weights: WeightPaths = dataclasses.field(default_factory=WeightPaths)
    device: str = 'cpu'
    batch_size: int = 32
    strict: bool = False
    label: str | None = None
    progress: bool = True


# --------------------------------------------------------------------------------------------------
# Targets: a dataset split, or a folder of ground-truth images
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Pair:
    path: Path       # generated image
    id_1: str
    id_2: str
    rank: int        # position in the split file (folder targets: in the sorted names)


class DatasetTargets:
    """Targets, keypoints and training images of a dataset through :class:`~data.base_dataset.BaseDataset`
    (the same path logic, split file and pose file as training and testing)."""

    def __init__(self, cfg: EvalConfig) -> None:
        preset = POSE_PRESETS[cfg.dataset_name]
        size = cfg.image_size or preset.get('image_size', [256, 256])
        self.opt = Namespace(
            dataset_name=cfg.dataset_name, data_root=cfg.data_root or preset['data_root'],
            fn_split=cfg.fn_split or preset['fn_split'], img_dir=cfg.img_dir or preset['img_dir'],
            fn_pose=cfg.fn_pose or preset['fn_pose'], seg_dir=preset['seg_dir'], corr_dir=preset['corr_dir'],
            image_size=list(size), joint_nc=18, seg_nc=7, debug=False)
        self.split = cfg.split
        self.dataset = BaseDataset(self.opt, cfg.split)
        self.native_size = self.dataset.image_size
        self.description = {'data_root': str(self.dataset.root), 'split': cfg.split,
                            'split_file': str(self.dataset.fn_split), 'pose_file': str(self.dataset.fn_pose),
                            'img_dir': str(self.dataset.img_dir), 'native_size': list(self.native_size)}
        self._index = {}
        for rank, (id_1, id_2) in enumerate(self.dataset.pairs):
            self._index.setdefault(f'{id_1}_{id_2}', (id_1, id_2, rank))
        self.n_pairs = len(self._index)

    def match(self, path: Path) -> Pair:
        try:
            id_1, id_2, rank = self._index[path.stem]
        except KeyError:
            raise LookupError(f'matches no pair of split {self.split!r} in {self.dataset.fn_split}') from None
        return Pair(path, id_1, id_2, rank)

    def target_path(self, pair: Pair) -> Path:
        return self.dataset.image_path(pair.id_2)

    def keypoints(self, image_id: str) -> np.ndarray:
        kps = np.asarray(self.dataset.pose_label[image_id], dtype=np.float64)
        if kps.shape != (18, 2):
            raise DataFileError(f'{self.dataset.fn_pose}: pose of {image_id!r} has shape {kps.shape}, expected (18, 2)')
        return kps

    has_keypoints = True

    def training_images(self) -> tuple[list[Path], str]:
        train = BaseDataset(self.opt, 'train')
        ids = sorted({i for pair in train.pairs for i in pair})
        return [train.image_path(i) for i in ids], f"the {len(ids)} images of split 'train' in {train.fn_split}"


class FolderTargets:
    """Targets ``<gt_dir>/<id_2>.<ext>``; keypoints from an optional pose pickle."""

    def __init__(self, cfg: EvalConfig) -> None:
        self.gt = {p.stem: p for p in list_images(cfg.gt_dir, IMAGE_EXTS)}
        self.poses = None
        if cfg.pose_file is not None:
            self.poses = load_pose_labels(cfg.pose_file)
        self.native_size = None
        self.n_pairs = None
        self.description = {'gt_dir': str(cfg.gt_dir), 'pose_file': cfg.pose_file}
        self._ranks = {}

    @property
    def has_keypoints(self) -> bool:
        return self.poses is not None

    def match(self, path: Path) -> Pair:
        try:
            id_1, id_2 = split_pair_name(path.stem, self.gt.keys())
        except ValueError as e:
            raise LookupError(str(e)) from None
        return Pair(path, id_1, id_2, rank=self._ranks.setdefault(path.name, len(self._ranks)))

    def target_path(self, pair: Pair) -> Path:
        return self.gt[pair.id_2]

    def keypoints(self, image_id: str) -> np.ndarray:
        if image_id not in self.poses:
            raise DataFileError(f'pose file has no keypoints for {image_id!r}')
        return self.poses[image_id]

    def training_images(self) -> tuple[list[Path], str]:
        raise MissingWeights('the FID real set (training images) is unknown with --gt_dir: pass --real_dir '
                             '<folder of training images> or evaluate against --data_root')


# --------------------------------------------------------------------------------------------------
# Metric runners: each consumes the shared decoded batches, then reduces by its protocol rule
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Batch:
    pos: np.ndarray                 # int [n]: positions in the protocol's pair order
    pairs: list[Pair]
    gen: torch.Tensor               # uint8 [n, H, W, 3] on the device
    tgt: torch.Tensor               # uint8 [n, H, W, 3] on the device, after the target uint8 rule (SSIM, PSNR)
    tgt_file: torch.Tensor          # uint8 [n, H, W, 3] on the device, the target file's pixels (LPIPS, FID)
    keypoints: np.ndarray | None    # float64 [n, 18, 2] (x, y) of the targets in the protocol's frame

    @property
    def size(self) -> tuple[int, int]:
        return int(self.gen.size(1)), int(self.gen.size(2))


@dataclasses.dataclass
class Finish:
    """What the reductions need after the pass."""
    used: np.ndarray                # positions of the used pairs, in the protocol's order
    pairs: list[Pair]               # by position
    protocol: Protocol


def _masked_uint8(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """uint8 ``[n, H, W, 3]`` times a 0/1 mask ``[n, 1, H, W]``."""
    return images * masks.to(images.device).permute(0, 2, 3, 1)


class Runner:
    """Base of the metric runners: per-position storage, weights files, a result dict."""

    def __init__(self, name: str, n: int) -> None:
        self.name = name
        self.n = n
        self.weights: dict[str, Path] = {}

    def update(self, batch: Batch) -> None:
        raise NotImplementedError

    def finish(self, fin: Finish) -> dict[str, Any]:
        raise NotImplementedError


class PerImageRunner(Runner):
    """A metric with one value per pair (SSIM variants, PSNR, LPIPS variants).

    ``reduce='average'``: the protocol's averaging rule; ``reduce='drop_mean'``: the plain mean over the first
    ``n_used`` pairs (GFLA's dropped remainder, ``batch_size``/``drop_remainder`` from the metric's settings).
    """

    def __init__(self, name: str, n: int, fn: Callable[[Batch], torch.Tensor], reduce: str = 'average',
                 batch_size: int = 64, drop_remainder: bool = False) -> None:
        super().__init__(name, n)
        self.fn, self.reduce = fn, reduce
        self.batch_size, self.drop_remainder = batch_size, drop_remainder
        self.values = np.full(n, np.nan)

    def update(self, batch: Batch) -> None:
        self.values[batch.pos] = self.fn(batch).detach().double().cpu().numpy()

    def finish(self, fin: Finish) -> dict[str, Any]:
        values = self.values[fin.used]
        if self.reduce == 'average':
            value = average(values, fin.protocol.averaging)
            n = len(values)
        else:
            n = n_used(len(values), self.batch_size, self.drop_remainder)
            value = float(values[:n].mean())
        return {'value': value, 'std': float(values[:n].std()), 'n_images': n, 'n_dropped': len(values) - n}


class FeatureRunner(Runner):
    """Stores one feature row per pair, computed by ``fn(batch) -> [n, d]`` numpy."""

    def __init__(self, name: str, n: int, fn: Callable[[Batch], np.ndarray]) -> None:
        super().__init__(name, n)
        self.fn = fn
        self.rows: np.ndarray | None = None

    def update(self, batch: Batch) -> None:
        rows = np.asarray(self.fn(batch))
        if self.rows is None:
            self.rows = np.full((self.n, rows.shape[1]), np.nan, dtype=rows.dtype)
        self.rows[batch.pos] = rows


class InceptionScoreRunner(FeatureRunner):
    """IS / masked IS / FashionIS: class probabilities per image, then splits in the metric's image order."""

    def __init__(self, name: str, n: int, fn: Callable[[Batch], np.ndarray], n_splits: int, order: str,
                 seed: int | None = None) -> None:
        super().__init__(name, n, fn)
        self.n_splits, self.order, self.seed = n_splits, order, seed

    def finish(self, fin: Finish) -> dict[str, Any]:
        used = list(fin.used)
        if self.order == 'folder':
            # The original IS scripts: every *.jpg, then every *.png, sorted here by name, then shuffled.
            ext_rank = {f'.{e}': k for k, e in enumerate(IMAGE_EXTS)}
            used.sort(key=lambda i: (ext_rank.get(fin.pairs[i].path.suffix.lower(), len(ext_rank)),
                                     fin.pairs[i].path.name))
            np.random.RandomState(self.seed).shuffle(used)
        else:
            used.sort(key=lambda i: fin.pairs[i].path.name)
        score = inception_score_from_probs(self.rows[used], self.n_splits)
        return {'value': score['inception_score'], 'std': score['inception_score_std'],
                'split_scores': score['split_scores'], 'n_images': len(used)}


class AttrRecRunner(FeatureRunner):
    """AttrRec-k: attribute scores per generated image against the labels of its target."""

    def __init__(self, n: int, fn: Callable[[Batch], np.ndarray], labels: dict[str, np.ndarray], label_file: Path,
                 ks: Sequence[int]) -> None:
        super().__init__('attr_rec', n, fn)
        self.labels, self.label_file, self.ks = labels, label_file, tuple(ks)

    def finish(self, fin: Finish) -> dict[str, Any]:
        used = sorted(fin.used, key=lambda i: fin.pairs[i].path.name)
        gt = []
        for i in used:
            key = match_label_key(fin.pairs[i].id_2, self.labels.keys())
            if key is None:
                raise ValueError(f'target {fin.pairs[i].id_2!r} of {fin.pairs[i].path.name} has no attributes in '
                                 f'{self.label_file}')
            gt.append(self.labels[key])
        gt = np.stack(gt)
        scores = self.rows[used]
        if gt.shape[1] != scores.shape[1]:
            raise ValueError(f'{self.label_file}: {gt.shape[1]} attributes per image, the classifier has '
                             f'{scores.shape[1]}')
        return {'value': {f'rec-{k}': recall_at_k(scores, gt, k) for k in self.ks},
                'mean_ap': mean_average_precision(scores, gt), 'n_images': len(used),
                'label_file': str(self.label_file)}


class FIDRunner(FeatureRunner):
    """FID: generated features during the pass; the real set's in :meth:`finish` (or the targets' in the pass)."""

    def __init__(self, n: int, extract: Callable[[np.ndarray], np.ndarray], distance: Callable, settings,
                 real_paths: list[Path] | None, real_description: str, read_real: Callable[[Path], np.ndarray],
                 batch_size: int, progress: bool) -> None:
        super().__init__('fid', n, self._generated_features)
        self.extract, self.distance, self.settings = extract, distance, settings
        self.real_paths, self.real_description, self.read_real = real_paths, real_description, read_real
        self.eval_batch_size, self.progress = batch_size, progress
        self.target_rows: np.ndarray | None = None

    def _generated_features(self, batch: Batch) -> np.ndarray:
        return self.extract(batch.gen.cpu().numpy())

    def update(self, batch: Batch) -> None:
        super().update(batch)
        if self.real_paths is None:  # real set = the targets of the evaluated pairs
            rows = self.extract(batch.tgt_file.cpu().numpy())
            if self.target_rows is None:
                self.target_rows = np.full((self.n, rows.shape[1]), np.nan, dtype=rows.dtype)
            self.target_rows[batch.pos] = rows

    def _real_features(self) -> tuple[np.ndarray, list[dict]]:
        feats, skipped = [], []
        bar = tqdm(total=len(self.real_paths), desc='FID real set', unit='img', disable=not self.progress or None)
        for start in range(0, len(self.real_paths), self.eval_batch_size):
            images = []
            for path in self.real_paths[start:start + self.eval_batch_size]:
                try:
                    images.append(self.read_real(path))
                except (ImageReadError, ValueError) as e:
                    skipped.append({'file': str(path), 'reason': str(e)})
            if images:
                feats.append(self.extract(np.stack(images)))
            bar.update(min(self.eval_batch_size, len(self.real_paths) - start))
        bar.close()
        return (np.concatenate(feats) if feats else np.zeros((0, 1))), skipped

    def finish(self, fin: Finish) -> dict[str, Any]:
        gen = self.rows[fin.used]
        if self.real_paths is None:
            real, skipped = self.target_rows[fin.used], []
        else:
            real, skipped = self._real_features()
        s = self.settings
        n_gen, n_real = (n_used(len(x), s.batch_size, s.drop_remainder) for x in (gen, real))
        if min(n_gen, n_real) < 2:
            raise ValueError(f'FID needs at least 2 images on each side after the batch rule, got {n_gen} generated '
                             f'and {n_real} real (fid.batch_size {s.batch_size}, drop_remainder {s.drop_remainder})')
        out = {'value': self.distance(gen[:n_gen], real[:n_real]), 'n_images': n_gen,
               'n_dropped': len(gen) - n_gen, 'n_real': n_real, 'n_real_dropped': len(real) - n_real,
               'real_set': self.real_description, 'n_real_skipped': len(skipped),
               'real_skipped': skipped[:MAX_LISTED_SKIPS]}
        if min(n_gen, n_real) <= gen.shape[1]:
            out['note'] = (f'at most {gen.shape[1]} images on one side: the covariance is rank deficient and FID is '
                           f'biased upwards; compare only numbers computed with the same N')
        return out


# --------------------------------------------------------------------------------------------------
# Building the runners (a missing weights file skips only its metric)
# --------------------------------------------------------------------------------------------------
class _Context:
    """What the runner builders share: protocol, config, targets, device, image reader."""

    def __init__(self, protocol: Protocol, cfg: EvalConfig, targets, device: torch.device, n: int,
                 read_image: Callable[[Path], np.ndarray]) -> None:
        self.protocol, self.cfg, self.targets, self.device, self.n = protocol, cfg, targets, device, n
        self.read_image = read_image
        self._lpips = None

    def lpips_model(self):
        if self._lpips is None:
            s = self.protocol.lpips
            self._lpips = build_lpips(s.net, s.version, self.cfg.weights.alexnet, None, self.device)
        return self._lpips


def _mask_fn(settings: PoseMaskSettings) -> Callable[[Batch], torch.Tensor]:
    def masks(batch: Batch) -> torch.Tensor:
        return pose_masks(batch.keypoints, batch.size, settings).to(batch.gen.device)
    return masks


def _build_ssim(ctx: _Context, name: str) -> Runner:
    p = ctx.protocol
    if name == 'mask_ssim':
        if p.mask_ssim.apply != 'uint8':
            raise ValueError("mask_ssim multiplies the uint8 images by the mask: set mask_ssim.apply=uint8")
        masks = _mask_fn(p.mask_ssim)
        return PerImageRunner(name, ctx.n, lambda b: ssim_configurable(b.gen, b.tgt, p.ssim, masks(b)))
    settings = p.ssim if name == 'ssim' else p.ssim_gauss
    return PerImageRunner(name, ctx.n, lambda b: ssim_configurable(b.gen, b.tgt, settings))


def _build_psnr(ctx: _Context, name: str) -> Runner:
    return PerImageRunner(name, ctx.n, lambda b: psnr_batch(b.gen, b.tgt, ctx.protocol.psnr))


def _build_lpips(ctx: _Context, name: str) -> Runner:
    s = ctx.protocol.lpips
    model = ctx.lpips_model()
    mask_settings = ctx.protocol.mask_lpips
    masks = _mask_fn(mask_settings)

    def fn(b: Batch) -> torch.Tensor:
        if name == 'lpips':
            return lpips_arrays(model, b.gen, b.tgt_file)
        if mask_settings.apply == 'signed':  # GFLA: multiplied after the scaling to [-1, 1]
            return lpips_arrays(model, b.gen, b.tgt_file, masks(b))
        m = masks(b)
        return lpips_arrays(model, _masked_uint8(b.gen, m), _masked_uint8(b.tgt_file, m))

    runner = PerImageRunner(name, ctx.n, fn, reduce='drop_mean', batch_size=s.batch_size,
                            drop_remainder=s.drop_remainder)
    runner.weights = {'backbone': model.backbone_weights, 'linear layers': model.lin_weights}
    return runner


def _build_fid(ctx: _Context, name: str) -> Runner:
    s, cfg = ctx.protocol.fid, ctx.cfg
    if s.real_set == 'train':
        if cfg.real_dir is not None:
            real_paths = list_images(cfg.real_dir, IMAGE_EXTS)
            real_description = f'the {len(real_paths)} images in {cfg.real_dir}'
        else:
            real_paths, real_description = ctx.targets.training_images()
    else:
        real_paths, real_description = None, 'the target of each evaluated pair'
    if s.backend == 'torchvision_gfla':
        net = TorchvisionInceptionPool(cfg.weights.fid_torchvision, ctx.device)
        extract, distance = net.features, frechet_distance_sqrtm
    else:
        net = TorchFidelityInception(cfg.weights.inception, ctx.device, features=('2048',))

        def extract(images: np.ndarray) -> np.ndarray:
            return net.features(images)['2048']

        distance = frechet_distance
    runner = FIDRunner(ctx.n, extract, distance, s, real_paths, real_description, ctx.read_image, cfg.batch_size,
                       cfg.progress)
    runner.weights = {'network': net.weights_path}
    runner.description = net.description
    return runner


def _is_classifier(ctx: _Context):
    s, w = ctx.protocol.inception, ctx.cfg.weights
    if s.backend == 'tf':
        return TFInceptionGraph(w.tf_graph_dir, w.tf_graph_sha256)
    return TorchFidelityInception(w.inception, ctx.device, features=('logits_unbiased',))


def _build_is(ctx: _Context, name: str) -> Runner:
    s = ctx.protocol.inception
    mask_settings = ctx.protocol.masked_is
    if name == 'masked_is' and mask_settings.apply != 'uint8':
        raise ValueError('masked_is multiplies the uint8 images by the mask: set masked_is.apply=uint8')
    classifier = _is_classifier(ctx)
    masks = _mask_fn(mask_settings)

    def fn(b: Batch) -> np.ndarray:
        images = b.gen if name == 'is' else _masked_uint8(b.gen, masks(b))
        return classifier(images.cpu().numpy())

    runner = InceptionScoreRunner(name, ctx.n, fn, s.n_splits, order='folder', seed=s.seed)
    runner.weights = {'network': classifier.weights_path}
    return runner


def _build_fashion_is(ctx: _Context, name: str) -> Runner:
    s, w = ctx.protocol.fashion_is, ctx.cfg.weights
    path = find_classifier_checkpoint('inception', 'default', w.checkpoints_dir, w.fashion_inception)
    model = load_classifier('inception', path, s.n_class, ctx.device)
    transform = eval_transform(s.rescale_size, s.crop_size)

    def fn(b: Batch) -> np.ndarray:
        return predict_arrays(model, list(b.gen.cpu().numpy()), transform, ctx.device, 'softmax')

    runner = InceptionScoreRunner(name, ctx.n, fn, s.n_splits, order='sorted_names')
    runner.weights = {'classifier': path}
    return runner


def _build_attr_rec(ctx: _Context, name: str) -> Runner:
    s, w = ctx.protocol.attr_rec, ctx.cfg.weights
    label_file = resolve_attr_label_file(w.attr_labels)
    labels, _ = load_attr_labels(label_file)
    path = find_classifier_checkpoint('attr', 'default', w.checkpoints_dir, w.fashion_attr)
    model = load_classifier('attr', path, s.n_attr, ctx.device)
    transform = eval_transform(s.rescale_size, s.crop_size)

    def fn(b: Batch) -> np.ndarray:
        return predict_arrays(model, list(b.gen.cpu().numpy()), transform, ctx.device, 'sigmoid')

    runner = AttrRecRunner(ctx.n, fn, labels, label_file, s.ks)
    runner.weights = {'classifier': path, 'labels': label_file}
    return runner


BUILDERS: dict[str, Callable[[_Context, str], Runner]] = {
    'ssim': _build_ssim, 'ssim_gauss': _build_ssim, 'mask_ssim': _build_ssim, 'psnr': _build_psnr,
    'lpips': _build_lpips, 'mask_lpips': _build_lpips, 'fid': _build_fid, 'is': _build_is, 'masked_is': _build_is,
    'fashion_is': _build_fashion_is, 'attr_rec': _build_attr_rec,
}
assert set(BUILDERS) == set(METRIC_NAMES)


# --------------------------------------------------------------------------------------------------
# The pass
# --------------------------------------------------------------------------------------------------
class _Skips:
    """Files that could not be used, by reason category."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, path: Path, category: str, reason: str) -> None:
        self.items.append({'file': path.name, 'category': category, 'reason': reason})

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.items:
            out[item['category']] = out.get(item['category'], 0) + 1
        return out

    def summary(self) -> str:
        parts = []
        for category, count in self.counts().items():
            example = next(i for i in self.items if i['category'] == category)
            parts.append(f"{count} {category} (e.g. {example['file']}: {example['reason']})")
        return '; '.join(parts)


def package_versions() -> dict[str, str]:
    out = {'python': '.'.join(map(str, sys.version_info[:3])), 'torch': torch.__version__}
    for name in VERSIONED_PACKAGES:
        if name in out:
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _native_size(cfg: EvalConfig) -> tuple[int, int]:
    size = cfg.image_size or POSE_PRESETS[cfg.dataset_name].get('image_size', [256, 256])
    return int(size[0]), int(size[1])


def evaluate_results(cfg: EvalConfig) -> dict[str, Any]:
    """Evaluate ``cfg.results_dir`` under ``cfg.protocol`` (with ``cfg.overrides``); returns the report dict.

    Raises:
        EvaluationError: no images, no file matching a pair, no usable image, or (``strict``) any skipped file,
            missing pair image or skipped metric.
        FileNotFoundError / ValueError: a missing dataset, split or pose file; a malformed override.
    """
    t0 = time.perf_counter()
    base = get_protocol(cfg.protocol)
    own = base.metrics(cfg.dataset_name)
    requested = tuple(cfg.metrics) if cfg.metrics else own
    protocol, changes = customize(base, cfg.overrides, requested, cfg.dataset_name)
    metrics = [m for m in METRIC_NAMES if m in requested]
    size = protocol.image.size(cfg.dataset_name)
    native = _native_size(cfg)
    rule = protocol.image.resize_rule

    if not Path(cfg.results_dir).is_dir():
        raise EvaluationError(f'results folder {cfg.results_dir} not found; it is a test results folder '
                              f'test_<split>_<epoch>/ of scripts/test_pose_transfer.py --save_output, or any folder '
                              f'of generated <id_1>_<id_2>.jpg files')
    try:  # a test results folder holds its images in images/, beside its grid
        results_dir = resolve_image_folder(cfg.results_dir)
    except (FileNotFoundError, ValueError) as e:
        raise EvaluationError(str(e)) from None
    files = [p for p in results_dir.iterdir() if p.is_file() and p.suffix.lower().lstrip('.') in IMAGE_EXTS]
    if not files:
        raise EvaluationError(f'no images (*.jpg, *.png) in {results_dir}; run scripts/test_pose_transfer.py with '
                              f'--save_output first')
    targets = FolderTargets(cfg) if cfg.gt_dir is not None else DatasetTargets(cfg)

    skips = _Skips()
    pairs: list[Pair] = []
    stems: dict[str, Path] = {}
    for path in sorted(files):
        if path.stem in stems:
            raise EvaluationError(f'two results share the name {path.stem!r}: {stems[path.stem].name} and '
                                  f'{path.name}; keep one of them')
        stems[path.stem] = path
        try:
            pairs.append(targets.match(path))
        except LookupError as e:
            skips.add(path, 'no_pair', str(e))
    if not pairs:
        raise EvaluationError(f'none of the {len(files)} images in {results_dir} is named <id_1>_<id_2> for a pair '
                              f'of the targets ({skips.summary()}); check --dataset_name, --data_root, --split '
                              f'or --gt_dir')
    order_key = ((lambda p: p.rank) if protocol.image.order == 'split' and cfg.gt_dir is None
                 else (lambda p: p.path.name))
    pairs.sort(key=order_key)
    n = len(pairs)

    def fit(img: np.ndarray, what: str) -> np.ndarray:
        if img.shape[:2] == tuple(size):
            return img
        if img.shape[:2] == native and rule != 'none':
            return resize_image(img, size, rule)
        raise ValueError(f'{what} is {img.shape[0]}x{img.shape[1]} (HxW), the protocol evaluates '
                         f'{cfg.dataset_name} at {size[0]}x{size[1]}'
                         + (f' (made from {native[0]}x{native[1]} by {rule})' if rule != 'none' else ''))

    def read_image(path: Path) -> np.ndarray:
        return fit(decode_image(path, protocol.image.decoder), str(path))

    ctx = _Context(protocol, cfg, targets, torch.device(cfg.device), n, read_image)
    runners: list[Runner] = []
    skipped_metrics: dict[str, str] = {}
    for name in metrics:
        if name in MASKED_METRICS and not targets.has_keypoints:
            skipped_metrics[name] = 'needs the target keypoints: pass --pose_file with --gt_dir'
            continue
        try:
            runners.append(BUILDERS[name](ctx, name))
        except (FileNotFoundError, ImportError) as e:
            skipped_metrics[name] = str(e)
    for name, reason in skipped_metrics.items():
        print(f'skipped {name}: {reason}')
    if cfg.strict and skipped_metrics:
        raise EvaluationError(f'--strict: metrics skipped: {skipped_metrics}')
    if not runners:
        raise EvaluationError(f'no metric can run ({skipped_metrics})')

    need_keypoints = any(r.name in MASKED_METRICS for r in runners)
    bar = tqdm(total=n, desc='evaluate', unit='img', disable=not cfg.progress or None)
    used_positions: list[int] = []
    for start in range(0, n, cfg.batch_size):
        gens, tgts, kps, pos = [], [], [], []
        for i in range(start, min(start + cfg.batch_size, n)):
            pair = pairs[i]
            try:
                gen = decode_image(pair.path, protocol.image.decoder)
            except ImageReadError as e:
                skips.add(pair.path, 'unreadable', str(e))
                continue
            try:
                gen = fit(gen, 'the generated image')
            except ValueError as e:
                skips.add(pair.path, 'wrong_size', str(e))
                continue
            target_path = targets.target_path(pair)
            try:
                tgt_raw = decode_image(target_path, protocol.image.decoder)
            except ImageReadError as e:
                skips.add(pair.path, 'target_unreadable', str(e))
                continue
            try:
                tgt = fit(tgt_raw, f'the target {target_path}')
            except ValueError as e:
                skips.add(pair.path, 'target_wrong_size', str(e))
                continue
            if need_keypoints:
                try:
                    kp = targets.keypoints(pair.id_2)
                except (DataFileError, KeyError) as e:
                    skips.add(pair.path, 'no_keypoints', str(e))
                    continue
                kps.append(transform_keypoints(kp, tgt_raw.shape[:2], size, rule))
            gens.append(gen)
            tgts.append(tgt)
            pos.append(i)
        bar.update(min(cfg.batch_size, n - start))
        if not pos:
            continue
        tgt_file = np.stack(tgts)
        batch = Batch(
            pos=np.asarray(pos), pairs=[pairs[i] for i in pos],
            gen=torch.from_numpy(np.stack(gens)).to(ctx.device),
            tgt=torch.from_numpy(target_uint8(tgt_file, protocol.image.target_uint8)).to(ctx.device),
            tgt_file=torch.from_numpy(tgt_file).to(ctx.device),
            keypoints=np.stack(kps) if need_keypoints else None)
        for runner in runners:
            runner.update(batch)
        used_positions += pos
    bar.close()

    if skips.items:
        print(f'skipped {len(skips.items)} of {len(files)} files: {skips.summary()}')
    if not used_positions:
        raise EvaluationError(f'no usable image in {results_dir}: {skips.summary()}')
    n_missing = (targets.n_pairs - n) if targets.n_pairs is not None else None
    if n_missing:
        print(f'note: {n_missing} of the {targets.n_pairs} pairs of the split have no image in {results_dir}')
    if cfg.strict and (skips.items or n_missing):
        raise EvaluationError(f'--strict: {len(skips.items)} file(s) skipped ({skips.summary()}), '
                              f'{n_missing or 0} pair(s) of the split without an image')

    fin = Finish(used=np.asarray(used_positions), pairs=pairs, protocol=protocol)
    results: dict[str, Any] = {}
    weights: dict[str, dict[str, str]] = {}
    for runner in runners:
        try:
            results[runner.name] = runner.finish(fin)
        except (ValueError, FileNotFoundError) as e:
            skipped_metrics[runner.name] = str(e)
            print(f'skipped {runner.name}: {e}')
            continue
        if hasattr(runner, 'description'):
            results[runner.name]['network'] = runner.description
        for role, path in runner.weights.items():
            weights[f'{runner.name} {role}'] = {'path': str(path), 'sha256': sha256sum(path)}
    if cfg.strict and skipped_metrics:
        raise EvaluationError(f'--strict: metrics failed: {skipped_metrics}')

    # The experiment's name: <experiment>/test_<split>_<epoch>/images/ or any <experiment>/<folder>/.
    named = [d.name for d in (results_dir.parent, results_dir.parent.parent) if d.name.startswith('PoseTransfer_')]
    label = cfg.label or (named[0] if named else results_dir.name)
    report = {
        'label': label,
        'protocol': protocol.name,
        'base_protocol': base.name,
        'changes': {k: [_jsonable(v) for v in pair] for k, pair in changes.items()},
        'summary': base.summary,
        'dataset_name': cfg.dataset_name,
        'results_dir': str(results_dir),
        'targets': targets.description,
        'image_size': list(size),
        'metrics': results,
        'skipped_metrics': skipped_metrics,
        'images': {
            'n_files': len(files), 'n_matched': n, 'n_used': len(used_positions), 'n_skipped': len(skips.items),
            'skipped_by_reason': skips.counts(), 'skipped': skips.items[:MAX_LISTED_SKIPS],
            'n_split_pairs': targets.n_pairs, 'n_split_pairs_without_image': n_missing,
        },
        'settings': _jsonable(protocol.settings()),
        'sources': list(base.sources),
        'weights': weights,
        'versions': package_versions(),
        'device': str(ctx.device),
        'elapsed_sec': round(time.perf_counter() - t0, 2),
        'date': datetime.datetime.now().isoformat(timespec='seconds'),
    }
    report['markdown'] = markdown_table([report])
    return report


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------
def _format(metric: str, result: dict | None) -> str:
    if result is None:
        return '–'
    fmt = TABLE_COLUMNS[metric][1]
    value = result['value']
    if isinstance(value, dict):
        return ' / '.join(fmt.format(v) for v in value.values())
    return fmt.format(value)


def markdown_table(reports: Sequence[dict]) -> str:
    """One Markdown table, a row per report (model × protocol), a column per metric any report has."""
    metrics = [m for m in METRIC_NAMES if any(m in r['metrics'] or m in r.get('skipped_metrics', {})
                                              for r in reports)]
    header = '| model | protocol | images | ' + ' | '.join(TABLE_COLUMNS[m][0] for m in metrics) + ' |'
    rule = '|' + '---|' * (3 + len(metrics))
    rows = []
    for r in reports:
        protocol = r['protocol'] if r['protocol'] != 'custom' else f"custom ({r['base_protocol']})"
        cells = [_format(m, r['metrics'].get(m)) for m in metrics]
        rows.append(f"| {r['label']} | {protocol} | {r['images']['n_used']} | " + ' | '.join(cells) + ' |')
    return '\n'.join([header, rule, *rows]) + '\n'


def save_report(report: dict, out: str | os.PathLike) -> Path:
    return save_json(report, out, indent=2)
