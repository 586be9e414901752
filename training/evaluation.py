"""Evaluation passes: validation during training, the flow test and the pose-transfer test, visual grids.

The pose-transfer test keeps the original's semantics by default: batch size from the test command line (8),
split order, last partial batch kept, netG/netPW normalising with batch statistics, metrics averaged per batch and
then over batches. Results are printed as the original's summary line and written as JSON. The pose-transfer test
adds, on a second line and in the JSON, metrics of the person only (inside the target's ground-truth body mask) for
the model and two references on the same pairs: the source returned unchanged, and the source warped with the
ground-truth flow.

Every test run writes into a fresh results folder, ``<--results_dir or the experiment folder>/test_<split>_<epoch>/``
(:class:`ResultsFolder`)::

    test_opt.json          the options the test ran with (marks the folder as a test results folder)
    metrics.json           metrics, baselines and the summary line
    vis.jpg                the visual grid of the first --n_vis samples (vis_item_list.txt: its panels)
    images/<id_1>_<id_2>.jpg   the generated images (pose transfer with --save_output): what the metric scripts score

An existing folder of the same name is refused unless ``--overwrite``, so a metric script never scores images of an
earlier run mixed with this one. The run writes into a hidden ``.test_<split>_<epoch>.partial/`` beside it and
renames it into place when the test has finished, so the folder never holds a half-finished test either.
"""
from __future__ import annotations

import errno
import fcntl
import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from torchvision.utils import save_image
from tqdm import tqdm

from data.data_loader import create_dataset, make_dataloader
from metrics.image_folder import RESULTS_IMAGES_DIR, RESULTS_OPTIONS_FILE, RESULTS_PARTIAL_SUFFIX
from metrics.person_region import (flow_warp_reference, person_mask_from_seg, person_region_l1,
                                   person_region_ssim)
from metrics.psnr import PSNR
from metrics.ssim import SSIM, to_uint8
from models.base_model import BaseModel
from models.flow_regression_model import FlowRegressionModel
from models.pose_transfer_model import PoseTransferModel
from options.base_options import Options, save_options
from util.flow_util import warp_acc_flow
from util.io import atomic_target, save_json
from util.pose_util import get_pose_mask_batch
from util.visualizer import make_visual_grid, save_visual_grid


def evaluate(model: BaseModel, loader: DataLoader, max_batches: int = 0, desc: str = 'eval',
             **test_kwargs) -> dict[str, float]:
    """Mean over batches of the per-batch errors (each batch weighted equally, as the original)."""
    sums: dict[str, float] = {}
    n = 0
    for i, data in enumerate(tqdm(loader, desc=desc, leave=False, disable=None)):
        if max_batches and i >= max_batches:
            break
        model.set_input(data)
        model.test(compute_loss=True, **test_kwargs)
        for k, v in model.get_current_errors().items():
            sums[k] = sums.get(k, 0.0) + float(v)
        n += 1
    if n == 0:
        raise RuntimeError('evaluation ran on no batch: the split is smaller than one batch '
                           '(lower --batch_size or use a larger split)')
    return {k: v / n for k, v in sums.items()}


def save_sample_grid(model: BaseModel, loader: DataLoader, n_vis: int, path: Path) -> Path | None:
    """The visual grid of the first ``n_vis`` samples ``loader`` yields, written to ``path``.

    The one rounding rule for ``--n_vis``: whole batches, ``ceil(n_vis / batch_size)`` of them, at most all the
    loader has. Whole batches keep every panel equal to what the same batch gives in the evaluation pass (the
    generator normalises with batch statistics). Returns ``path``, or None when ``n_vis`` is 0 or the loader is
    empty.
    """
    n_batches = min(math.ceil(n_vis / loader.batch_size), len(loader)) if n_vis > 0 else 0
    if n_batches == 0:
        return None
    rows: dict[str, tuple[list[torch.Tensor], str]] = {}
    for i, data in enumerate(loader):
        if i >= n_batches:
            break
        model.set_input(data)
        model.test(compute_loss=False)
        for name, (tensor, kind) in model.get_current_visuals().items():
            rows.setdefault(name, ([], kind))[0].append(tensor.detach().cpu())
    save_visual_grid(path, {name: (torch.cat(ts), kind) for name, (ts, kind) in rows.items()})
    return path


