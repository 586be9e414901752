"""warp_acc_flow against hand-computed values."""
from __future__ import annotations

import pytest
import torch

from util.flow_util import warp_acc_flow

# 3 x 4 image: value = 4 * row + col.
IMG = torch.arange(12.0).view(1, 1, 3, 4)


def const_flow(dx: float, dy: float, h: int = 3, w: int = 4, n: int = 1) -> torch.Tensor:
    flow = torch.empty(n, 2, h, w)
    flow[:, 0], flow[:, 1] = dx, dy
    return flow


def assert_close(actual: torch.Tensor, expected) -> None:
    assert torch.allclose(actual, torch.tensor(expected, dtype=actual.dtype), atol=1e-5), actual


def test_zero_flow_is_identity():
    x = torch.randn(2, 5, 7, 6)
    assert torch.allclose(warp_acc_flow(x, torch.zeros(2, 2, 7, 6)), x, atol=1e-6)
    one_col = torch.randn(1, 2, 5, 1)  # W = 1 (normalisation by max(W-1, 1))
    assert torch.allclose(warp_acc_flow(one_col, torch.zeros(1, 2, 5, 1)), one_col, atol=1e-6)


def test_integer_shift_x_reads_right_neighbour_and_zero_outside():
    out = warp_acc_flow(IMG, const_flow(1, 0))
    assert_close(out[0, 0], [[1, 2, 3, 0], [5, 6, 7, 0], [9, 10, 11, 0]])


def test_integer_shift_y_up():
    out = warp_acc_flow(IMG, const_flow(0, -2))
    assert_close(out[0, 0], [[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 2, 3]])


def test_subpixel_shift_mixes_bilinearly():
    out = warp_acc_flow(IMG, const_flow(0.25, 0))
    # 0.75 * x[c] + 0.25 * x[c+1]; the last column's right tap is outside (zero).
    expected = [[c + 0.25 + 4 * r if c < 3 else 0.75 * (4 * r + 3) for c in range(4)] for r in range(3)]
    assert_close(out[0, 0], expected)
    both = warp_acc_flow(IMG, const_flow(0.5, 0.5))
    assert both[0, 0, 0, 0].item() == pytest.approx((0 + 1 + 4 + 5) / 4, abs=1e-5)
    assert both[0, 0, 1, 2].item() == pytest.approx((6 + 7 + 10 + 11) / 4, abs=1e-5)


def test_half_weight_at_the_borders():
    left = warp_acc_flow(IMG, const_flow(-0.5, 0))
    assert left[0, 0, :, 0].tolist() == pytest.approx([0.0, 2.0, 4.0], abs=1e-5)  # 0.5 * x[r, 0]
    bottom = warp_acc_flow(IMG, const_flow(0, 0.5))
    assert bottom[0, 0, 2].tolist() == pytest.approx([4.0, 4.5, 5.0, 5.5], abs=1e-5)  # 0.5 * x[2, c]
    far = warp_acc_flow(IMG, const_flow(-1.5, 0))
    assert far[0, 0, :, 0].tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-5)


def test_per_pixel_and_per_sample_flow():
    x = IMG.repeat(2, 3, 1, 1)
    flow = torch.zeros(2, 2, 3, 4)
    flow[0, 0, 1, 2] = -2.0  # sample 0, pixel (x=2, y=1) reads (0, 1)
    flow[1, 1, 0, 3] = 2.0   # sample 1, pixel (x=3, y=0) reads (3, 2)
    out = warp_acc_flow(x, flow)
    assert out[0, :, 1, 2].tolist() == pytest.approx([4.0] * 3)
    assert out[1, :, 0, 3].tolist() == pytest.approx([11.0] * 3)
    changed = (out != x).any(dim=1)
    assert changed.sum() == 2


def test_mask_fills_with_mask_value():
    mask = torch.tensor([[1.0, 0.0, 0.6, 0.5]]).expand(3, 4).reshape(1, 1, 3, 4)
    x = IMG.repeat(1, 2, 1, 1)
    out = warp_acc_flow(x, const_flow(0, 0), mask=mask)
    assert (out[:, :, :, [1, 3]] == -1).all()  # mask <= 0.5, in every channel
    assert torch.allclose(out[:, :, :, [0, 2]], x[:, :, :, [0, 2]], atol=1e-6)
    custom = warp_acc_flow(x, const_flow(0, 0), mask=mask, mask_value=7.0)
    assert (custom[:, :, :, 1] == 7).all()


def test_nearest_mode():
    out = warp_acc_flow(IMG, const_flow(0.4, 0.6), mode='nearest')
    assert out[0, 0, 0].tolist() == pytest.approx([4, 5, 6, 7])


def test_shape_errors():
    with pytest.raises(ValueError, match='flow'):
        warp_acc_flow(IMG, torch.zeros(1, 3, 3, 4))
    with pytest.raises(ValueError, match='share batch and spatial size'):
        warp_acc_flow(IMG, torch.zeros(1, 2, 3, 5))
