"""Losses against hand-computed values and independent reference computations."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision

from models.losses import (EPE, L1, L2, VGG19_WEIGHTS_FILE, VGG_SLICES, GANLoss, MultiScaleFlowLoss,
                           SS_FlowLoss, VGGLoss, load_vgg19_features, random_vgg19_features, shifted_gram,
                           visibility_loss)


def _flow(vectors: list[list[tuple[float, float]]]) -> torch.Tensor:
    """[N][pixels] of (u, v) on a 1 x P image -> [N, 2, 1, P]."""
    return torch.tensor(vectors, dtype=torch.float32).permute(0, 2, 1).unsqueeze(2)


# ---------------------------------------------------------------------------------------------
# EPE / L1 / L2
# ---------------------------------------------------------------------------------------------

def test_epe_masked_known_vectors():
    # Errors (target - input): sample 0 -> norms 5, 13, 1, 10 ; sample 1 -> norms 2, 3, 4, 5.
    inp = _flow([[(0, 0), (1, 1), (0, 0), (2, 2)], [(0, 0), (0, 0), (0, 0), (0, 0)]])
    tar = _flow([[(3, 4), (6, 13), (1, 0), (8, 10)], [(2, 0), (0, 3), (0, -4), (3, 4)]])
    mask = torch.tensor([[1, 1, 0, 1], [0, 1, 0, 0]], dtype=torch.float32).view(2, 1, 1, 4)
    # Sample 0: (5 + 13 + 10) / (3 * 2); sample 1: 3 / (1 * 2).
    expected = 28 / (6 + 1e-8) + 3 / (2 + 1e-8)
    assert EPE()(inp, tar, mask).item() == pytest.approx(expected, rel=1e-6)
    assert L2()(inp, tar, mask).item() == pytest.approx(expected, rel=1e-6)


def test_l1_normalisation_counts_both_channels():
    inp = _flow([[(0, 0), (1, -1), (0, 0)], [(0, 0), (0, 0), (0, 0)]])
    tar = _flow([[(3, 4), (0, 1), (5, 5)], [(1, 2), (0, 0), (0, 0)]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.float32).view(2, 1, 1, 3)
    # Sample 0: (|3|+|4| + |-1|+|2|) / (2 px * B=2 * 2 ch); sample 1: (1 + 2) / (3 * 2 * 2).
    expected = 10 / 8 + 3 / 12
    assert L1()(inp, tar, mask).item() == pytest.approx(expected, rel=1e-6)


def test_empty_mask_sample_contributes_zero_without_nan():
    inp = torch.zeros(2, 2, 3, 3, requires_grad=True)
    tar = torch.ones(2, 2, 3, 3)
    mask = torch.zeros(2, 1, 3, 3)
    mask[0, 0, 1, 1] = 1
    for crit, per_px in ((EPE(), math.sqrt(2)), (L1(), 2 / 2)):
        loss = crit(inp, tar, mask)
        assert loss.item() == pytest.approx(per_px / 2, rel=1e-6)
        (grad,) = torch.autograd.grad(loss, inp)
        assert torch.isfinite(grad).all()
        assert grad[1].abs().sum() == 0


def test_epe_gradient_at_zero_error_is_finite():
    x = torch.zeros(1, 2, 2, 2, requires_grad=True)
    EPE()(x, torch.zeros(1, 2, 2, 2), torch.ones(1, 1, 2, 2)).backward()
    assert torch.isfinite(x.grad).all()


def test_flow_criteria_reject_bad_shapes():
    with pytest.raises(ValueError, match='mask'):
        EPE()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match='same shape'):
        L1()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 3), torch.zeros(1, 1, 4, 4))


# ---------------------------------------------------------------------------------------------
# Multi-scale flow loss
# ---------------------------------------------------------------------------------------------

def _block_pool(x: torch.Tensor, k: int, op) -> torch.Tensor:
    """Reference kernel=stride=k pooling by explicit loops over output cells."""
    n, c, h, w = x.shape
    out = torch.empty(n, c, h // k, w // k)
    for i in range(h // k):
        for j in range(w // k):
            out[:, :, i, j] = op(x[:, :, i * k:(i + 1) * k, j * k:(j + 1) * k].reshape(n, c, -1))
    return out


def _ref_epe(inp, tar, mask):
    b = inp.size(0)
    total = 0.0
    for i in range(b):
        err = ((tar[i] - inp[i]) ** 2).sum(0).sqrt()
        total += float((err * mask[i, 0]).sum() / (mask[i].sum() * b + 1e-8))
    return total


def _ref_l1(inp, tar, mask):
    b = inp.size(0)
    return sum(float(((tar[i] - inp[i]).abs() * mask[i]).sum() / (mask[i].sum() * b * 2 + 1e-8)) for i in range(b))


@pytest.mark.parametrize('loss_type,ref', [('l2', _ref_epe), ('l1', _ref_l1)])
def test_multiscale_loss_matches_manual_pyramid(loss_type, ref):
    g = torch.Generator().manual_seed(0)
    flow_tar = torch.randn(2, 2, 16, 8, generator=g) * 10
    mask_tar = (torch.rand(2, 1, 16, 8, generator=g) > 0.8).float()
    pyramid = [torch.randn(2, 2, 8, 4, generator=g), torch.randn(2, 2, 4, 2, generator=g),
               torch.randn(2, 2, 2, 1, generator=g)]
    expected = 0.0
    for k, (pred, weight) in enumerate(zip(pyramid, (0.32, 0.16, 0.08))):
        size = 2 * 2 ** k
        tar_k = _block_pool(0.05 * flow_tar, size, lambda v: v.mean(-1))
        mask_k = _block_pool(mask_tar, size, lambda v: v.max(-1).values)
        expected += weight * ref(pred, tar_k, mask_k)
    loss = MultiScaleFlowLoss(start_scale=2, num_scale=3, loss_type=loss_type)(pyramid, flow_tar, mask_tar)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_multiscale_weights_closed_form():
    # Constant target c, zero predictions, full mask: every level's EPE is 0.05·|c| -> Σ_k 0.32/2^k.
    flow_tar = torch.zeros(1, 2, 64, 32)
    flow_tar[:, 0], flow_tar[:, 1] = 6.0, 8.0
    pyramid = [torch.zeros(1, 2, 32 // 2 ** k, 16 // 2 ** k) for k in range(5)]
    loss = MultiScaleFlowLoss()(pyramid, flow_tar, torch.ones(1, 1, 64, 32))
    assert loss.item() == pytest.approx((0.32 + 0.16 + 0.08 + 0.04 + 0.02) * 0.05 * 10, rel=1e-6)


def test_multiscale_mask_is_max_pooled():
    # One mask pixel makes its whole 2x2 cell count at level 0 and its 4x4 cell at level 1.
    flow_tar = torch.zeros(1, 2, 8, 8)
    flow_tar[0, 0, 0:2, 0:2] = torch.tensor([[20.0, 40.0], [60.0, 80.0]])   # cell mean 50 -> 2.5 at level 0
    mask = torch.zeros(1, 1, 8, 8)
    mask[0, 0, 1, 1] = 1
    pyramid = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2, 2)]
    loss = MultiScaleFlowLoss(num_scale=2, loss_type='l1')(pyramid, flow_tar, mask)
    # Level 0: one masked cell, |2.5| / (1·1·2); level 1: 4x4 cell mean of x-flow = 200/16 = 12.5 -> 0.625.
    assert loss.item() == pytest.approx(0.32 * 2.5 / 2 + 0.16 * 0.625 / 2, rel=1e-6)


def test_multiscale_rejects_mismatched_sizes():
    loss = MultiScaleFlowLoss(num_scale=2)
    flow_tar, mask = torch.zeros(1, 2, 16, 16), torch.ones(1, 1, 16, 16)
    with pytest.raises(ValueError, match='level 1'):
        loss([torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8)], flow_tar, mask)
    with pytest.raises(ValueError, match='num_scale=2'):
        loss([torch.zeros(1, 2, 8, 8)], flow_tar, mask)
    with pytest.raises(ValueError, match='loss_type'):
        MultiScaleFlowLoss(loss_type='l3')


# ---------------------------------------------------------------------------------------------
# Segmentation-sensitive flow loss
# ---------------------------------------------------------------------------------------------

def _two_part_scene():
    """4x4 image; body part 1 in columns 0-1, part 2 in columns 2-3, background in row 3 of seg_2."""
    labels_1 = torch.tensor([[1, 1, 2, 2]] * 4)
    labels_2 = torch.tensor([[1, 1, 2, 2]] * 3 + [[0, 0, 0, 0]])
    seg_1 = F.one_hot(labels_1, 3).permute(2, 0, 1).float()[None]
    seg_2 = F.one_hot(labels_2, 3).permute(2, 0, 1).float()[None]
    return seg_1, seg_2


def test_ss_flow_loss_penalises_only_pixels_leaving_their_part():
    seg_1, seg_2 = _two_part_scene()
    flow_out = torch.zeros(1, 2, 4, 4)
    flow_out[0, 0, 0, 1] = 2.0    # part-1 pixel lands in part 2 -> penalised
    flow_out[0, 1, 1, 2] = -5.0   # part-2 pixel leaves the image -> penalised
    flow_out[0, 0, 2, 1] = 0.5    # lands half on part 1 (bilinear weight > 0) -> not penalised
    flow_out[0, 0, 2, 3] = -3.0   # part-2 pixel lands in part 1 but is invisible (vis 1) -> not penalised
    flow_out[0, 0, 3, 0] = 3.0    # background in seg_2 (visible) -> not penalised: background dropped
    flow_out[0, 0, 1, 0] = 1.0    # stays in part 1 -> not penalised
    flow_tar = torch.zeros(1, 2, 4, 4)
    flow_tar[0, 1, 0, 1] = 1.0    # error at (0, 1): (2, -1)
    vis = torch.zeros(1, 1, 4, 4)
    vis[0, 0, 2, 3] = 1

    expected_mask = torch.zeros(1, 1, 4, 4)
    expected_mask[0, 0, 0, 1] = expected_mask[0, 0, 1, 2] = 1
    assert torch.equal(SS_FlowLoss.penalty_mask(flow_out, seg_1, seg_2, vis), expected_mask)

    flow_out.requires_grad_(True)
    loss = SS_FlowLoss('l1')(flow_out, flow_tar, seg_1, seg_2, vis)
    # |0.05·(2, -1)| + |0.05·(0, -5)| summed, over N·2·H·W = 32 elements.
    assert loss.item() == pytest.approx(0.05 * (2 + 1 + 5) / 32, rel=1e-6)
    loss.backward()
    assert torch.equal(flow_out.grad[0].abs().sum(0) > 0, expected_mask[0, 0] > 0)

    loss_l2 = SS_FlowLoss('l2')(flow_out.detach(), flow_tar, seg_1, seg_2, vis)
    assert loss_l2.item() == pytest.approx(0.05 * (math.sqrt(5) + 5) / 16, rel=1e-6)


def test_ss_flow_loss_zero_for_identity_flow_and_rejects_bad_args():
    seg_1, seg_2 = _two_part_scene()
    flow = torch.zeros(1, 2, 4, 4)
    assert SS_FlowLoss()(flow, flow + 3, seg_1, seg_2, torch.zeros(1, 1, 4, 4)).item() == 0
    with pytest.raises(ValueError, match='vis_tar'):
        SS_FlowLoss()(flow, flow, seg_1, seg_2, torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match='loss_type'):
        SS_FlowLoss('l3')


# ---------------------------------------------------------------------------------------------
# Visibility and GAN losses
# ---------------------------------------------------------------------------------------------

def test_visibility_loss_is_mean_cross_entropy():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 3, 4, generator=g)
    labels = torch.randint(0, 3, (2, 1, 3, 4), generator=g).float()
    logp = logits.log_softmax(dim=1)
    picked = logp.gather(1, labels.long())
    assert visibility_loss(logits, labels).item() == pytest.approx(-picked.mean().item(), rel=1e-6)
    with pytest.raises(ValueError):
        visibility_loss(logits, labels[:, 0])


def test_gan_loss_closed_forms():
    p = torch.tensor([0.2, 0.7, 0.9, 0.5]).view(1, 1, 2, 2)
    dcgan, lsgan = GANLoss(use_lsgan=False), GANLoss(use_lsgan=True)
    assert dcgan(p, True).item() == pytest.approx(-sum(math.log(v) for v in (0.2, 0.7, 0.9, 0.5)) / 4, rel=1e-6)
    assert dcgan(p, False).item() == pytest.approx(-sum(math.log(1 - v) for v in (0.2, 0.7, 0.9, 0.5)) / 4,
                                                   rel=1e-6)
    raw = torch.tensor([-1.0, 0.5, 2.0, 1.0]).view(1, 1, 2, 2)
    assert lsgan(raw, True).item() == pytest.approx((4 + 0.25 + 1 + 0) / 4)
    assert lsgan(raw, False).item() == pytest.approx((1 + 0.25 + 4 + 1) / 4)
    assert dcgan(p.double(), True).dtype == torch.float64


# ---------------------------------------------------------------------------------------------
# VGG loss
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def torchvision_features() -> torch.nn.Sequential:
    """torchvision's own VGG19 `features` builder carrying the seeded random weights of random_init."""
    tv = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs['E'])
    tv.load_state_dict(random_vgg19_features(seed=0).state_dict(), strict=True)
    return tv.eval()