def _test_loader(dataset, opt: Options) -> DataLoader:
    # Test loaders: split order, the last partial batch kept.
    return make_dataloader(dataset, opt.batch_size, num_workers=opt.num_workers)


def _summary_line(opt: Options, metrics: dict[str, float]) -> str:
    body = '  '.join(f'{k}: {v:.4f}' for k, v in metrics.items())
    return f'[model_id: {opt.id}  epoch: {opt.which_epoch}]  {body}'


RESULTS_METRICS_FILE = 'metrics.json'
RESULTS_GRID_FILE = 'vis.jpg'
_PLAIN_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._+-]*')


def results_folder_name(split: str, epoch: str) -> str:
    """``test_<split>_<epoch>``; both parts must be plain names (no path separator, no leading dot)."""
    for option, value in (('--data_split', split), ('--which_epoch', epoch)):
        if not _PLAIN_NAME.fullmatch(str(value)):
            raise ValueError(f'{option} {value!r} cannot be part of the results folder name test_<split>_<epoch>: '
                             f'use letters, digits and . _ + - only, not starting with . _ + -')
    return f'test_{split}_{epoch}'


class ResultsFolder:
    """The fresh folder of one test run, ``<base>/test_<split>_<epoch>/`` (layout in the module docstring).

    Construction checks, before anything is written, that the folder does not exist yet, or that ``overwrite`` is
    set and the folder is a test results folder (it holds ``test_opt.json``; anything else is never deleted).
    ``with`` the object: the run writes into :attr:`work`, the hidden ``.test_<split>_<epoch>.partial/`` beside the
    final folder, locked (``flock``) so that two tests of the same name cannot mix their files; what an interrupted
    earlier run left there is removed first. When the block ends normally the partial folder replaces
    :attr:`final` in one rename (with ``overwrite``, the old folder is moved aside first and deleted after); when it
    raises, the partial folder is removed and :attr:`final` is left as it was.
    """

    def __init__(self, base: str | os.PathLike, split: str, epoch: str, overwrite: bool = False) -> None:
        self.name = results_folder_name(split, epoch)
        self.base = Path(base)
        self.final = self.base / self.name
        self.work = self.base / f'.{self.name}{RESULTS_PARTIAL_SUFFIX}'
        self._old = self.base / f'.{self.name}.old'
        self.overwrite = bool(overwrite)
        self._fd: int | None = None
        self._check_final()

    @classmethod
    def for_test(cls, opt: Options, split: str) -> 'ResultsFolder':
        """The results folder of a test run: under ``opt.results_dir`` when given, else the experiment folder."""
        base = Path(opt.results_dir) if opt.results_dir else opt.expr_dir
        return cls(base, split, opt.which_epoch, opt.overwrite)

    def final_path(self, *parts: str) -> Path:
        """Where a file written to ``work / parts`` will be once the folder is published."""
        return self.final.joinpath(*parts)

    def _check_final(self) -> None:
        if not os.path.lexists(self.final):
            return
        if not self.overwrite:
            raise FileExistsError(
                f'test results folder {self.final} already exists (an earlier test of this checkpoint on this '
                f'split): pass --overwrite to replace it, or --results_dir DIR to write the results elsewhere')
        if self.final.is_symlink() or not self.final.is_dir():
            raise FileExistsError(f'{self.final} exists and is not a folder: --overwrite does not replace it; '
                                  f'move it away or choose another --results_dir')
        if any(self.final.iterdir()) and not (self.final / RESULTS_OPTIONS_FILE).is_file():
            raise FileExistsError(
                f'{self.final} has no {RESULTS_OPTIONS_FILE}, so it is not a test results folder: --overwrite does '
                f'not delete it; move it away or choose another --results_dir')

    def __enter__(self) -> 'ResultsFolder':
        try:
            self.work.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.work, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise OSError(exc.errno, f'cannot create the test results folder {self.work} ({exc.strerror}); '
                                     f'if the experiment folder is read-only, pass --results_dir DIR to write the '
                                     f'results to a folder of yours') from exc
        busy = f'another test is writing {self.work} (results for {self.final}): wait for it to finish'
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The lock must be on the folder that is still called .partial (not one renamed meanwhile).
            if os.stat(self.work).st_ino != os.fstat(fd).st_ino:
                raise BlockingIOError(errno.EAGAIN, busy)
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            raise RuntimeError(busy) from None
        self._fd = fd
        leftovers = sorted(self.work.iterdir())
        if leftovers or os.path.lexists(self._old):
            print(f'removing what an interrupted test left in {self.work}')
        for entry in leftovers:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        if self._old.is_dir() and not self._old.is_symlink():
            shutil.rmtree(self._old)
        elif os.path.lexists(self._old):
            self._old.unlink()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._publish()
            else:
                shutil.rmtree(self.work, ignore_errors=True)
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _publish(self) -> None:
        try:
            self._check_final()  # a folder another run created meanwhile
        except FileExistsError:
            shutil.rmtree(self.work, ignore_errors=True)
            raise
        if os.path.lexists(self.final):
            os.rename(self.final, self._old)
            os.rename(self.work, self.final)
            shutil.rmtree(self._old)
        else:
            os.rename(self.work, self.final)


