"""Person-region SSIM / L1 and the ground-truth-flow reference, on hand-made tensors and on synthetic people."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from data.synthetic import DemoConfig, make_scene
from data.synthetic.render import correspondence, render
from util.flow_util import warp_acc_flow
from util.flow_util import corr_to_flow
from metrics.person_region import (PersonRegionL1, PersonRegionSSIM, flow_warp_reference, mean_body_color,
                                        person_mask_from_seg, person_region_l1, person_region_ssim)
from metrics.ssim import SSIM, to_uint8


def _from_uint8(x: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> float ``[N, 3, H, W]`` in [-1, 1] that :func:`to_uint8` maps back exactly."""
    return torch.from_numpy((x.astype(np.float64) + 0.5) / 127.5 - 1).permute(0, 3, 1, 2).float()


def _seg(h: int, w: int, boxes: list[tuple[int, int, int, int]], label: int = 2) -> torch.Tensor:
    """``[N, 1, H, W]`` float labels with one body box ``(y0, y1, x0, x1)`` per image."""
    seg = torch.zeros(len(boxes), 1, h, w)
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        seg[i, 0, y0:y1, x0:x1] = label
    return seg


def test_person_mask_from_seg() -> None:
    seg = torch.tensor([[[0., 1., 6.], [0., 3., 0.]]])  # [1, 2, 3]: the [N, H, W] form
    mask = person_mask_from_seg(seg)
    assert mask.shape == (1, 1, 2, 3) and mask.dtype == torch.float32
    assert mask[0, 0].tolist() == [[0, 1, 1], [0, 1, 0]]
    assert person_mask_from_seg(seg.to(torch.uint8)[:, None]).dtype == torch.float32
    assert person_mask_from_seg(seg.double()[:, None]).dtype == torch.float64
    with pytest.raises(ValueError, match='one-hot'):
        person_mask_from_seg(torch.zeros(2, 7, 4, 4))
    with pytest.raises(ValueError, match='whole numbers'):
        person_mask_from_seg(torch.full((1, 1, 2, 2), 0.5))
    with pytest.raises(ValueError, match='negative'):
        person_mask_from_seg(torch.full((1, 1, 2, 2), -1.0))


def test_person_region_l1_counts_only_body_pixels() -> None:
    h, w = 16, 12
    rng = np.random.default_rng(0)
    target = rng.integers(0, 200, (2, h, w, 3), dtype=np.uint8)
    image = target.copy()
    seg = _seg(h, w, [(2, 10, 3, 7), (0, 16, 0, 1)])
    body = person_mask_from_seg(seg)[:, 0].numpy().astype(bool)
    image[~body] = 255 - image[~body]  # the background differs a lot and must not count
    image[0][body[0]] += np.array([10, 0, 5], np.uint8)  # mean 5 over the channels
    image[1][body[1]] += 30
    l1 = person_region_l1(_from_uint8(image), _from_uint8(target), person_mask_from_seg(seg))
    assert l1.dtype == torch.float64 and l1.shape == (2,)
    np.testing.assert_allclose(l1.numpy(), [5.0, 30.0], rtol=0, atol=1e-12)
    assert PersonRegionL1()(_from_uint8(image), _from_uint8(target), seg) == pytest.approx(17.5, abs=1e-12)
    # Truncation to uint8 as for SSIM/PSNR: 10.9 grey levels count as 10.
    frac = torch.full((1, 3, h, w), 10.9 / 127.5 - 1)
    zero = torch.full((1, 3, h, w), -1.0)
    assert person_region_l1(frac, zero, person_mask_from_seg(seg[:1])).item() == 10.0


def test_person_region_ssim_ignores_the_background_and_matches_skimage() -> None:
    h, w = 32, 24
    rng = np.random.default_rng(1)
    target = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    seg = _seg(h, w, [(4, 28, 6, 18), (10, 20, 2, 9)])
    mask = person_mask_from_seg(seg)
    body = mask[:, 0].numpy().astype(bool)
    other_background = target.copy()
    other_background[~body] = rng.integers(0, 256, (int((~body).sum()), 3), dtype=np.uint8)
    assert person_region_ssim(_from_uint8(other_background), _from_uint8(target), mask).tolist() == [1.0, 1.0]
    noisy = other_background.copy()
    noisy[body] = np.clip(noisy[body].astype(int) + rng.integers(-60, 61, noisy[body].shape), 0, 255)
    got = person_region_ssim(_from_uint8(noisy), _from_uint8(target), mask)
    assert got.dtype == torch.float64 and (got < 0.97).all()
    # Reference: scikit-image's full SSIM map of the masked images, averaged over the body pixels.
    for i in range(2):
        a = noisy[i] * body[i][..., None]
        b = target[i] * body[i][..., None]
        _, smap = structural_similarity(a, b, channel_axis=-1, data_range=255, full=True)
        assert got[i].item() == pytest.approx(smap[body[i]].mean(), abs=1e-10)
    assert PersonRegionSSIM()(_from_uint8(noisy), _from_uint8(target), seg) == pytest.approx(got.mean().item())
    # The whole-image masked SSIM counts the zeroed background as a perfect match: higher, and higher
    # still for the smaller person (image 1).
    masked = [SSIM()(_from_uint8(noisy[i:i + 1]), _from_uint8(target[i:i + 1]), mask[i:i + 1]) for i in range(2)]
    assert masked[0] > got[0].item() and masked[1] > got[1].item()
    assert masked[1] - got[1].item() > masked[0] - got[0].item()


