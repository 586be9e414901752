"""Flow regression networks: ``FlowUnet`` (``--which_model unet``) and ``FlowUnet_v2`` (``unet_v2``).

Both map the concatenated source and target pose heatmaps ``[N, 36, H, W]`` to

* ``flow_out``: ``[N, 2, H, W]`` target->source flow divided by 20 (the model multiplies by 20);
* ``vis_out``: ``[N, 3, H, W]`` visibility logits (0 visible, 1 invisible, 2 background);
* ``flow_pyr``: list of ``[N, 2, H/(s*2^k), W/(s*2^k)]`` flows (``s = start_scale``), finest first;
* ``feat_out``: the decoder features at ``H/s``.

Module names follow the authors' checkpoints (see :mod:`.generators` for the registration scheme).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import ActivationArg, NormLayer, ResidualBlock, channel_mapping, get_norm_layer, make_activation
from .residual_unet import ResidualUnet

FlowOutputs = tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor]


def _start_level(start_scale: int) -> int:
    level = round(math.log2(start_scale)) if start_scale > 0 else -1
    if level < 0 or 2 ** level != start_scale:
        raise ValueError(f'start_scale must be a power of two >= 1, got {start_scale}')
    return level


def _upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    # Matches PyTorch 0.4's bilinear upsampling, i.e. today's align_corners=False.
    if factor == 1:
        return x
    return F.interpolate(x, scale_factor=factor, mode='bilinear', align_corners=False)


class FlowUnetBlock(nn.Module):
    """One skip level of :class:`FlowUnet` (pix2pix-style), holding its child as ``submodule``.

    ``down``/``up`` layouts (indices are checkpoint keys):

    * outermost: ``down = [conv, norm]``, ``up = [ReLU, ConvT(2*inner -> outer, bias), norm]``;
    * middle: ``down = [LReLU(0.2), conv, norm]``, ``up = [ReLU, ConvT(2*inner -> outer), norm]``;
    * innermost: ``down = [LReLU(0.2), conv]``, ``up = [ReLU, ConvT(inner -> outer), norm]``;

    with ``conv = Conv2d(outer -> inner, k4, s2, p1)`` and ``predict_flow = [LReLU(0.1), Conv2d(outer -> 2, k3)]``.

    Forward: ``x: [N, outer, h, w]`` -> ``(out, feats, flows)`` where ``out`` is ``u = up(...)`` for
    the outermost block and ``concat(x, u)`` otherwise, ``feats = [u] + child feats`` and
    ``flows = [predict_flow(u)] + child flows`` (finest first).
    """

    def __init__(self, outer_nc: int, inner_nc: int, submodule: FlowUnetBlock | None = None,
                 outermost: bool = False, innermost: bool = False, norm_layer: NormLayer = nn.BatchNorm2d,
                 use_bias: bool = False) -> None:
        super().__init__()
        if innermost == (submodule is not None):
            raise ValueError('a FlowUnetBlock has a submodule exactly when it is not the innermost block')
        self.outermost = outermost
        down_conv = nn.Conv2d(outer_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        # The original uses in-place activations here; out-of-place gives the same numbers (the
        # skip copy of x is only ever consumed through a ReLU, and ReLU(LeakyReLU(x)) = ReLU(x))
        # without rewriting tensors that autograd still needs.
        if outermost:
            down = [down_conv, norm_layer(inner_nc)]
            up_conv = nn.ConvTranspose2d(2 * inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=True)
        elif innermost:
            down = [nn.LeakyReLU(0.2), down_conv]
            up_conv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        else:
            down = [nn.LeakyReLU(0.2), down_conv, norm_layer(inner_nc)]
            up_conv = nn.ConvTranspose2d(2 * inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        # Registration order down, up, submodule, predict_flow is the original's (optimizer states
        # index parameters in this order).
        self.down = nn.Sequential(*down)
        self.up = nn.Sequential(nn.ReLU(), up_conv, norm_layer(outer_nc))
        self.submodule = submodule
        self.predict_flow = nn.Sequential(nn.LeakyReLU(0.1), nn.Conv2d(outer_nc, 2, kernel_size=3, padding=1, bias=True))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        y = self.down(x)
        if self.submodule is None:
            child_feats, child_flows = [], []
        else:
            y, child_feats, child_flows = self.submodule(y)
        u = self.up(y)
        out = u if self.outermost else torch.cat((x, u), dim=1)
        return out, [u] + child_feats, [self.predict_flow(u)] + child_flows


class FlowUnet(nn.Module):
    """Flow regression U-Net, ``which_model='unet'``.

    Args:
        input_nc: input channels (36 = two sets of 18 pose heatmaps).
        nf: width of the first convolution; after ``log2(start_scale)`` stride-2 convolutions the
            U-Net works on ``nc = nf * start_scale`` channels.
        start_scale: resolution factor of the finest flow output (power of two).
        num_scale: number of skip levels = number of pyramid flows.
        norm: ``'batch'`` or ``'instance'``.
        max_nf: channel cap inside the U-Net. The flow model never passes it, so released
            checkpoints always have 512.

    Forward: ``x: [N, input_nc, H, W]`` (H, W divisible by ``start_scale * 2**num_scale``) ->
    ``(flow_out [N,2,H,W], vis_out [N,3,H,W], flow_pyr, feat_out [N, nc, H/s, W/s])``.
    """

    def __init__(self, input_nc: int, nf: int = 16, start_scale: int = 2, num_scale: int = 5, norm: str = 'batch',
                 max_nf: int = 512) -> None:
        super().__init__()
        norm_layer, use_bias = get_norm_layer(norm)
        self.start_scale = start_scale
        self.num_scale = num_scale

        layers: list[nn.Module] = [nn.Conv2d(input_nc, nf, kernel_size=7, padding=3, bias=use_bias),
                                   norm_layer(nf), nn.LeakyReLU(0.1)]
        nc = nf
        for _ in range(_start_level(start_scale)):
            layers += [nn.Conv2d(nc, 2 * nc, kernel_size=3, stride=2, padding=1, bias=use_bias),
                       norm_layer(2 * nc), nn.LeakyReLU(0.1)]
            nc *= 2
        self.conv_downsample = nn.Sequential(*layers)

        block = None  # built from the innermost level outwards
        for l in reversed(range(num_scale)):
            block = FlowUnetBlock(min(max_nf, nc * 2 ** l), min(max_nf, nc * 2 ** (l + 1)), submodule=block,
                                  outermost=l == 0, innermost=l == num_scale - 1, norm_layer=norm_layer,
                                  use_bias=use_bias)
        self.unet_block = block
        self.nf_out = min(max_nf, nc)
        self.predict_vis = nn.Sequential(nn.LeakyReLU(0.1), nn.Conv2d(self.nf_out, 3, kernel_size=3, padding=1, bias=True))

    def forward(self, x: torch.Tensor) -> FlowOutputs:
        factor = self.start_scale * 2 ** self.num_scale
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(f'FlowUnet: spatial size {tuple(x.shape[-2:])} must be divisible by {factor}')
        feat_out, _, flow_pyr = self.unet_block(self.conv_downsample(x))
        vis = self.predict_vis(feat_out)
        return _upsample(flow_pyr[0], self.start_scale), _upsample(vis, self.start_scale), flow_pyr, feat_out


class FlowUnet_v2(ResidualUnet):
    """Residual flow regression U-Net, ``which_model='unet_v2'``.

    ``pre_conv`` brings the input to ``H/start_scale``; then the residual U-Net trunk of
    :class:`~models.networks.generators.UnetGenerator` whose scale ``l`` has
    ``min(nf*(start_level+l+1), max_nf)`` channels and predicts a flow ``pred_flow_{l}`` after its
    decoder blocks.

    Forward: ``x: [N, input_nc, H, W]`` (H, W divisible by ``start_scale * 2**num_scales``) ->
    ``(flow_out [N,2,H,W], vis_out [N,3,H,W], flow_pyr, feat_out)``.
    """

    def __init__(self, input_nc: int, nf: int = 64, max_nf: int = 256, start_scale: int = 2, num_scales: int = 7,
                 n_residual_blocks: int = 2, norm: str = 'batch', activation: ActivationArg = nn.ReLU,
                 use_dropout: bool = False) -> None:
        norm_layer, use_bias = get_norm_layer(norm)
        act = make_activation(activation)
        start_level = _start_level(start_scale)
        pre: list[nn.Module] = [channel_mapping(input_nc, nf, norm_layer=norm_layer, bias=use_bias)]
        for s in range(start_level):
            a, b = min(nf * (s + 1), max_nf), min(nf * (s + 2), max_nf)
            pre += [ResidualBlock(a, None, norm_layer, use_bias, act), act,
                    nn.Conv2d(a, b, kernel_size=3, stride=2, padding=1, bias=use_bias), norm_layer(b)]
        super().__init__(input_nc, nf, max_nf, num_scales, n_residual_blocks, norm, act, use_dropout,
                         width_offset=start_level, pre_conv=nn.Sequential(*pre), input_downscale=start_scale,
                         scale_head=('pred_flow', lambda c_in: nn.Sequential(
                             act, nn.Conv2d(c_in, 2, kernel_size=3, padding=1, bias=True))))
        self.start_scale = start_scale
        # The original sizes this head as nf*(1+start_level) without the max_nf cap.
        self.pred_vis = nn.Sequential(act, nn.Conv2d(nf * (1 + start_level), 3, kernel_size=3, padding=1, bias=True))

    def forward(self, x: torch.Tensor) -> FlowOutputs:
        x, flow_pyr = self._trunk(x)
        return (_upsample(flow_pyr[0], self.start_scale), _upsample(self.pred_vis(x), self.start_scale),
                flow_pyr, x)
