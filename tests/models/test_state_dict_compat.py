"""Original-format state_dicts load strictly.

The expected keys and shapes are generated here from the original's naming and registration rules, written out
independently of the module code: if a network's layout drifts from the authors' checkpoints, the
key sets, shapes, counts or the parameter order stop matching.
"""
from __future__ import annotations

import functools
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn

from models.networks import (DualUnetGenerator, FlowUnet, FlowUnet_v2, NLayerDiscriminator, UnetGenerator,
                             UnetGenerator_MultiOutput, load_network, load_state_dict_compat)
from util.weights import StateDictMismatchError

# ---------------------------------------------------------------------------------------------
# Spec-side generator of (key, shape, kind); kind: 'param', 'buffer', 'nbt' (num_batches_tracked)
# or 'alias:<key>' (state_dict entry of the tensor already listed as <key>; the shared downsample).
# ---------------------------------------------------------------------------------------------
Entry = tuple[str, tuple[int, ...], str]


class SpecKeys:
    def __init__(self, norm: str = 'batch') -> None:
        self.batch = norm == 'batch'
        self.entries: list[Entry] = []

    def param(self, key: str, *shape: int) -> None:
        self.entries.append((key, shape, 'param'))

    def norm(self, prefix: str, c: int) -> None:
        if self.batch:  # InstanceNorm (affine False) has no entries
            self.param(f'{prefix}.weight', c)
            self.param(f'{prefix}.bias', c)
            self.entries += [(f'{prefix}.running_mean', (c,), 'buffer'), (f'{prefix}.running_var', (c,), 'buffer'),
                             (f'{prefix}.num_batches_tracked', (), 'nbt')]

    def conv(self, prefix: str, cout: int, cin: int, k: int, end_norm: bool = True) -> None:
        """The `conv()` helper: `.0` conv, `.1` norm; bias iff instance norm or no norm."""
        self.param(f'{prefix}.0.weight', cout, cin, k, k)
        if not self.batch or not end_norm:
            self.param(f'{prefix}.0.bias', cout)
        if end_norm:
            self.norm(f'{prefix}.1', cout)

    def res(self, prefix: str, c: int, side: int | None = None, end_norm: bool = True) -> None:
        if side:
            self.conv(f'{prefix}.conv_a', c, side, 1)
            self.conv(f'{prefix}.conv', c, 2 * c, 3, end_norm)
        else:
            self.conv(f'{prefix}.conv', c, c, 3, end_norm)

    def plain_conv(self, prefix: str, cout: int, cin: int, k: int, bias: bool | None = None) -> None:
        self.param(f'{prefix}.weight', cout, cin, k, k)
        if (not self.batch) if bias is None else bias:
            self.param(f'{prefix}.bias', cout)

    def downsample(self, prefix: str, c_in: int, c_out: int) -> None:
        self.plain_conv(f'{prefix}.1', c_out, c_in, 3)
        self.norm(f'{prefix}.2', c_out)

    def upsample(self, prefix: str, c_in: int, c_out: int) -> None:
        self.plain_conv(f'{prefix}.1', 4 * c_in, c_out, 3)
        self.norm(f'{prefix}.3', c_in)

    def alias(self, new_prefix: str, old_prefix: str) -> None:
        for key, shape, _ in [e for e in self.entries if e[0].startswith(old_prefix + '.')]:
            self.entries.append((new_prefix + key[len(old_prefix):], shape, f'alias:{key}'))


def widths(l: int, nf: int, max_nf: int) -> tuple[int, int]:
    return min(nf * (l + 1), max_nf), min(nf * (l + 2), max_nf)