@pytest.fixture(scope='module')
def images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, torch.rand(2, 3, 32, 32, generator=g) * 2 - 1


def _tv_feats(tv: torch.nn.Sequential, img: torch.Tensor) -> list[torch.Tensor]:
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h = ((img + 1) / 2 - mean) / std
    feats = []
    with torch.no_grad():
        for a, b in VGG_SLICES:
            h = tv[a:b](h)
            feats.append(h.clone())
    return feats


def test_vgg19_builder_matches_torchvision_layout():
    ours = random_vgg19_features().state_dict()
    ref = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs['E']).state_dict()
    assert list(ours) == list(ref)
    assert all(ours[k].shape == ref[k].shape for k in ref)
    assert torch.equal(ours['0.weight'], random_vgg19_features().state_dict()['0.weight'])   # seeded


def test_vgg_content_loss_matches_manual_torchvision_slices(torchvision_features, images):
    x, y = images
    weights = [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0]
    fx, fy = _tv_feats(torchvision_features, x), _tv_feats(torchvision_features, y)
    per_sample = [sum(w * (a[i] - b[i]).abs().mean() for w, a, b in zip(weights, fx, fy)) for i in range(2)]
    loss = VGGLoss(content_weights=weights, random_init=True)(x, y, 'content')
    assert loss.item() == pytest.approx(float(sum(per_sample) / 2), rel=1e-5)

    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 4:12, 10:30] = 1
    masked = []
    for i in range(2):
        s = 0.0
        for w, a, b in zip(weights, fx, fy):
            m = F.adaptive_max_pool2d(mask[i:i + 1], a.shape[2:])[0]
            s += w * ((a[i] - b[i]) * m).abs().mean()
        masked.append(s)
    loss_m = VGGLoss(content_weights=weights, random_init=True)(x, y, 'content', mask=mask)
    assert loss_m.item() == pytest.approx(float(sum(masked) / 2), rel=1e-5)


