"""Self-check of a generated dataset: the ground-truth flow must reproduce the target image.

For a sample of pairs, image 1 is warped with the stored flow (``corr`` from the ``.corr`` file,
``util.flow_util.warp_acc_flow``, bilinear) and compared with image 2 on the visible pixels
(vis 0). This holds by construction up to resampling: the same surface point has the same colour in
both images. Two images are checked: the renders regenerated in memory from the manifest's parameters
(exact colours) and the JPEG files on disk (adds compression error). "Interior" pixels are visible
pixels whose four bilinear taps all fall on the same body part in the source, i.e. the error left
when silhouettes and occlusion boundaries are excluded.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

from data.synthetic.generate import (CORR_DIR, FN_SPLIT, IMG_DIR, DemoConfig, make_scene, parse_image_id,
                                     read_manifest)
from data.synthetic.render import correspondence, render
from util.flow_util import warp_acc_flow
from util.flow_util import corr_to_flow, read_corr
from util.io import load_json


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'cannot read image {path}')
    return img[:, :, ::-1].astype(np.float64) / 255.0


def self_check(root: str | os.PathLike, n_pairs: int = 64) -> dict:
    """Warp image 1 with the stored ground truth of ``n_pairs`` pairs (evenly spread over train + test).

    Returns (errors in [0, 255] units, mean over pixels and channels):
        ``mae_visible_memory`` / ``mae_visible_jpeg``: on all vis-0 pixels;
        ``mae_interior_memory`` / ``mae_interior_jpeg``: on vis-0 pixels away from part boundaries;
        ``jpeg_vs_render_mae``: JPEG files vs. the in-memory renders (all pixels);
        ``corr_max_abs_diff``: stored vs. recomputed correspondence (0 unless files are stale/corrupt);
        ``vis_mismatch``: pixels whose stored visibility differs from the recomputed one;
        ``vis0_fraction`` / ``vis1_fraction``: of body pixels (vis < 2); ``pairs_with_vis1``; ``n_pairs``.
    """
    root = Path(root)
    config = DemoConfig.from_dict(read_manifest(root)['config'])
    split = load_json(root / FN_SPLIT)
    pairs = split['train'] + split['test']
    if n_pairs <= 0 or not pairs:
        raise ValueError(f'self_check: need n_pairs > 0 and a non-empty split in {root / FN_SPLIT}')
    picks = np.unique(np.round(np.linspace(0, len(pairs) - 1, min(n_pairs, len(pairs)))).astype(int))
    chosen = [pairs[k] for k in picks]
    by_identity: dict[int, list] = defaultdict(list)
    for id1, id2 in chosen:
        by_identity[parse_image_id(id1)[0]].append((id1, id2))
    h, w = config.image_size
    sums = defaultdict(float)
    counts = defaultdict(int)
    corr_diff, vis_mismatch, pairs_with_vis1 = 0.0, 0, 0
    for identity, id_pairs in sorted(by_identity.items()):
        scene = make_scene(config, identity)
        renders = {img_id: render(scene.ident, f, config.image_size) for img_id, f in zip(scene.ids, scene.frames)}
        frames = dict(zip(scene.ids, scene.frames))
        for id1, id2 in id_pairs:
            corr, vis = read_corr(root / CORR_DIR / f'{id2}_{id1}.corr')
            vis = vis[:, :, 0]
            ref_corr, ref_vis = correspondence(scene.ident, renders[id2], frames[id1], config.image_size)
            corr_diff = max(corr_diff, float(np.abs(corr - ref_corr).max()))
            vis_mismatch += int((vis != ref_vis).sum())
            flow = torch.from_numpy(corr_to_flow(corr, vis)).permute(2, 0, 1)[None].double()
            src = np.stack([renders[id1]['image'], _read_rgb(root / IMG_DIR / f'{id1}.jpg')])
            tgt = np.stack([renders[id2]['image'], _read_rgb(root / IMG_DIR / f'{id2}.jpg')])
            warped = warp_acc_flow(torch.from_numpy(src).permute(0, 3, 1, 2), flow.expand(2, -1, -1, -1))
            err = np.abs(warped.permute(0, 2, 3, 1).numpy() - tgt).mean(axis=3) * 255.0  # [2, H, W]
            # Interior: the four bilinear taps in the source all show the target pixel's part.
            src_part = renders[id1]['part']
            x0 = np.clip(np.floor(corr[..., 0]).astype(int), 0, w - 2)
            y0 = np.clip(np.floor(corr[..., 1]).astype(int), 0, h - 2)
            part2 = renders[id2]['part']
            same = np.ones((h, w), bool)
            for dy in (0, 1):
                for dx in (0, 1):
                    same &= src_part[y0 + dy, x0 + dx] == part2
            visible = vis == 0
            interior = visible & same
            for name, m in (('visible', visible), ('interior', interior)):
                sums[f'{name}_memory'] += float(err[0][m].sum())
                sums[f'{name}_jpeg'] += float(err[1][m].sum())
                counts[name] += int(m.sum())
            sums['jpeg_vs_render'] += float(np.abs(src[1] - src[0]).mean() * 255.0)
            counts['vis0'] += int(visible.sum())
            counts['vis1'] += int((vis == 1).sum())
            pairs_with_vis1 += int((vis == 1).any())
    body = max(counts['vis0'] + counts['vis1'], 1)
    return dict(
        n_pairs=len(chosen),
        mae_visible_memory=sums['visible_memory'] / max(counts['visible'], 1),
        mae_visible_jpeg=sums['visible_jpeg'] / max(counts['visible'], 1),
        mae_interior_memory=sums['interior_memory'] / max(counts['interior'], 1),
        mae_interior_jpeg=sums['interior_jpeg'] / max(counts['interior'], 1),
        jpeg_vs_render_mae=sums['jpeg_vs_render'] / len(chosen),
        corr_max_abs_diff=corr_diff,
        vis_mismatch=vis_mismatch,
        vis0_fraction=counts['vis0'] / body,
        vis1_fraction=counts['vis1'] / body,
        pairs_with_vis1=pairs_with_vis1,
    )