def spec_dual_unet(pose_nc=18, appearance_nc=3, output_nc=3, nf=32, max_nf=128, num_scales=7, num_warp_scales=5,
                   vis_mode='residual', norm='batch', no_end_norm=False) -> list[Entry]:
    s = SpecKeys(norm)
    s.conv('encp_pre_conv', nf, pose_nc, 1, end_norm=not no_end_norm)
    s.conv('enca_pre_conv', nf, appearance_nc, 1, end_norm=not no_end_norm)
    L = num_scales
    for l in range(L):
        c_in, c_out = widths(l, nf, max_nf)
        for i in range(2):
            s.res(f'encp_{l}_res_{i}', c_in)
        s.downsample(f'encp_{l}_downsample', c_in, c_out)
        for i in range(2):
            s.res(f'enca_{l}_res_{i}', c_in)
            if l < num_warp_scales:
                if vis_mode == 'residual':
                    s.res(f'enca_{l}_vis_{i}', c_in, side=2 * c_in)
                elif vis_mode == 'soft_gate':
                    s.plain_conv(f'enca_{l}_vis_{i}.conv', c_in, 2 * c_in, 1, bias=True)
                elif vis_mode == 'res_no_vis':
                    s.res(f'enca_{l}_vis_{i}', c_in)
        s.alias(f'enca_{l}_downsample', f'encp_{l}_downsample')
        if l == L - 1:
            s.conv('dec_fuse', c_out, 2 * c_out, 1)
        s.upsample(f'dec_{l}_upsample', c_in, c_out)
        for i in range(2):
            s.res(f'dec_{l}_res_{i}', c_in, side=2 * c_in, end_norm=not (no_end_norm and l == L - 1 and i == 1))
    s.plain_conv('dec_output.1', output_nc, nf, 7, bias=True)
    return s.entries


def _spec_unet_trunk(s: SpecKeys, input_nc, nf, max_nf, num_scales) -> None:
    s.conv('pre_conv', nf, input_nc, 1)
    for l in range(num_scales):
        c_in, c_out = widths(l, nf, max_nf)
        for i in range(2):
            s.res(f'enc_{l}_res_{i}', c_in)
        s.downsample(f'enc_{l}_downsample', c_in, c_out)
        s.upsample(f'dec_{l}_upsample', c_in, c_out)
        for i in range(2):
            s.res(f'dec_{l}_res_{i}', c_in, side=c_in)


def spec_unet(input_nc=21, output_nc=3, nf=32, max_nf=128, num_scales=7) -> list[Entry]:
    s = SpecKeys()
    _spec_unet_trunk(s, input_nc, nf, max_nf, num_scales)
    s.plain_conv('dec_output.1', output_nc, nf, 7, bias=True)
    return s.entries


def spec_unet_multi(input_nc=9, output_nc=(1,), nf=32, max_nf=128, num_scales=7) -> list[Entry]:
    s = SpecKeys()
    _spec_unet_trunk(s, input_nc, nf, max_nf, num_scales)
    for k, c in enumerate(output_nc):
        s.conv(f'dec_output_{k}.0', nf, nf, 1)
        s.plain_conv(f'dec_output_{k}.3', c, nf, 7, bias=True)
    return s.entries


def spec_flow_unet(input_nc=36, nf=32, num_scale=5, max_nf=512) -> list[Entry]:
    s = SpecKeys()
    s.plain_conv('conv_downsample.0', nf, input_nc, 7)
    s.norm('conv_downsample.1', nf)
    s.plain_conv('conv_downsample.3', 2 * nf, nf, 3)
    s.norm('conv_downsample.4', 2 * nf)
    nc = 2 * nf

    def block(l: int) -> None:  # order: down, up, submodule, predict_flow
        p = 'unet_block' + '.submodule' * l
        outer, inner = min(max_nf, nc * 2 ** l), min(max_nf, nc * 2 ** (l + 1))
        if l == 0:
            s.plain_conv(f'{p}.down.0', inner, outer, 4)
            s.norm(f'{p}.down.1', inner)
            s.param(f'{p}.up.1.weight', 2 * inner, outer, 4, 4)
            s.param(f'{p}.up.1.bias', outer)
        elif l == num_scale - 1:
            s.plain_conv(f'{p}.down.1', inner, outer, 4)
            s.param(f'{p}.up.1.weight', inner, outer, 4, 4)
        else:
            s.plain_conv(f'{p}.down.1', inner, outer, 4)
            s.norm(f'{p}.down.2', inner)
            s.param(f'{p}.up.1.weight', 2 * inner, outer, 4, 4)
        s.norm(f'{p}.up.2', outer)
        if l < num_scale - 1:
            block(l + 1)
        s.plain_conv(f'{p}.predict_flow.1', 2, outer, 3, bias=True)

    block(0)
    s.plain_conv('predict_vis.1', 3, nc, 3, bias=True)
    return s.entries