def test_shifted_gram_by_explicit_loops():
    g = torch.Generator().manual_seed(4)
    feat = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    n, c, h, w = feat.shape
    for sx, sy in ((0, 0), (2, 0), (0, 2), (4, 0), (0, 3)):
        ref = torch.zeros(n, c, c, dtype=torch.float64)
        for b in range(n):
            for i in range(c):
                for j in range(c):
                    for yy in range(h - sy):
                        for xx in range(w - sx):
                            ref[b, i, j] += feat[b, i, yy + sy, xx + sx] * feat[b, j, yy, xx]
        ref /= c * h * w
        torch.testing.assert_close(shifted_gram(feat, sx, sy), ref)


def test_vgg_style_loss_plain_and_shifted(torchvision_features, images):
    x, y = images
    style_w = [1.0, 0.5, 2.0, 1.5, 3.0]
    fx, fy = _tv_feats(torchvision_features, x), _tv_feats(torchvision_features, y)

    def gram(f, sx, sy):
        n, c, h, w = f.shape
        a = f[:, :, sy:, sx:].reshape(n, c, -1)
        b = f[:, :, :h - sy, :w - sx].reshape(n, c, -1)
        return a @ b.transpose(1, 2) / (c * h * w)

    def sq(a, b, sx, sy):
        return ((gram(a, sx, sy) - gram(b, sx, sy)) ** 2).sum(dim=(1, 2))

    plain = sum(w * sq(a, b, 0, 0) for w, a, b in zip(style_w, fx, fy))
    shifts = [[2, 4, 8, 16], [2, 4, 8], [2, 4], [2], []]
    shifted = plain + sum(0.5 * w * (sq(a, b, d, 0) + sq(a, b, 0, d))
                          for w, a, b, ds in zip(style_w, fx, fy, shifts) for d in ds)

    loss_plain = VGGLoss(style_weights=style_w, shifted_style=False, random_init=True)(x, y, 'style')
    loss_shift = VGGLoss(style_weights=style_w, shifted_style=True, random_init=True)(x, y, 'style')
    assert loss_plain.item() == pytest.approx(plain.mean().item(), rel=1e-4)
    assert loss_shift.item() == pytest.approx(shifted.mean().item(), rel=1e-4)
    assert loss_shift.item() > loss_plain.item()