def test_empty_body_is_an_error() -> None:
    img = torch.zeros(2, 3, 8, 8)
    seg = _seg(8, 8, [(0, 4, 0, 4), (0, 0, 0, 0)])
    for fn in (person_region_l1, person_region_ssim):
        with pytest.raises(ValueError, match=r'images \[1\] of the batch have no body pixels'):
            fn(img, img, person_mask_from_seg(seg))
    with pytest.raises(ValueError, match='no body pixels'):
        mean_body_color(img, person_mask_from_seg(seg))


def test_mean_body_color() -> None:
    img = torch.zeros(1, 3, 2, 2)
    img[0, :, 0, 0] = torch.tensor([1.0, -1.0, 0.5])
    img[0, :, 1, 1] = torch.tensor([0.0, 0.0, 0.5])
    img[0, :, 0, 1] = 7.0  # background
    seg = torch.tensor([[[[3., 0.], [0., 1.]]]])
    color = mean_body_color(img, person_mask_from_seg(seg))
    assert color.shape == (1, 3, 1, 1)
    assert color.flatten().tolist() == [0.5, -0.5, 0.5]


def test_flow_warp_reference_by_hand() -> None:
    """4x4 source; target row 1 reads the source one pixel to the right; hand-computed expectation."""
    h = w = 4
    src = torch.arange(3 * h * w, dtype=torch.float32).view(1, 3, h, w) / 48.0 - 0.5
    seg_1 = torch.zeros(1, 1, h, w)
    seg_1[0, 0, 1:3, 1:3] = 2  # source body: 2x2 block
    seg_2 = torch.zeros(1, 1, h, w)
    seg_2[0, 0, 1, 0:4] = 2  # target body: row 1
    vis = torch.full((1, 1, h, w), 2.0)
    vis[0, 0, 1] = torch.tensor([0.0, 0.0, 1.0, 2.0])  # visible, visible, hidden, no correspondence
    flow = torch.zeros(1, 2, h, w)
    flow[0, 0, 1, 0:3] = 1.0  # x + 1 on the body pixels with a correspondence
    calls = []

    def warp(x, f):
        calls.append(f)
        return warp_acc_flow(x, f)

    ref = flow_warp_reference(src, flow, vis, seg_1, seg_2, warp)
    assert len(calls) == 1 and ref.shape == src.shape
    mean = src[0, :, 1:3, 1:3].mean(dim=(1, 2))
    expected = src.clone()  # background: flow 0, the source itself
    expected[0, :, 1, 0] = src[0, :, 1, 1]
    expected[0, :, 1, 1] = src[0, :, 1, 2]
    expected[0, :, 1, 2] = mean
    expected[0, :, 1, 3] = mean
    torch.testing.assert_close(ref, expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match='0, 1, 2'):
        flow_warp_reference(src, flow, vis * 0.5, seg_1, seg_2, warp_acc_flow)


def test_flow_warp_reference_on_synthetic_people() -> None:
    """Exact ground truth: the reference beats copy-source on the person and is near-perfect where visible."""
    config = DemoConfig(seed=4, image_size=(128, 64), n_train_identities=3, n_test_identities=1,
                        images_per_identity=2)
    srcs, tgts, flows, viss, segs_1, segs_2 = [], [], [], [], [], []
    for index in range(config.n_identities):
        scene = make_scene(config, index)
        r1, r2 = (render(scene.ident, f, config.image_size) for f in scene.frames)
        corr, vis = correspondence(scene.ident, r2, scene.frames[0], config.image_size)
        srcs.append(r1['image'] * 2 - 1)
        tgts.append(r2['image'] * 2 - 1)
        flows.append(corr_to_flow(corr, vis))
        viss.append(vis)
        segs_1.append(r1['seg'])
        segs_2.append(r2['seg'])

    def chw(x):
        t = torch.from_numpy(np.stack(x)).float()
        return t.permute(0, 3, 1, 2) if t.dim() == 4 else t[:, None]

    src, tgt, flow, vis, seg_1, seg_2 = map(chw, (srcs, tgts, flows, viss, segs_1, segs_2))
    ref = flow_warp_reference(src, flow, vis, seg_1, seg_2, warp_acc_flow)
    body = person_mask_from_seg(seg_2)
    ref_ssim, copy_ssim = person_region_ssim(ref, tgt, body), person_region_ssim(src, tgt, body)
    ref_l1, copy_l1 = person_region_l1(ref, tgt, body), person_region_l1(src, tgt, body)
    # Pairs whose target is mostly hidden in the source (e.g. front to back) gain less than the others.
    assert (ref_ssim > copy_ssim).all() and (ref_ssim - copy_ssim).mean() > 0.2, (ref_ssim, copy_ssim)
    assert (ref_l1 < copy_l1).all() and ref_l1.mean() < 0.6 * copy_l1.mean(), (ref_l1, copy_l1)
    # On visible pixels only bilinear resampling separates the reference from the target.
    visible = (vis == 0).expand_as(ref)
    err = (to_uint8(ref).permute(0, 3, 1, 2).double() - to_uint8(tgt).permute(0, 3, 1, 2).double()).abs()
    assert err[visible].mean() < 10.0