def spec_flow_unet_v2(input_nc=36, nf=32, max_nf=128, num_scales=5) -> list[Entry]:
    s = SpecKeys()
    s.conv('pre_conv.0', nf, input_nc, 1)
    s.res('pre_conv.1', nf)
    s.plain_conv('pre_conv.3', 2 * nf, nf, 3)
    s.norm('pre_conv.4', 2 * nf)
    for l in range(num_scales):
        c_in, c_out = min(nf * (l + 2), max_nf), min(nf * (l + 3), max_nf)
        for i in range(2):
            s.res(f'enc_{l}_res_{i}', c_in)
        s.downsample(f'enc_{l}_downsample', c_in, c_out)
        s.upsample(f'dec_{l}_upsample', c_in, c_out)
        for i in range(2):
            s.res(f'dec_{l}_res_{i}', c_in, side=c_in)
        s.plain_conv(f'pred_flow_{l}.1', 2, c_in, 3, bias=True)
    s.plain_conv('pred_vis.1', 3, 2 * nf, 3, bias=True)
    return s.entries


def spec_discriminator(input_nc=24, ndf=64) -> list[Entry]:
    s = SpecKeys()
    s.plain_conv('model.0', ndf, input_nc, 4, bias=True)
    for idx, (cin, cout) in zip((2, 5, 8), ((ndf, 2 * ndf), (2 * ndf, 4 * ndf), (4 * ndf, 8 * ndf))):
        s.plain_conv(f'model.{idx}', cout, cin, 4)
        s.norm(f'model.{idx + 1}', cout)
    s.plain_conv('model.11', 1, 8 * ndf, 4, bias=True)
    return s.entries


# (builder of our network, spec entries, the released files' counts: entries 0.4.0, entries 2.x, parameters)
DF, MK = dict(num_scales=7, num_warp_scales=5), dict(num_scales=5, num_warp_scales=4)
CONFIGS = {
    'dual_df_residual': (lambda: DualUnetGenerator(18, 3, 3, vis_mode='residual', **DF),
                         lambda: spec_dual_unet(vis_mode='residual', **DF), (502, 602, 11_881_539)),
    'dual_df_none': (lambda: DualUnetGenerator(18, 3, 3, vis_mode='none', **DF),
                     lambda: spec_dual_unet(vis_mode='none', **DF), (402, 482, 9_993_795)),
    'dual_df_soft_gate': (lambda: DualUnetGenerator(18, 3, 3, vis_mode='soft_gate', **DF),
                          lambda: spec_dual_unet(vis_mode='soft_gate', **DF), (422, 502, 10_183_107)),
    'dual_df_res_no_vis': (lambda: DualUnetGenerator(18, 3, 3, vis_mode='res_no_vis', **DF),
                           lambda: spec_dual_unet(vis_mode='res_no_vis', **DF), (452, 542, 10_843_459)),
    'dual_market_residual': (lambda: DualUnetGenerator(18, 3, 3, vis_mode='residual', **MK),
                             lambda: spec_dual_unet(vis_mode='residual', **MK), (372, 446, 7_255_107)),
    'dual_market_hard_gate': (lambda: DualUnetGenerator(18, 3, 3, vis_mode='hard_gate', **MK),
                              lambda: spec_dual_unet(vis_mode='hard_gate', **MK), (292, 350, 6_023_747)),
    'dual_market_soft_gate': (lambda: DualUnetGenerator(18, 3, 3, vis_mode='soft_gate', **MK),
                              lambda: spec_dual_unet(vis_mode='soft_gate', **MK), (308, 366, 6_147_267)),
    'dual_market_res_no_vis': (lambda: DualUnetGenerator(18, 3, 3, vis_mode='res_no_vis', **MK),
                               lambda: spec_dual_unet(vis_mode='res_no_vis', **MK), (332, 398, 6_577_987)),
    'unet_df': (lambda: UnetGenerator(21, 3, nf=32, max_nf=128, num_scales=7),
                lambda: spec_unet(num_scales=7), (287, 344, 8_360_451)),
    'unet_market': (lambda: UnetGenerator(21, 3, nf=32, max_nf=128, num_scales=5),
                    lambda: spec_unet(num_scales=5), (207, 248, 5_046_787)),
    'netpw_df': (lambda: UnetGenerator_MultiOutput(9, [1], nf=32, max_nf=128, num_scales=7),
                 lambda: spec_unet_multi(num_scales=7), (292, 350, 8_358_017)),
    'netpw_market': (lambda: UnetGenerator_MultiOutput(9, [1], nf=32, max_nf=128, num_scales=5),
                     lambda: spec_unet_multi(num_scales=5), (212, 254, 5_044_353)),
    'discriminator': (lambda: NLayerDiscriminator(24), spec_discriminator, (19, 22, 2_787_137)),
    'flow_unet_df': (lambda: FlowUnet(36, nf=32, start_scale=2, num_scale=5),
                     lambda: spec_flow_unet(num_scale=5), (69, 80, 29_338_189)),
    'flow_unet_market': (lambda: FlowUnet(36, nf=32, start_scale=2, num_scale=4),
                         lambda: spec_flow_unet(num_scale=4), (57, 66, 16_744_011)),
    'flow_unet_v2_df': (lambda: FlowUnet_v2(36, nf=32, max_nf=128, start_scale=2, num_scales=5),
                        lambda: spec_flow_unet_v2(num_scales=5), (227, 270, 6_588_685)),
    'flow_unet_v2_market': (lambda: FlowUnet_v2(36, nf=32, max_nf=128, start_scale=2, num_scales=4),
                            lambda: spec_flow_unet_v2(num_scales=4), (185, 220, 4_929_547)),
}