# Person-region metrics of the pose-transfer test: the model, copy-source and the ground-truth-flow warp reference.
PERSON_METRICS = ('person_SSIM', 'person_L1')
PERSON_REFERENCES = ('copy_source', 'gt_flow_warp')


def person_region_batch(img_out: torch.Tensor, data: dict[str, torch.Tensor]) -> tuple[dict[str, float], int]:
    """Person-region SSIM/L1 of one test batch for the model output and the two references.

    Args:
        img_out: the model's ``[N, 3, H, W]`` output in [-1, 1].
        data: the batch as the model holds it (``img_1``, ``img_2``, ``flow_2to1``, ``vis_2``,
            ``seg_label_1``, ``seg_label_2``: ``[N, C, H, W]`` float tensors on the output's device).

    Returns:
        ``({name: batch mean}, n_excluded)`` with names ``person_SSIM``, ``person_L1`` and
        ``<reference>_person_SSIM/L1`` for ``copy_source`` and ``gt_flow_warp``. Pairs whose source or target
        segmentation has no body pixel have no person region (or no body colour to fill with); they are left
        out of every value of the batch, so all values stay on the same pairs, and counted in ``n_excluded``.
        An empty dict when no pair of the batch has both.
    """
    body_1 = person_mask_from_seg(data['seg_label_1'])
    body_2 = person_mask_from_seg(data['seg_label_2'])
    keep = (body_1.flatten(1).sum(1) > 0) & (body_2.flatten(1).sum(1) > 0)
    n_excluded = int((~keep).sum())
    if not bool(keep.any()):
        return {}, n_excluded
    img_1, img_2 = data['img_1'][keep], data['img_2'][keep]
    reference = flow_warp_reference(img_1, data['flow_2to1'][keep], data['vis_2'][keep], data['seg_label_1'][keep],
                                    data['seg_label_2'][keep], warp=warp_acc_flow)
    images = {'': img_out[keep], 'copy_source_': img_1, 'gt_flow_warp_': reference}
    mask = body_2[keep]
    values = {}
    for prefix, image in images.items():
        values[f'{prefix}person_SSIM'] = float(person_region_ssim(image, img_2, mask).mean())
        values[f'{prefix}person_L1'] = float(person_region_l1(image, img_2, mask).mean())
    return values, n_excluded


def _person_summary_line(opt: Options, person: dict[str, float]) -> str:
    """The second summary line of the pose-transfer test: model, copy-source and ground-truth-flow warp."""
    def values(prefix: str) -> str:
        return '  '.join(f'{k}: {person[prefix + k]:.4f}' for k in PERSON_METRICS)
    return (f'[model_id: {opt.id}  epoch: {opt.which_epoch}]  person region: {values("")}  |  copy source: '
            f'{values("copy_source_")}  |  ground-truth flow warp: {values("gt_flow_warp_")}')


