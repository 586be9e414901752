"""Evaluation passes: validation during training, the flow test and the pose-transfer test, visual grids.

The pose-transfer test keeps the original's semantics by default: batch size from the test command line (8),
split order, last partial batch kept, netG/netPW normalising with batch statistics, metrics averaged per batch and
then over batches. Results are printed as the original's summary line and written as JSON. The pose-transfer test
adds, on a second line and in the JSON, metrics of the person only (inside the target's ground-truth body mask) for
the model and two references on the same pairs: the source returned unchanged, and the source warped with the
ground-truth flow.
"""
from __future__ import annotations

import math
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
from metrics.person_region import (flow_warp_reference, person_mask_from_seg, person_region_l1,
                                   person_region_ssim)
from metrics.psnr import PSNR
from metrics.ssim import SSIM, to_uint8
from models.base_model import BaseModel
from models.flow_regression_model import FlowRegressionModel
from models.pose_transfer_model import PoseTransferModel
from options.base_options import Options
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
    """Evaluate a flow regression model on ``opt.data_split`` (default ``test``): EPE and losses, visual grid."""
    model = FlowRegressionModel(opt)
    model.eval_mode()
    dataset = create_dataset(opt, 'test')
    expr_dir = opt.expr_dir
    loader = _test_loader(dataset, opt)
    vis_path = save_sample_grid(model, loader, opt.n_vis, expr_dir / 'vis' / f'test_epoch{opt.which_epoch}.jpg')
    metrics = evaluate(model, loader, desc='test')
    ordered = {k: metrics[k] for k in ('EPE', 'loss_flow', 'loss_vis', 'loss_flow_ss', 'zero_flow_EPE') if k in metrics}
    line = _summary_line(opt, ordered)
    print(line)
    result = {'id': opt.id, 'which_epoch': opt.which_epoch, 'split': 'test', 'n_pairs': len(dataset),
              'metrics': metrics, 'visual_grid': str(vis_path) if vis_path else None, 'summary': line}
    save_json(result, expr_dir / f'test_metrics_epoch{opt.which_epoch}.json', indent=2)
    return result


def save_output_images(images: torch.Tensor, ids: list[tuple[str, str]], out_dir: Path) -> None:
    """Write ``[N, 3, H, W]`` images in [-1, 1] as ``<id_1>_<id_2>.jpg`` (uint8 by truncation, OpenCV quality 95)."""
    arrays = to_uint8(images).cpu().numpy()
    for arr, (id_1, id_2) in zip(arrays, ids):
        path = out_dir / f'{id_1}_{id_2}.jpg'
        if not cv2.imwrite(str(path), np.ascontiguousarray(arr[:, :, ::-1])):
            raise OSError(f'could not write {path}')


def run_pose_test(opt: Options) -> dict[str, Any]:
    """Generate ``opt.data_split``, compute SSIM/PSNR (+ masked SSIM), save outputs and the visual grid."""
    model = PoseTransferModel(opt)
    dataset = create_dataset(opt, opt.data_split)
    expr_dir = opt.expr_dir
    bs = opt.batch_size

    # Visualisation of the first n_vis samples (whole batches, clamped to the split).
    vis_path = save_sample_grid(model, _test_loader(dataset, opt), opt.n_vis,
                                expr_dir / 'vis' / f'test_epoch{opt.which_epoch}.jpg')

    result: dict[str, Any] = {'id': opt.id, 'which_epoch': opt.which_epoch, 'split': opt.data_split,
                              'bn_mode': opt.bn_mode, 'batch_size': bs,
                              'visual_grid': str(vis_path) if vis_path else None}
    if opt.n_test_batch == 0:
        return result

    # Test pass.
    test_set = dataset if opt.n_test_batch < 0 else Subset(dataset, range(min(opt.n_test_batch * bs, len(dataset))))
    out_dir = expr_dir / opt.output_dir
    if opt.save_output:
        out_dir.mkdir(parents=True, exist_ok=True)
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
                   'output_dir': str(out_dir) if opt.save_output else None, 'summary': line,
                   'person_region_summary': person_line, 'options': opt.to_dict()})
    json_path = expr_dir / f'test_metrics_{opt.data_split}_epoch{opt.which_epoch}.json'
    save_json(result, json_path, indent=2)
    result['json'] = str(json_path)
    print(f'metrics written to {json_path}')
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