def make_state_dict(entries: list[Entry], seed: int = 0, with_nbt: bool = True) -> OrderedDict:
    """A state_dict in the authors' format with random values; aliases share their source's values."""
    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    for key, shape, kind in entries:
        if key.endswith('num_batches_tracked') and not with_nbt:
            continue
        if kind.startswith('alias:'):  # written by the original as identical tensors
            sd[key] = sd[kind.removeprefix('alias:')].clone()
        elif kind == 'nbt':
            sd[key] = torch.randint(1, 1000, (), generator=g)
        elif key.endswith('running_var'):
            sd[key] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[key] = torch.randn(shape, generator=g)
    return sd


def count(entries: list[Entry]) -> tuple[int, int, int]:
    n_all = len(entries)
    n_040 = sum(not key.endswith('num_batches_tracked') for key, _, _ in entries)
    n_params = sum(torch.Size(shape).numel() for _, shape, kind in entries if kind == 'param')
    return n_040, n_all, n_params


@pytest.fixture(scope='module')
def built() -> dict:
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            torch.manual_seed(0)
            cache[name] = CONFIGS[name][0]()
        return cache[name]
    return get


@pytest.mark.parametrize('name', list(CONFIGS))
def test_spec_tables_agree_with_spec_counts(name):
    """The generator reproduces the counts of the original networks (guards the generator itself)."""
    _, spec, counts = CONFIGS[name]
    assert count(spec()) == counts


@pytest.mark.parametrize('name', list(CONFIGS))
def test_original_state_dict_loads_strictly(name, built):
    _, spec, (n_040, n_all, n_params) = CONFIGS[name]
    net = built(name)
    entries = spec()
    ours = net.state_dict()
    assert [(k, tuple(v.shape)) for k, v in ours.items()] == [(k, s) for k, s, _ in entries]
    assert len(ours) == n_all
    assert sum(not k.endswith('num_batches_tracked') for k in ours) == n_040
    assert sum(p.numel() for p in net.parameters()) == n_params

    sd = make_state_dict(entries, seed=1)
    assert load_state_dict_compat(net, sd, strict=True) == ([], [])
    loaded = net.state_dict()
    for key, value in sd.items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.parametrize('name', ['dual_market_residual', 'netpw_market', 'flow_unet_market', 'discriminator'])
def test_pytorch_040_state_dict_without_num_batches_tracked(name, built):
    net = built(name)
    sd = make_state_dict(CONFIGS[name][1](), seed=2, with_nbt=False)
    assert not any(k.endswith('num_batches_tracked') for k in sd)
    load_state_dict_compat(net, sd)
    loaded = net.state_dict()
    for key, value in loaded.items():
        if key.endswith('num_batches_tracked'):
            assert value.item() == 0, key
        else:
            assert torch.equal(value, sd[key]), key