def run_flow_test(opt: Options) -> dict[str, Any]:
    """Evaluate a flow regression model on the ``test`` split: EPE and losses, visual grid.

    Writes ``test_opt.json``, ``vis.jpg`` and ``metrics.json`` to a fresh ``test_test_<epoch>/`` folder
    (:class:`ResultsFolder`); returns the metrics dict, also with ``results_dir`` and ``json``.
    """
    results = ResultsFolder.for_test(opt, 'test')
    with results:
        save_options(opt, results.work / RESULTS_OPTIONS_FILE)
        model = FlowRegressionModel(opt)
        model.eval_mode()
        dataset = create_dataset(opt, 'test')
        loader = _test_loader(dataset, opt)
        vis_path = save_sample_grid(model, loader, opt.n_vis, results.work / RESULTS_GRID_FILE)
        metrics = evaluate(model, loader, desc='test')
        ordered = {k: metrics[k] for k in ('EPE', 'loss_flow', 'loss_vis', 'loss_flow_ss', 'zero_flow_EPE')
                   if k in metrics}
        line = _summary_line(opt, ordered)
        print(line)
        result = {'id': opt.id, 'which_epoch': opt.which_epoch, 'split': 'test', 'n_pairs': len(dataset),
                  'metrics': metrics,
                  'visual_grid': str(results.final_path(RESULTS_GRID_FILE)) if vis_path else None,
                  'summary': line, 'results_dir': str(results.final)}
        save_json(result, results.work / RESULTS_METRICS_FILE, indent=2)
    result['json'] = str(results.final_path(RESULTS_METRICS_FILE))
    print(f'results written to {results.final}')
    return result


def save_output_images(images: torch.Tensor, ids: list[tuple[str, str]], out_dir: Path) -> None:
    """Write ``[N, 3, H, W]`` images in [-1, 1] as ``<id_1>_<id_2>.jpg`` (uint8 by truncation, OpenCV quality 95)."""
    arrays = to_uint8(images).cpu().numpy()
    for arr, (id_1, id_2) in zip(arrays, ids):
        path = out_dir / f'{id_1}_{id_2}.jpg'
        if not cv2.imwrite(str(path), np.ascontiguousarray(arr[:, :, ::-1])):
            raise OSError(f'could not write {path}')


def run_pose_test(opt: Options) -> dict[str, Any]:
    """Generate ``opt.data_split``, compute SSIM/PSNR (+ masked SSIM), save outputs and the visual grid.

    Everything goes to a fresh ``test_<split>_<epoch>/`` folder (:class:`ResultsFolder`): ``test_opt.json``,
    ``vis.jpg``, ``metrics.json`` and, with ``--save_output``, the generated images in ``images/``.
    """
    results = ResultsFolder.for_test(opt, opt.data_split)
    with results:
        result = _pose_test(opt, results)
    if 'json' in result:
        print(f"metrics written to {result['json']}")
    print(f'results written to {results.final}')
    return result