def test_vgg_loss_gradients_reach_input_not_vgg(images):
    x0, y0 = images
    vgg = VGGLoss(random_init=True)
    assert all(not p.requires_grad for p in vgg.parameters())
    assert not any(k in ('mean', 'std') for k in vgg.state_dict())   # buffers follow .to(), not saved
    x = x0.clone().requires_grad_(True)
    y = y0.clone().requires_grad_(True)
    (vgg(x, y, 'content') + vgg(x, y, 'style')).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert y.grad is None
    assert all(p.grad is None for p in vgg.parameters())
    assert vgg(y0, y0, 'content').item() == 0


def test_vgg_loss_rejects_bad_arguments(images):
    x, y = images
    vgg = VGGLoss(random_init=True)
    with pytest.raises(ValueError, match='loss_type'):
        vgg(x, y, 'perceptual')
    with pytest.raises(ValueError, match='5 values'):
        VGGLoss(content_weights=[1.0] * 4, random_init=True)
    with pytest.raises(ValueError, match='exclusive'):
        VGGLoss(random_init=True, weights_path='w.pth')


def test_missing_vgg_weights_raise_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    with pytest.raises(FileNotFoundError, match=VGG19_WEIGHTS_FILE) as err:
        load_vgg19_features()
    assert str(tmp_path / 'hub' / 'checkpoints' / VGG19_WEIGHTS_FILE) in str(err.value)
    assert 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth' in str(err.value)
    # The message speaks of the command-line options, not of Python arguments.
    assert '--vgg_weights' in str(err.value) and '--loss_weight_content 0' in str(err.value)
    assert 'weights_path' not in str(err.value)
    with pytest.raises(FileNotFoundError, match='elsewhere.pth'):
        VGGLoss(weights_path=tmp_path / 'elsewhere.pth')


def test_vgg_weights_load_from_hub_cache_and_explicit_path(tmp_path, monkeypatch):
    # A torchvision-format file: features.* plus classifier.* keys (classifier kept tiny here).
    source = random_vgg19_features(seed=7).state_dict()
    state = {f'features.{k}': v for k, v in source.items()}
    state['classifier.0.weight'] = torch.zeros(2, 2)
    hub = tmp_path / 'hub'
    (hub / 'checkpoints').mkdir(parents=True)
    torch.save(state, hub / 'checkpoints' / VGG19_WEIGHTS_FILE)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(hub))

    features = load_vgg19_features()
    assert not features.training and all(not p.requires_grad for p in features.parameters())
    assert all(torch.equal(features.state_dict()[k], v) for k, v in source.items())
    explicit = load_vgg19_features(hub / 'checkpoints' / VGG19_WEIGHTS_FILE)
    assert torch.equal(explicit[34].weight, source['34.weight'])

    bad = tmp_path / 'bad.pth'
    torch.save({'features.0.weight': torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match='bad.pth'):
        load_vgg19_features(bad)
