"""Person-region metrics of the pose-transfer test pass (training.evaluation.person_region_batch)."""
from __future__ import annotations

import pytest
import torch

from metrics.person_region import flow_warp_reference, person_mask_from_seg, person_region_l1, person_region_ssim
from training.evaluation import person_region_batch
from util.flow_util import warp_acc_flow


def _batch(n: int = 3, h: int = 16, w: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    """A hand-made test batch: random images, a body box per image, a small constant flow, all visible."""
    g = torch.Generator().manual_seed(seed)
    seg_1, seg_2 = torch.zeros(n, 1, h, w), torch.zeros(n, 1, h, w)
    seg_1[:, :, 3:13, 3:9] = 2
    seg_2[:, :, 4:14, 2:8] = 3
    flow = torch.zeros(n, 2, h, w)
    flow[:, 0] = 1.0  # target pixel (x, y) comes from source (x + 1, y - 1)
    flow[:, 1] = -1.0
    vis = torch.where(seg_2 > 0, 0.0, 2.0)
    vis[:, :, 4, 2:8] = 1  # one row of the body hidden in the source
    return {'img_1': torch.rand(n, 3, h, w, generator=g) * 2 - 1, 'img_2': torch.rand(n, 3, h, w, generator=g) * 2 - 1,
            'flow_2to1': flow, 'vis_2': vis, 'seg_label_1': seg_1, 'seg_label_2': seg_2}


def test_person_region_batch_values_are_the_metrics_of_model_and_references():
    data = _batch()
    out = torch.rand(3, 3, 16, 12, generator=torch.Generator().manual_seed(1)) * 2 - 1
    values, n_excluded = person_region_batch(out, data)
    assert n_excluded == 0
    body = person_mask_from_seg(data['seg_label_2'])
    ref = flow_warp_reference(data['img_1'], data['flow_2to1'], data['vis_2'], data['seg_label_1'],
                              data['seg_label_2'], warp=warp_acc_flow)
    expected = {}
    for prefix, image in (('', out), ('copy_source_', data['img_1']), ('gt_flow_warp_', ref)):
        expected[f'{prefix}person_SSIM'] = float(person_region_ssim(image, data['img_2'], body).mean())
        expected[f'{prefix}person_L1'] = float(person_region_l1(image, data['img_2'], body).mean())
    assert values == pytest.approx(expected, abs=0)
    # An output equal to the target scores perfectly; the references are unchanged by the output.
    perfect, _ = person_region_batch(data['img_2'].clone(), data)
    assert perfect['person_SSIM'] == pytest.approx(1.0) and perfect['person_L1'] == 0
    references = [k for k in expected if k.startswith(('copy_source_', 'gt_flow_warp_'))]
    assert len(references) == 4 and all(perfect[k] == values[k] for k in references)


def test_pairs_without_a_body_are_left_out_of_every_value():
    data = _batch()
    out = torch.rand(3, 3, 16, 12, generator=torch.Generator().manual_seed(1)) * 2 - 1
    kept_values, _ = person_region_batch(out[[0, 2]], {k: v[[0, 2]] for k, v in data.items()})
    data['seg_label_1'][1] = 0  # no body in the source of pair 1: no colour to fill the hidden target pixels
    values, n_excluded = person_region_batch(out, data)
    assert n_excluded == 1 and values == pytest.approx(kept_values, abs=0)
    data['seg_label_2'][[0, 2]] = 0  # no target body anywhere in the batch
    assert person_region_batch(out, data) == ({}, 3)
