"""models.amp: the faithful settings change nothing; autocast outputs come back as float32; channels-last agrees
with float32 NCHW within 1e-5; the float16 gradient scaler."""
from __future__ import annotations

import pytest
import torch

from models.amp import ForwardSettings, amp_dtype, make_grad_scaler, to_float32
from models.factory import build_flow_network


def _net_and_input():
    torch.set_grad_enabled(False)  # restored by the autouse fixture below
    torch.manual_seed(0)
    net = build_flow_network('unet_v2', input_nc=6, nf=8, max_nf=16, start_scale=2, num_scale=3, norm='batch')
    return net, torch.randn(2, 6, 64, 32)


@pytest.fixture(autouse=True)
def _restore_grad_mode():
    previous = torch.is_grad_enabled()
    yield
    torch.set_grad_enabled(previous)


def test_faithful_settings_are_the_identity():
    settings = ForwardSettings()
    assert settings.is_faithful and amp_dtype('off', 'cpu') is None and make_grad_scaler(settings) is None
    net, x = _net_and_input()
    sentinel = object()
    assert settings.run(lambda *a: sentinel, x) is sentinel  # no wrapping, no cast of the outputs
    assert settings.prepare(net) is net and all(p.is_contiguous() for p in net.parameters())


def test_autocast_outputs_are_float32_and_close():
    net, x = _net_and_input()
    ref = net(x)
    out = ForwardSettings('cpu', amp_dtype('bf16', 'cpu')).run(net, x)
    flow, vis, pyramid, _ = out
    assert flow.dtype == vis.dtype == torch.float32 and all(p.dtype == torch.float32 for p in pyramid)
    assert torch.isfinite(flow).all()
    assert float((flow - ref[0]).abs().max()) < 0.1 * float(ref[0].abs().max()) + 1e-2


def test_channels_last_matches_float32_within_1e_5():
    net, x = _net_and_input()
    ref = net(x)
    ForwardSettings(channels_last=True).prepare(net)
    assert next(p for p in net.parameters() if p.dim() == 4).is_contiguous(memory_format=torch.channels_last)
    out = net(x)
    for a, b in zip(to_float32(ref[:2]), out[:2]):
        assert float((a - b).abs().max()) <= 1e-5


def test_fp16_uses_a_grad_scaler_and_unknown_mode_is_an_error():
    assert make_grad_scaler(ForwardSettings('cpu', torch.float16)) is not None
    assert make_grad_scaler(ForwardSettings('cpu', torch.bfloat16)) is None
    with pytest.raises(ValueError, match="--amp 'fp8'"):
        amp_dtype('fp8', 'cpu')