def _pose_test(opt: Options, results: ResultsFolder) -> dict[str, Any]:
    save_options(opt, results.work / RESULTS_OPTIONS_FILE)
    model = PoseTransferModel(opt)
    dataset = create_dataset(opt, opt.data_split)
    bs = opt.batch_size

    # Visualisation of the first n_vis samples (whole batches, clamped to the split).
    vis_path = save_sample_grid(model, _test_loader(dataset, opt), opt.n_vis, results.work / RESULTS_GRID_FILE)

    result: dict[str, Any] = {'id': opt.id, 'which_epoch': opt.which_epoch, 'split': opt.data_split,
                              'bn_mode': opt.bn_mode, 'batch_size': bs,
                              'visual_grid': str(results.final_path(RESULTS_GRID_FILE)) if vis_path else None,
                              'results_dir': str(results.final)}
    if opt.n_test_batch == 0:
        return result

    # Test pass.
    test_set = dataset if opt.n_test_batch < 0 else Subset(dataset, range(min(opt.n_test_batch * bs, len(dataset))))
    out_dir = results.work / RESULTS_IMAGES_DIR
    if opt.save_output:
        out_dir.mkdir()
    names = ['PSNR', 'SSIM'] + (['mask_SSIM'] if opt.masked else [])
    per_batch: dict[str, list[float]] = {k: [] for k in names}
    baseline: dict[str, list[float]] = {f'copy_source_{k}': [] for k in names}
    person_names = [*PERSON_METRICS, *(f'{r}_{k}' for r in PERSON_REFERENCES for k in PERSON_METRICS)]
    person_per_batch: dict[str, list[float]] = {k: [] for k in person_names}
    n_person_excluded = 0
    psnr, ssim = PSNR(), SSIM()
    total_time, n_batches = 0.0, 0
    for data in tqdm(_test_loader(test_set, opt), desc='test', disable=None):
        t0 = time.perf_counter()
        model.set_input(data)
        model.test(compute_loss=True, meas_only=True)
        total_time += time.perf_counter() - t0
        n_batches += 1
        errors = model.get_current_errors()
        for k in names:
            # float32 per batch before the float64 mean, as the original
            per_batch[k].append(float(np.float32(errors[k])))
        # Reference: the source image returned unchanged.
        img_1, img_2 = model.input['img_1'], model.input['img_2']
        baseline['copy_source_PSNR'].append(psnr(img_1, img_2))
        baseline['copy_source_SSIM'].append(ssim(img_1, img_2))
        if opt.masked:
            mask = get_pose_mask_batch(model.input['joint_c_2'].cpu(), tuple(img_2.shape[2:]),
                                       transposed=bool(opt.pose_mask_transposed)).to(img_2.device)
            baseline['copy_source_mask_SSIM'].append(ssim(img_1, img_2, mask=mask))
        person, n_excluded = person_region_batch(model.output['img_out'], model.input)
        n_person_excluded += n_excluded
        for k, v in person.items():
            person_per_batch[k].append(v)
        if opt.save_output:
            save_output_images(model.output['img_out'], model.input['id'], out_dir)
    if n_batches == 0:
        raise RuntimeError(f'split {opt.data_split!r} is empty')

    metrics = {k: float(np.mean(np.asarray(v, dtype=np.float64))) for k, v in per_batch.items()}
    metrics['sec_per_image'] = total_time / (bs * n_batches)
    line = _summary_line(opt, metrics)
    print(line)
    baselines = {k: float(np.mean(v)) for k, v in baseline.items()}
    person_line = None
    if n_person_excluded:
        print(f'person-region metrics: {n_person_excluded} of {len(test_set)} pairs left out (no body pixel in the '
              f'source or target segmentation)')
    if person_per_batch['person_SSIM']:
        # Batch means averaged over batches, as the original's metrics.
        person = {k: float(np.mean(np.asarray(v, dtype=np.float64))) for k, v in person_per_batch.items()}
        metrics.update({k: person[k] for k in PERSON_METRICS})
        baselines.update({k: person[k] for k in person_names if k not in PERSON_METRICS})
        person_line = _person_summary_line(opt, person)
        print(person_line)
    result.update({'n_pairs': len(test_set), 'n_batches': n_batches, 'metrics': metrics, 'baselines': baselines,
                   'person_region_excluded_pairs': n_person_excluded,
                   'output_dir': str(results.final_path(RESULTS_IMAGES_DIR)) if opt.save_output else None,
                   'summary': line,
                   'person_region_summary': person_line, 'options': opt.to_dict()})
    save_json(result, results.work / RESULTS_METRICS_FILE, indent=2)
    result['json'] = str(results.final_path(RESULTS_METRICS_FILE))
    return result


# Columns of the quick-start picture: source, target pose, output, target, predicted flow.
PICTURE_PANELS = ('img_1', 'joint_2', 'img_out', 'img_tar', 'flow_out')


def save_pose_picture(opt: Options, path: Path, n_pairs: int = 4,
                      panels: tuple[str, ...] = PICTURE_PANELS) -> Path:
    """A small picture of a pose-transfer model at work (the README's quick-start picture), written to ``path``.

    One row per pair, one column per visual panel of the model (``panels``, names of
    ``PoseTransferModel.get_current_visuals``). The ``n_pairs`` pairs are evenly spaced over ``opt.data_split`` (so
    they show different identities) and go through the model as one batch, with the test pass's BatchNorm mode
    (``opt.bn_mode``; in the default batch mode the generator normalises with the statistics of these pairs, so an
    output can differ slightly from the same pair's in the test pass). Returns ``path``.
    """
    model = PoseTransferModel(opt)
    dataset = create_dataset(opt, opt.data_split)
    if not 1 <= n_pairs <= len(dataset):
        raise ValueError(f'save_pose_picture: n_pairs must be 1..{len(dataset)} (the size of split '
                         f'{opt.data_split!r}), got {n_pairs}')
    indices = np.linspace(0, len(dataset) - 1, n_pairs).round().astype(int).tolist()
    data = next(iter(make_dataloader(Subset(dataset, indices), n_pairs, num_workers=0)))
    model.set_input(data)
    model.test(compute_loss=False)
    visuals = model.get_current_visuals()
    unknown = [name for name in panels if name not in visuals]
    if unknown:
        raise ValueError(f'save_pose_picture: panels {unknown} are not visuals of this model; it has {list(visuals)}')
    grid = make_visual_grid({name: visuals[name] for name in panels})
    path = Path(path)
    with atomic_target(path) as tmp:
        save_image(grid, tmp)  # the grid is already in [0, 1]
    return path
