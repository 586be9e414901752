"""Test passes of both stages (SPEC §9.1, §9.3): the scripts call these.

The pose-transfer test keeps the original's semantics by default: batch size from the test command line (8),
split order, last partial batch kept, netG/netPW normalising with batch statistics, metrics averaged per batch and
then over batches. Results are printed as the original's summary line and written as JSON.
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
from tqdm import tqdm

from util.io import save_json
from util.metrics.psnr import PSNR
from util.metrics.ssim import SSIM, to_uint8
from util.pose_util import get_pose_mask_batch
from util.training import collect_visuals, evaluate, options_to_dict
from util.visualizer import save_visual_grid


def _loader(dataset, opt) -> DataLoader:
    # Test loaders: no shuffling, keep the last partial batch (SPEC §8.6).
    return DataLoader(dataset, batch_size=opt.batch_size, shuffle=False, num_workers=opt.num_workers,
                      drop_last=False)


def _prefix(dataset, n: int):
    return Subset(dataset, range(min(n, len(dataset))))


def _summary_line(opt, metrics: dict[str, float]) -> str:
    body = '  '.join(f'{k}: {v:.4f}' for k, v in metrics.items())
    return f'[model_id: {opt.id}  epoch: {opt.which_epoch}]  {body}'


def run_flow_test(opt) -> dict[str, Any]:
    """Evaluate a flow regression model on ``opt.data_split`` (default ``test``): EPE and losses, visual grid."""
    from data.data_loader import create_dataset
    from models.flow_regression_model import FlowRegressionModel

    model = FlowRegressionModel(opt)
    model.eval_mode()
    dataset = create_dataset(opt, 'test')
    expr_dir = Path(opt.checkpoints_dir) / opt.id
    vis_path = None
    if opt.n_vis > 0:
        n_batches = min(math.ceil(opt.n_vis / opt.batch_size), math.ceil(len(dataset) / opt.batch_size))
        vis_path = expr_dir / 'vis' / f'test_epoch{opt.which_epoch}.jpg'
        save_visual_grid(vis_path, collect_visuals(model, _loader(_prefix(dataset, n_batches * opt.batch_size), opt),
                                                   n_batches))
    metrics = evaluate(model, _loader(dataset, opt), desc='test')
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


def run_pose_test(opt) -> dict[str, Any]:
    """Generate ``opt.data_split``, compute SSIM/PSNR (+ masked SSIM), save outputs and the visual grid."""
    from data.data_loader import create_dataset
    from models.pose_transfer_model import PoseTransferModel

    model = PoseTransferModel(opt)
    dataset = create_dataset(opt, opt.data_split)
    expr_dir = Path(opt.checkpoints_dir) / opt.id
    bs = opt.batch_size

    # Visualisation of the first n_vis samples (clamped to the split, SPEC §14.7).
    vis_path = None
    if opt.n_vis > 0:
        n_batches = min(math.ceil(opt.n_vis / bs), math.ceil(len(dataset) / bs))
        vis_path = expr_dir / 'vis' / f'test_epoch{opt.which_epoch}.jpg'
        save_visual_grid(vis_path, collect_visuals(model, _loader(_prefix(dataset, n_batches * bs), opt), n_batches))

    result: dict[str, Any] = {'id': opt.id, 'which_epoch': opt.which_epoch, 'split': opt.data_split,
                              'bn_mode': opt.bn_mode, 'batch_size': bs,
                              'visual_grid': str(vis_path) if vis_path else None}
    if opt.n_test_batch == 0:
        return result

    # Test pass.
    test_set = dataset if opt.n_test_batch < 0 else _prefix(dataset, opt.n_test_batch * bs)
    out_dir = expr_dir / opt.output_dir
    if opt.save_output:
        out_dir.mkdir(parents=True, exist_ok=True)
    names = ['PSNR', 'SSIM'] + (['mask_SSIM'] if opt.masked else [])
    per_batch: dict[str, list[float]] = {k: [] for k in names}
    baseline: dict[str, list[float]] = {f'copy_source_{k}': [] for k in names}
    psnr, ssim = PSNR(), SSIM()
    total_time, n_batches = 0.0, 0
    for data in tqdm(_loader(test_set, opt), desc='test', disable=None):
        t0 = time.perf_counter()
        model.set_input(data)
        model.test(compute_loss=True, meas_only=True)
        total_time += time.perf_counter() - t0
        n_batches += 1
        errors = model.get_current_errors()
        for k in names:
            # float32 per batch before the float64 mean, as the original (SPEC §14.3)
            per_batch[k].append(float(np.float32(errors[k])))
        # Reference: the source image returned unchanged.
        img_1, img_2 = model.input['img_1'], model.input['img_2']
        baseline['copy_source_PSNR'].append(psnr(img_1, img_2))
        baseline['copy_source_SSIM'].append(ssim(img_1, img_2))
        if opt.masked:
            mask = get_pose_mask_batch(model.input['joint_c_2'].cpu(), tuple(img_2.shape[2:]),
                                       transposed=bool(opt.pose_mask_transposed)).to(img_2.device)
            baseline['copy_source_mask_SSIM'].append(ssim(img_1, img_2, mask=mask))
        if opt.save_output:
            save_output_images(model.output['img_out'], model.input['id'], out_dir)
    if n_batches == 0:
        raise RuntimeError(f'split {opt.data_split!r} is empty')

    metrics = {k: float(np.mean(np.asarray(v, dtype=np.float64))) for k, v in per_batch.items()}
    metrics['sec_per_image'] = total_time / (bs * n_batches)
    line = _summary_line(opt, metrics)
    print(line)
    result.update({'n_pairs': len(test_set), 'n_batches': n_batches, 'metrics': metrics,
                   'baselines': {k: float(np.mean(v)) for k, v in baseline.items()},
                   'output_dir': str(out_dir) if opt.save_output else None, 'summary': line,
                   'options': options_to_dict(opt)})
    json_path = expr_dir / f'test_metrics_{opt.data_split}_epoch{opt.which_epoch}.json'
    save_json(result, json_path, indent=2)
    result['json'] = str(json_path)
    print(f'metrics written to {json_path}')
    return result
