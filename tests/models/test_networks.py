"""Behaviour of the networks on tiny configurations."""
from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from models.networks import (DualUnetGenerator, FlowUnet, FlowUnet_v2, GateBlock, Identity, NLayerDiscriminator,
                             ResidualBlock, UnetGenerator, UnetGenerator_MultiOutput, channel_mapping, conv,
                             downsample_block, get_norm_layer, init_weights, upsample_block, warp_acc_flow)

N, H, W = 2, 32, 32
TINY_DUAL = dict(nf=8, max_nf=16, num_scales=3, num_warp_scales=2)


def projected_loss(*outputs: torch.Tensor) -> torch.Tensor:
    """A loss whose gradient is not annihilated by BatchNorm (unlike a plain sum)."""
    g = torch.Generator().manual_seed(123)
    return sum((o * torch.randn(o.shape, generator=g)).sum() for o in outputs)


def assert_grads(net: nn.Module, expect_none: set[str] = frozenset(), may_be_zero: set[str] = frozenset()) -> None:
    for name, p in net.named_parameters():
        if any(name.startswith(prefix) for prefix in expect_none):
            assert p.grad is None, f'{name} should not receive a gradient'
            continue
        assert p.grad is not None, f'no gradient reached {name}'
        assert torch.isfinite(p.grad).all(), name
        if name not in may_be_zero:
            assert p.grad.abs().sum() > 0, f'zero gradient at {name}'


def randomize_bn_stats(net: nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)


# --- blocks -------------------------------------------------------------------------------------

def test_get_norm_layer():
    assert get_norm_layer('batch') == (nn.BatchNorm2d, False)
    assert get_norm_layer('instance') == (nn.InstanceNorm2d, True)
    with pytest.raises(ValueError, match=r"'none'.*'batch', 'instance'"):
        get_norm_layer('none')


def test_conv_helpers_layout():
    c = conv(4, 6, kernel_size=3, padding=1, norm_layer=nn.BatchNorm2d)
    assert list(c.state_dict()) == ['0.weight', '1.weight', '1.bias', '1.running_mean', '1.running_var',
                                    '1.num_batches_tracked']
    assert c(torch.randn(2, 4, 5, 5)).shape == (2, 6, 5, 5)
    m = channel_mapping(4, 6, norm_layer=Identity, bias=True)
    assert list(m.state_dict()) == ['0.weight', '0.bias'] and m[0].kernel_size == (1, 1)
    assert isinstance(m[1], nn.Identity)


def test_down_and_upsample_blocks():
    act = nn.ReLU()
    down = downsample_block(4, 6, nn.BatchNorm2d, False, act)
    up = upsample_block(6, 4, nn.BatchNorm2d, False, act)
    assert down[0] is act and up[0] is act
    x = torch.randn(2, 4, 8, 6)
    assert down(x).shape == (2, 6, 4, 3)
    assert up(down(x)).shape == (2, 4, 8, 6)
    # PixelShuffle ordering: output channel c at (2h+i, 2w+j) is input channel 4c + 2i + j.
    y = torch.arange(8.0).view(1, 8, 1, 1)
    assert up[2](y).flatten().tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert up[2](y)[0, 1].tolist() == [[4, 5], [6, 7]]