@pytest.mark.parametrize('name', [n for n in CONFIGS if n != 'discriminator'])
def test_parameter_order_matches_registration_order(name, built):
    """Optimizer states index parameters by position."""
    names = [n for n, _ in built(name).named_parameters()]
    assert names == [k for k, _, kind in CONFIGS[name][1]() if kind == 'param']


def test_dual_unet_parameter_order_structure(built):
    names = [n for n, _ in built('dual_df_residual').named_parameters()]
    modules = list(dict.fromkeys(n.split('.')[0] for n in names))
    pos = modules.index
    assert pos('enca_0_res_0') < pos('enca_0_vis_0') < pos('enca_0_res_1') < pos('enca_0_vis_1') < pos('dec_0_upsample')
    assert pos('encp_0_downsample') < pos('enca_0_res_0')
    assert not any(m.startswith('enca_') and m.endswith('_downsample') for m in modules)
    assert modules[pos('dec_6_upsample') - 1] == 'dec_fuse'
    assert modules[:2] == ['encp_pre_conv', 'enca_pre_conv'] and modules[-1] == 'dec_output'
    assert 'enca_5_vis_0' not in modules  # only l < num_warp_scales = 5
    assert names.index('dec_0_res_0.conv_a.0.weight') < names.index('dec_0_res_0.conv.0.weight')


@pytest.mark.parametrize('vis_mode', ['none', 'residual', 'soft_gate'])
@pytest.mark.parametrize('norm', ['batch', 'instance'])
def test_small_dual_unet_variants(vis_mode, norm):
    kw = dict(nf=8, max_nf=16, num_scales=3, num_warp_scales=2, vis_mode=vis_mode, norm=norm)
    net = DualUnetGenerator(18, 3, 3, **kw)
    entries = spec_dual_unet(**kw)
    assert {(k, tuple(v.shape)) for k, v in net.state_dict().items()} == {(k, s) for k, s, _ in entries}
    load_state_dict_compat(net, make_state_dict(entries, seed=3))


def test_no_end_norm_keys():
    kw = dict(nf=8, max_nf=16, num_scales=3, num_warp_scales=2, vis_mode='residual', no_end_norm=True)
    net = DualUnetGenerator(18, 3, 3, **kw)
    keys = set(net.state_dict())
    assert {k for k in keys if k.startswith('encp_pre_conv.')} == {'encp_pre_conv.0.weight', 'encp_pre_conv.0.bias'}
    assert {k for k in keys if k.startswith('dec_2_res_1.conv.')} == {'dec_2_res_1.conv.0.weight',
                                                                      'dec_2_res_1.conv.0.bias'}
    assert 'dec_2_res_1.conv_a.1.running_mean' in keys and 'dec_2_res_0.conv.1.weight' in keys
    assert keys == {k for k, _, _ in spec_dual_unet(**kw)}


def small_dual(seed: int = 0, **kw) -> DualUnetGenerator:
    torch.manual_seed(seed)
    return DualUnetGenerator(18, 3, 3, nf=8, max_nf=16, num_scales=3, num_warp_scales=2, vis_mode='residual', **kw)


def test_shared_downsample_enca_wins():
    net = small_dual()
    sd = net.state_dict()
    sd = OrderedDict((k, v.clone()) for k, v in sd.items())
    sd['encp_1_downsample.1.weight'].fill_(1.0)
    sd['enca_1_downsample.1.weight'].fill_(2.0)
    sd['encp_1_downsample.2.running_mean'].fill_(-1.0)
    sd['enca_1_downsample.2.running_mean'].fill_(3.0)
    load_state_dict_compat(net, sd)
    assert net.encp_1_downsample is net.enca_1_downsample
    assert torch.all(net.encp_1_downsample[1].weight == 2.0)
    assert torch.all(net.encp_1_downsample[2].running_mean == 3.0)
    assert torch.equal(net.state_dict()['encp_1_downsample.1.weight'], net.state_dict()['enca_1_downsample.1.weight'])