def _conv_norm_eval(seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    c, bn = seq[0], seq[1]
    y = F.conv2d(x, c.weight, c.bias, padding=c.padding)
    return F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def test_residual_block_matches_formula():
    torch.manual_seed(0)
    plain, side = ResidualBlock(4), ResidualBlock(4, 6)
    for blk in (plain, side):
        randomize_bn_stats(blk)
        blk.eval()
    x, a = torch.randn(2, 4, 5, 5), torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        assert torch.allclose(plain(x), x + _conv_norm_eval(plain.conv, F.relu(x)), atol=1e-5)
        a2 = _conv_norm_eval(side.conv_a, F.relu(a))
        expected = x + _conv_norm_eval(side.conv, F.relu(torch.cat((x, a2), 1)))
        assert torch.allclose(side(x, a), expected, atol=1e-5)
    with pytest.raises(ValueError, match='requires a side input'):
        side(x)
    with pytest.raises(ValueError, match='takes no side input'):
        plain(x, a)
    assert not ResidualBlock(4, 0).has_side_input


def test_residual_block_no_end_norm_and_dropout():
    blk = ResidualBlock(4, None, no_end_norm=True)
    assert isinstance(blk.conv[1], nn.Identity) and blk.conv[0].bias is not None
    drop = ResidualBlock(4, use_dropout=True)
    x = torch.randn(2, 4, 6, 6)
    torch.manual_seed(0)
    y1 = drop(x)
    assert (y1 == 0).float().mean() > 0.3  # about half the outputs dropped
    drop.eval()
    assert torch.equal(drop(x), drop(x))


def test_gate_block_matches_formula():
    torch.manual_seed(0)
    gate = GateBlock(4, 6)
    x, a = torch.randn(2, 4, 3, 3), torch.randn(2, 6, 3, 3)
    expected = x * torch.sigmoid(F.conv2d(F.relu(a), gate.conv.weight, gate.conv.bias))
    assert torch.allclose(gate(x, a), expected, atol=1e-6)
    assert list(gate.state_dict()) == ['conv.weight', 'conv.bias']


def test_activation_argument():
    a = UnetGenerator(3, 3, nf=8, max_nf=16, num_scales=2)
    b = UnetGenerator(3, 3, nf=8, max_nf=16, num_scales=2)
    assert a.activation is not b.activation  # no default instance shared between networks
    assert a.enc_0_downsample[0] is a.dec_1_upsample[0] is a.enc_1_res_0.activation  # shared within one
    leaky = UnetGenerator(3, 3, nf=8, max_nf=16, num_scales=2, activation=functools.partial(nn.LeakyReLU, 0.1))
    assert isinstance(leaky.enc_0_downsample[0], nn.LeakyReLU) and leaky.enc_0_downsample[0].negative_slope == 0.1
    with pytest.raises(TypeError):
        UnetGenerator(3, 3, nf=8, max_nf=16, num_scales=2, activation='relu')


# --- UnetGenerator --------------------------------------------------------------------------------

def test_unet_generator_shape_and_grads():
    torch.manual_seed(0)
    net = UnetGenerator(21, 3, nf=8, max_nf=16, num_scales=3)
    out = net(torch.randn(N, 21, H, W))
    assert out.shape == (N, 3, H, W) and torch.isfinite(out).all()
    projected_loss(out).backward()
    assert_grads(net)
    with pytest.raises(ValueError, match='divisible by 2\\*\\*num_scales = 8'):
        net(torch.randn(1, 21, 36, 32))


def test_unet_generator_dropout_only_in_training():
    torch.manual_seed(0)
    net = UnetGenerator(3, 3, nf=8, max_nf=16, num_scales=2, use_dropout=True)
    x = torch.randn(N, 3, 16, 16)
    assert not torch.equal(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


def test_unet_multi_output():
    torch.manual_seed(0)
    net = UnetGenerator_MultiOutput(9, [1, 2], nf=8, max_nf=16, num_scales=3)
    outs = net(torch.randn(N, 9, H, W))
    assert [o.shape for o in outs] == [(N, 1, H, W), (N, 2, H, W)]
    projected_loss(*outs).backward()
    assert_grads(net)


# --- DualUnetGenerator ---------------------------------------------------------------------------

def dual_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x_p = torch.randn(N, 18, H, W, generator=g)
    x_a = torch.randn(N, 3, H, W, generator=g)
    flow = 3 * torch.randn(N, 2, H, W, generator=g)
    vis = torch.randint(0, 3, (N, 1, H, W), generator=g).float()
    return x_p, x_a, flow, vis


@pytest.mark.parametrize('vis_mode', ['none', 'hard_gate', 'soft_gate', 'residual', 'res_no_vis'])
def test_dual_unet_with_flow(vis_mode):
    torch.manual_seed(0)
    net = DualUnetGenerator(18, 3, 3, vis_mode=vis_mode, **TINY_DUAL)
    out = net(*dual_inputs())
    assert out.shape == (N, 3, H, W) and torch.isfinite(out).all()
    # The shared downsample's BatchNorm statistics are updated by both encoders.
    assert net.encp_1_downsample[2].num_batches_tracked.item() == 2
    projected_loss(out).backward()
    assert_grads(net)
    has_vis = vis_mode in ('soft_gate', 'residual', 'res_no_vis')
    assert hasattr(net, 'enca_1_vis_1') == has_vis and not hasattr(net, 'enca_2_vis_0')


@pytest.mark.parametrize('vis_mode', ['residual', 'soft_gate'])
def test_dual_unet_without_flow_leaves_vis_modules_unused(vis_mode):
    torch.manual_seed(0)
    net = DualUnetGenerator(18, 3, 3, vis_mode=vis_mode, **TINY_DUAL)
    x_p, x_a, _, _ = dual_inputs()
    out = net(x_p, x_a)
    assert out.shape == (N, 3, H, W)
    projected_loss(out).backward()
    assert_grads(net, expect_none={'enca_0_vis_', 'enca_1_vis_'})


def test_dual_unet_needs_vis_for_gated_modes():
    net = DualUnetGenerator(18, 3, 3, vis_mode='hard_gate', **TINY_DUAL)
    x_p, x_a, flow, _ = dual_inputs()
    with pytest.raises(ValueError, match='needs vis'):
        net(x_p, x_a, flow)
    with pytest.raises(ValueError, match="unknown vis_mode 'gate'"):
        DualUnetGenerator(18, 3, 3, vis_mode='gate', **TINY_DUAL)


def test_dual_unet_zero_flow_equals_no_warping():
    torch.manual_seed(0)
    net = DualUnetGenerator(18, 3, 3, vis_mode='none', **TINY_DUAL)
    x_p, x_a, flow, vis = dual_inputs()
    with torch.no_grad():
        assert torch.allclose(net(x_p, x_a, torch.zeros_like(flow), vis), net(x_p, x_a), atol=1e-5)
        assert not torch.allclose(net(x_p, x_a, flow, vis), net(x_p, x_a), atol=1e-3)


class Recorder:
    """Records the positional inputs / output of each call of the hooked modules."""

    def __init__(self, net: nn.Module, names: list[str]) -> None:
        self.calls: dict[str, list] = {n: [] for n in names}
        for n in names:
            getattr(net, n).register_forward_hook(
                lambda m, args, out, n=n: self.calls[n].append(([a.detach().clone() for a in args], out.detach())))


def test_dual_unet_warping_pooling_and_skip_routing():
    torch.manual_seed(0)
    net = DualUnetGenerator(18, 3, 3, vis_mode='residual', **TINY_DUAL)
    x_p, x_a, flow, vis = dual_inputs()
    noisy_vis = vis + 0.4 * (torch.rand_like(vis) - 0.5)  # rounds back to vis
    rec = Recorder(net, ['enca_0_res_0', 'enca_0_res_1', 'enca_0_vis_0', 'enca_1_res_0', 'enca_1_vis_0',
                         'encp_0_res_0', 'encp_0_downsample', 'dec_0_res_0', 'enca_2_res_0'])
    with torch.no_grad():
        net(x_p, x_a, flow, noisy_vis)
    c = rec.calls
    # Scale 0: full-resolution flow and rounded vis.
    feat = c['enca_0_res_0'][0][1]
    x_w = warp_acc_flow(feat, flow)
    (vis_x, vis_a), vis_out = c['enca_0_vis_0'][0]
    assert torch.allclose(vis_x, x_w, atol=1e-5)
    assert torch.allclose(vis_a, torch.cat((x_w * (vis == 0), x_w * (vis == 1)), 1), atol=1e-5)
    # The encoder continues with the unwarped features.
    assert torch.equal(c['enca_0_res_1'][0][0][0], feat)
    # Scale 1: flow average-pooled and halved, vis min-pooled.
    feat1 = c['enca_1_res_0'][0][1]
    flow1 = F.avg_pool2d(flow, 2) / 2
    vis1 = -F.max_pool2d(-vis, 2)
    x_w1 = warp_acc_flow(feat1, flow1)
    (vis_x1, vis_a1), _ = c['enca_1_vis_0'][0]
    assert torch.allclose(vis_x1, x_w1, atol=1e-5)
    assert torch.allclose(vis_a1, torch.cat((x_w1 * (vis1 == 0), x_w1 * (vis1 == 1)), 1), atol=1e-5)
    # The shared downsample runs once per encoder; decoder skips are concat(pose, warped appearance).
    assert len(c['encp_0_downsample']) == 2
    (dec_x, dec_side), _ = c['dec_0_res_0'][0]
    assert torch.equal(dec_side, torch.cat((c['encp_0_res_0'][0][1], vis_out), 1))
    assert len(c['enca_2_res_0']) == 1  # scale 2 >= num_warp_scales: no warping there


def test_dual_unet_pooling_hand_values():
    flow = torch.zeros(1, 2, 4, 4)
    flow[0, 0, :2, :2] = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    vis = torch.tensor([[2.0, 1.0, 2, 2], [2, 2, 2, 2], [1, 1, 0, 2], [1, 2, 2, 2]]).view(1, 1, 4, 4)
    f1, v1 = DualUnetGenerator._pool_flow_vis(flow, vis, 1)
    assert f1[0, 0].tolist() == [[1.5, 0.0], [0.0, 0.0]]  # mean 3 of the block, divided by 2
    assert v1[0, 0].tolist() == [[1.0, 2.0], [1.0, 0.0]]
    f2, v2 = DualUnetGenerator._pool_flow_vis(flow, vis, 2)
    assert f2.shape == (1, 2, 1, 1) and f2.flatten().tolist() == pytest.approx([12 / 16 / 4, 0.0])
    assert v2.item() == 0.0


def test_dual_unet_hard_gate_zeroes_background():
    torch.manual_seed(0)
    net = DualUnetGenerator(18, 3, 3, vis_mode='hard_gate', **TINY_DUAL)
    x, flow = torch.randn(1, 4, 4, 4), torch.zeros(1, 2, 4, 4)
    vis = torch.tensor([0.0, 1.0, 2.0, 2.0]).repeat(4).view(1, 1, 4, 4)
    out = net._warp_features(x, flow, vis, None)
    assert torch.allclose(out[..., :2], x[..., :2], atol=1e-6) and (out[..., 2:] == 0).all()


def test_dual_unet_aux_heads_and_features():
    torch.manual_seed(0)
    net = DualUnetGenerator(18, 3, 3, aux_output_nc=[2], vis_mode='residual', **TINY_DUAL)
    assert 'dec_aux_output_0.1.weight' in net.state_dict()
    x_p, x_a, flow, vis = dual_inputs()
    out, aux = net(x_p, x_a, flow, vis, output_feats=True)
    assert out.shape == (N, 3, H, W) and aux[0].shape == (N, 2, H, W)
    assert [f.shape for f in aux[1]] == [(N, 8, 32, 32), (N, 16, 16, 16), (N, 16, 8, 8), (N, 16, 4, 4)]


def test_dual_unet_no_end_norm_runs():
    torch.manual_seed(0)
    net = DualUnetGenerator(18, 3, 3, vis_mode='residual', no_end_norm=True, **TINY_DUAL)
    out = net(*dual_inputs())
    projected_loss(out).backward()
    assert_grads(net)


# --- flow networks -------------------------------------------------------------------------------

def check_flow_outputs(outputs, h, w, start_scale, num_scale, feat_nc):
    flow_out, vis_out, flow_pyr, feat_out = outputs
    assert flow_out.shape == (N, 2, h, w) and vis_out.shape == (N, 3, h, w)
    assert [tuple(f.shape[2:]) for f in flow_pyr] == [(h // (start_scale * 2 ** k), w // (start_scale * 2 ** k))
                                                      for k in range(num_scale)]
    assert feat_out.shape == (N, feat_nc, h // start_scale, w // start_scale)
    expected = F.interpolate(flow_pyr[0], scale_factor=start_scale, mode='bilinear', align_corners=False)
    assert torch.allclose(flow_out, expected, atol=1e-6)
    assert all(torch.isfinite(t).all() for t in (flow_out, vis_out, feat_out))


def test_flow_unet():
    torch.manual_seed(0)
    net = FlowUnet(36, nf=8, start_scale=2, num_scale=3, max_nf=32)
    assert net.nf_out == 16
    outputs = net(torch.randn(N, 36, 64, 32))
    check_flow_outputs(outputs, 64, 32, 2, 3, 16)
    assert torch.allclose(outputs[1], F.interpolate(net.predict_vis(outputs[3]), scale_factor=2, mode='bilinear',
                                                    align_corners=False), atol=1e-6)
    projected_loss(outputs[0], outputs[1], *outputs[2]).backward()
    # A bias right before a training-mode BatchNorm gets an exactly cancelling gradient.
    assert_grads(net, may_be_zero={'unet_block.up.1.bias'})


def test_flow_unet_real_start_scale_and_default_width():
    net = FlowUnet(36, nf=4, start_scale=4, num_scale=2)
    assert net.start_scale == 4 and net.num_scale == 2 and len(net.conv_downsample) == 9
    with torch.no_grad():
        check_flow_outputs(net(torch.randn(N, 36, 32, 32)), 32, 32, 4, 2, 16)
    assert FlowUnet(36, nf=32, num_scale=5).unet_block.submodule.submodule.submodule.down[1].out_channels == 512
    with pytest.raises(ValueError, match='divisible by 16'):
        FlowUnet(36, nf=4, num_scale=3)(torch.randn(1, 36, 24, 32))
    with pytest.raises(ValueError, match='power of two'):
        FlowUnet(36, nf=4, start_scale=3)


def test_flow_unet_skip_keeps_input():
    """Out-of-place activations: a block's skip output holds its unmodified input."""
    torch.manual_seed(0)
    net = FlowUnet(36, nf=4, num_scale=3)
    middle = net.unet_block.submodule
    x = torch.randn(N, 16, 8, 8)
    x_copy = x.clone()
    out, feats, flows = middle(x)
    assert torch.equal(x, x_copy) and torch.equal(out[:, :16], x)
    assert out.shape == (N, 32, 8, 8) and len(feats) == len(flows) == 2


def test_flow_unet_v2():
    torch.manual_seed(0)
    net = FlowUnet_v2(36, nf=8, max_nf=16, start_scale=2, num_scales=3)
    outputs = net(torch.randn(N, 36, 64, 32))
    check_flow_outputs(outputs, 64, 32, 2, 3, 16)
    projected_loss(outputs[0], outputs[1], *outputs[2]).backward()
    assert_grads(net)


# --- discriminator --------------------------------------------------------------------------------

@pytest.mark.parametrize('size,patch', [((256, 256), (30, 30)), ((128, 64), (14, 6))])
def test_discriminator_patch_size(size, patch):
    torch.manual_seed(0)
    net = NLayerDiscriminator(24, ndf=4, use_sigmoid=True)
    assert isinstance(net.model[-1], nn.Sigmoid)
    out = net(torch.randn(1, 24, *size))
    assert out.shape == (1, 1, *patch) and (out > 0).all() and (out < 1).all()


def test_discriminator_grads_and_no_output_bias():
    torch.manual_seed(0)
    net = NLayerDiscriminator(24, ndf=8, n_layers=2, output_bias=False)
    assert net.model[-1].bias is None and len(net.model) == 9
    projected_loss(net(torch.randn(N, 24, 32, 32))).backward()
    assert_grads(net)


# --- init_weights ---------------------------------------------------------------------------------

def _init_probe() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(128, 256, 3), nn.BatchNorm2d(4096), nn.ConvTranspose2d(128, 64, 4),
                        nn.Linear(512, 1024), nn.InstanceNorm2d(8, affine=False), nn.BatchNorm2d(8, affine=False))
    net[1].running_mean.fill_(5.0)
    return net


@pytest.mark.parametrize('init_type,conv_std,bn_std', [
    ('normal', lambda fi, fo: 0.02, 0.02),
    ('normal2', lambda fi, fo: 0.001, 0.001),
    ('xavier', lambda fi, fo: 0.02 * math.sqrt(2 / (fi + fo)), 0.02),
    ('kaiming', lambda fi, fo: math.sqrt(2 / fi), 0.02),
])
def test_init_weights_statistics(init_type, conv_std, bn_std):
    net = init_weights(_init_probe(), init_type)
    conv_w, bn, convt_w, lin = net[0].weight, net[1], net[2].weight, net[3].weight
    assert conv_w.mean().abs() < 0.05 * conv_std(128 * 9, 256 * 9)
    assert conv_w.std().item() == pytest.approx(conv_std(128 * 9, 256 * 9), rel=0.02)
    # ConvTranspose2d weight is [in, out, k, k]; PyTorch's fan-in uses dim 1: 64*16.
    assert convt_w.std().item() == pytest.approx(conv_std(64 * 16, 128 * 16), rel=0.03)
    assert lin.std().item() == pytest.approx(conv_std(512, 1024), rel=0.02)
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=3 * bn_std / 64 + 1e-6)
    assert bn.weight.std().item() == pytest.approx(bn_std, rel=0.05)
    for m in (net[0], net[1], net[2], net[3]):
        assert (m.bias == 0).all()
    assert (bn.running_mean == 5.0).all() and (bn.running_var == 1.0).all()


def test_init_weights_orthogonal_and_unknown():
    net = init_weights(_init_probe(), 'orthogonal')
    w = net[0].weight.flatten(1)  # 256 x 1152: orthonormal rows
    assert torch.allclose(w @ w.T, torch.eye(256), atol=1e-4)
    assert net[1].weight.std().item() == pytest.approx(0.02, rel=0.05)
    with pytest.raises(ValueError, match=r"unknown init_type 'uniform'.*'kaiming'"):
        init_weights(_init_probe(), 'uniform')


def test_init_weights_touches_shared_and_all_convs():
    torch.manual_seed(0)
    net = DualUnetGenerator(18, 3, 3, vis_mode='soft_gate', **TINY_DUAL)
    init_weights(net, 'normal')
    for name, p in net.named_parameters():
        if name.endswith('bias'):
            assert (p == 0).all(), name
    assert net.enca_0_vis_0.conv.weight.std().item() == pytest.approx(0.02, rel=0.3)


# --- package re-exports ---------------------------------------------------------------------------

def test_reexports_of_losses_and_metrics():
    import models.losses
    import metrics.psnr
    import metrics.ssim
    from models.networks import EPE, PSNR, SSIM, GANLoss, MultiScaleFlowLoss, SS_FlowLoss, VGGLoss
    assert (EPE, GANLoss, MultiScaleFlowLoss, SS_FlowLoss, VGGLoss) == (
        models.losses.EPE, models.losses.GANLoss, models.losses.MultiScaleFlowLoss, models.losses.SS_FlowLoss,
        models.losses.VGGLoss)
    assert SSIM is metrics.ssim.SSIM and PSNR is metrics.psnr.PSNR
    import util.flow_util
    from models.networks import warp_acc_flow
    assert warp_acc_flow is util.flow_util.warp_acc_flow
    with pytest.raises(ImportError):
        from models.networks import NoSuchLoss  # noqa: F401


def test_losses_can_be_imported_first():
    """models.losses imports models.networks.warp: the re-exports must not make that circular."""
    import subprocess
    import sys
    from pathlib import Path
    code = 'import models.losses; from models.networks import GANLoss; assert GANLoss is models.losses.GANLoss'
    subprocess.run([sys.executable, '-c', code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_deepcopy_keeps_scale_references_consistent():
    import copy
    net = DualUnetGenerator(18, 3, 3, vis_mode='residual', **TINY_DUAL)
    clone = copy.deepcopy(net)
    assert clone.scales[1].downsample is clone.encp_1_downsample is clone.enca_1_downsample
    assert clone.scales[0].enca_vis[1] is clone.enca_0_vis_1 and clone.scales[2].dec_res[0] is clone.dec_2_res_0
    assert clone.scales[1].downsample is not net.encp_1_downsample
    unet = UnetGenerator_MultiOutput(3, [1], nf=8, max_nf=16, num_scales=2)
    unet_clone = copy.deepcopy(unet)
    assert unet_clone.heads[0] is unet_clone.dec_output_0 and unet_clone.scales[1].upsample is unet_clone.dec_1_upsample