def test_mismatch_errors_list_keys():
    net = small_dual()
    sd = OrderedDict(net.state_dict())
    del sd['dec_0_res_1.conv.0.weight']
    sd['dec_0_res_1.extra'] = torch.zeros(1)
    with pytest.raises(StateDictMismatchError, match=r'missing keys: dec_0_res_1\.conv\.0\.weight') as info:
        load_state_dict_compat(net, sd)
    assert 'unexpected keys: dec_0_res_1.extra' in str(info.value)

    sd = OrderedDict(net.state_dict())
    sd['dec_output.1.weight'] = torch.zeros(3, 8, 5, 5)
    with pytest.raises(StateDictMismatchError, match=r'dec_output\.1\.weight \(file \(3, 8, 5, 5\)'):
        load_state_dict_compat(net, sd)

    # A strict load needs both names of the shared downsample, like the original.
    sd = OrderedDict((k, v) for k, v in net.state_dict().items() if not k.startswith('enca_0_downsample.'))
    with pytest.raises(StateDictMismatchError, match=r'enca_0_downsample\.1\.weight'):
        load_state_dict_compat(net, sd)


def test_non_strict_reports_and_loads_the_rest():
    net, other = small_dual(), small_dual()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    sd = OrderedDict(other.state_dict())
    del sd['dec_output.1.bias']
    sd['bogus'] = torch.zeros(2)
    result = load_state_dict_compat(net, sd, strict=False)
    assert result.missing_keys == ['dec_output.1.bias'] and result.unexpected_keys == ['bogus']
    assert torch.equal(net.dec_output[1].weight, other.dec_output[1].weight)
    assert not torch.equal(net.dec_output[1].bias, other.dec_output[1].bias)


def test_round_trip_reproduces_outputs():
    net = small_dual()
    for m in net.modules():  # non-trivial running statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    copy = small_dual(seed=1)
    assert not torch.equal(copy.dec_output[1].weight, net.dec_output[1].weight)
    load_state_dict_compat(copy, net.state_dict())
    net.eval()
    copy.eval()
    x_p, x_a = torch.randn(2, 18, 32, 32), torch.randn(2, 3, 32, 32)
    flow, vis = torch.randn(2, 2, 32, 32), torch.randint(0, 3, (2, 1, 32, 32)).float()
    with torch.no_grad():
        assert torch.equal(net(x_p, x_a, flow, vis), copy(x_p, x_a, flow, vis))


@pytest.mark.parametrize('legacy_format', [True, False])
def test_load_network_file(tmp_path, legacy_format):
    kw = dict(nf=8, max_nf=16, num_scales=3, num_warp_scales=2, vis_mode='residual')
    sd = make_state_dict(spec_dual_unet(**kw), seed=4, with_nbt=not legacy_format)
    path = tmp_path / 'latest_net_G.pth'
    torch.save(sd, path, _use_new_zipfile_serialization=not legacy_format)
    net = DualUnetGenerator(18, 3, 3, **kw)
    load_network(net, path)
    for key, value in sd.items():
        assert torch.equal(net.state_dict()[key], value), key


def test_load_network_errors_name_the_file(tmp_path):
    net = small_dual()
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_network(net, tmp_path / 'nope.pth')
    bad = tmp_path / 'wrong_net.pth'
    torch.save(NLayerDiscriminator(24, ndf=8).state_dict(), bad)
    with pytest.raises(StateDictMismatchError, match='wrong_net.pth'):
        load_network(net, bad)
    garbage = tmp_path / 'garbage_net.pth'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(RuntimeError, match='garbage_net.pth'):
        load_network(net, garbage)
    not_sd = tmp_path / 'not_sd.pth'
    torch.save({'epoch': 3}, not_sd)
    with pytest.raises(StateDictMismatchError, match='not_sd.pth'):
        load_network(net, not_sd)


def test_discriminator_with_instance_norm_has_conv_biases():
    net = NLayerDiscriminator(24, ndf=8, norm_layer=functools.partial(nn.InstanceNorm2d))
    keys = set(net.state_dict())
    assert keys == {f'model.{i}.{p}' for i in (0, 2, 5, 8, 11) for p in ('weight', 'bias')}
