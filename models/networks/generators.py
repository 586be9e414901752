"""Residual U-Net generators: the single-path ``UnetGenerator`` ("w/o dual encoder"), the pixel-warping
``UnetGenerator_MultiOutput`` and the dual-path ``DualUnetGenerator``.

Checkpoint format. The authors' checkpoints address every tensor by a flat attribute name such as
``enca_3_res_1.conv.0.weight``. Those names are registered verbatim (:func:`.residual_unet.register`) in the
original order, which also fixes the order of ``parameters()`` and hence of saved optimizer states. ``forward``
never looks modules up by formatted name: each scale keeps plain references to its modules in a small dataclass,
so the structure can be read from the code.

All generators return raw (pre-``tanh``) outputs; the models apply ``tanh``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from util.flow_util import warp_acc_flow

from .blocks import (ActivationArg, GateBlock, Identity, NormLayer, ResidualBlock, channel_mapping,
                     downsample_block, get_norm_layer, make_activation, upsample_block)
from .residual_unet import ResidualUnet, check_divisible, register, unet_widths

VIS_MODES = ('none', 'hard_gate', 'soft_gate', 'residual', 'res_no_vis')


def _output_head(nf: int, output_nc: int) -> nn.Sequential:
    """``Sequential(0: ReflectionPad2d(3), 1: Conv2d(nf -> output_nc, k7, bias))``; keys ``1.weight/bias``."""
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(nf, output_nc, kernel_size=7, padding=0, bias=True))


class UnetGenerator(ResidualUnet):
    """Single-path residual U-Net, ``which_model_G='unet'``.

    Args:
        input_nc: input channels (image + pose heatmaps, 21 by default).
        output_nc: output channels (3).
        nf, max_nf: width of scale 0 and the cap; scale ``l`` has ``min(nf*(l+1), max_nf)`` channels.
        num_scales: number of resolution halvings (H and W must be divisible by ``2**num_scales``).
        n_residual_blocks: residual blocks per scale in encoder and decoder.
        norm: ``'batch'`` or ``'instance'``.
        activation: activation factory (``nn.ReLU``, ``partial(nn.LeakyReLU, 0.1)``) or module.
        use_dropout: dropout in the decoder residual blocks.

    Forward: ``x: [N, input_nc, H, W] -> [N, output_nc, H, W]`` (raw, before ``tanh``).
    """

    def __init__(self, input_nc: int, output_nc: int, nf: int = 64, max_nf: int = 256, num_scales: int = 7,
                 n_residual_blocks: int = 2, norm: str = 'batch', activation: ActivationArg = nn.ReLU,
                 use_dropout: bool = False) -> None:
        super().__init__(input_nc, nf, max_nf, num_scales, n_residual_blocks, norm, activation, use_dropout)
        self.dec_output = _output_head(nf, output_nc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec_output(self._trunk(x)[0])


class UnetGenerator_MultiOutput(ResidualUnet):
    """:class:`UnetGenerator` with one head per entry of ``output_nc``.

    Head ``k`` is ``dec_output_{k}`` = ``Sequential(0: channel_mapping(nf -> nf), 1: act,
    2: ReflectionPad2d(3), 3: Conv2d(nf -> output_nc[k], k7, bias))``. Used as the pixel-warping
    network ``netPW`` (9 input channels, ``output_nc=[1]``, nf 32, max_nf 128).

    Forward: ``x: [N, input_nc, H, W] -> [ [N, output_nc[k], H, W] for k ]`` (raw outputs).
    """

    def __init__(self, input_nc: int, output_nc: list[int] | tuple[int, ...] = (3,), nf: int = 64,
                 max_nf: int = 256, num_scales: int = 7, n_residual_blocks: int = 2, norm: str = 'batch',
                 activation: ActivationArg = nn.ReLU, use_dropout: bool = False) -> None:
        super().__init__(input_nc, nf, max_nf, num_scales, n_residual_blocks, norm, activation, use_dropout)
        norm_layer, use_bias = get_norm_layer(norm)
        self.heads = [
            self._add(f'dec_output_{k}', nn.Sequential(
                channel_mapping(nf, nf, norm_layer=norm_layer, bias=use_bias),
                self.activation,
                nn.ReflectionPad2d(3),
                nn.Conv2d(nf, c, kernel_size=7, padding=0, bias=True),
            ))
            for k, c in enumerate(output_nc)
        ]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self._trunk(x)[0]
        return [head(x) for head in self.heads]


@dataclass(eq=False)
class _DualScale:
    """References to the modules of one scale of :class:`DualUnetGenerator`."""
    encp_res: list[ResidualBlock]
    downsample: nn.Sequential  # one module shared by the pose and the appearance encoder
    enca_res: list[ResidualBlock]
    enca_vis: list[nn.Module] | None  # visibility modules, None where this scale has none
    upsample: nn.Sequential
    dec_res: list[ResidualBlock]


class DualUnetGenerator(nn.Module):
    """Dual-path U-Net with feature warping, ``which_model_G='dual_unet'``.

    A pose encoder encodes the target pose, an appearance encoder the source image. At scales
    ``l < num_warp_scales`` the appearance skip features are warped by the target->source flow
    (average-pooled and divided by ``2**l``) and combined with the visibility map (min-pooled)
    according to ``vis_mode``. The decoder fuses both skip streams.

    Args:
        pose_nc: channels of the pose input (18 heatmaps).
        appearance_nc: channels of the appearance input (3, the source image).
        output_nc: output channels (3).
        aux_output_nc: channels of extra heads ``dec_aux_output_{k}`` (unused by the models).
        nf, max_nf, num_scales, n_residual_blocks, norm, activation, use_dropout: as :class:`UnetGenerator`.
        num_warp_scales: number of finest scales whose appearance features are warped.
        vis_mode: ``'none'`` (warp only), ``'hard_gate'`` (zero the background),
            ``'soft_gate'`` (learned gate), ``'residual'`` (learned residual correction),
            ``'res_no_vis'`` (residual correction that does not see the visibility).
        no_end_norm: original quirk (the key set follows it): drop the norm of both ``pre_conv`` and of the
            bottleneck-side decoder block ``dec_{L-1}_res_{last}``.

    The pose and appearance encoders share each scale's downsample module; it is registered as
    both ``encp_{l}_downsample`` and ``enca_{l}_downsample`` so the state_dict has both key groups
    (see :func:`util.weights.load_state_dict_compat` for loading differing groups).
    """

    vis_expand_mult = 2  # the visibility modules see [visible part, invisible part] of the features

    def __init__(self, pose_nc: int, appearance_nc: int, output_nc: int,
                 aux_output_nc: list[int] | tuple[int, ...] = (), nf: int = 32, max_nf: int = 128,
                 num_scales: int = 7, num_warp_scales: int = 5, n_residual_blocks: int = 2, norm: str = 'batch',
                 vis_mode: str = 'none', activation: ActivationArg = nn.ReLU, use_dropout: bool = False,
                 no_end_norm: bool = False) -> None:
        super().__init__()
        if vis_mode not in VIS_MODES:
            raise ValueError(f'unknown vis_mode {vis_mode!r}; valid choices are {", ".join(map(repr, VIS_MODES))}')
        norm_layer, use_bias = get_norm_layer(norm)
        self.activation = make_activation(activation)
        self.num_scales = num_scales
        self.num_warp_scales = num_warp_scales
        self.vis_mode = vis_mode
        act = self.activation

        # 1. Input channel mappings.
        pre_norm, pre_bias = (Identity, True) if no_end_norm else (norm_layer, use_bias)
        self.encp_pre_conv = channel_mapping(pose_nc, nf, norm_layer=pre_norm, bias=pre_bias)
        self.enca_pre_conv = channel_mapping(appearance_nc, nf, norm_layer=pre_norm, bias=pre_bias)

        # 2. Per scale, in the original registration order.
        self.scales: list[_DualScale] = []
        for l in range(num_scales):
            c_in, c_out = unet_widths(l, nf, max_nf)
            encp_res = [self._add(f'encp_{l}_res_{i}', ResidualBlock(c_in, None, norm_layer, use_bias, act))
                        for i in range(n_residual_blocks)]
            downsample = self._add(f'encp_{l}_downsample', downsample_block(c_in, c_out, norm_layer, use_bias, act))
            enca_res, enca_vis = [], []
            for i in range(n_residual_blocks):
                enca_res.append(self._add(f'enca_{l}_res_{i}', ResidualBlock(c_in, None, norm_layer, use_bias, act)))
                vis_module = self._make_vis_module(c_in, norm_layer, use_bias) if l < num_warp_scales else None
                if vis_module is not None:
                    enca_vis.append(self._add(f'enca_{l}_vis_{i}', vis_module))
            # Original quirk kept for checkpoint compatibility: the appearance encoder reuses the pose
            # encoder's downsample module; the released files hold both key groups.
            self._add(f'enca_{l}_downsample', downsample)
            if l == num_scales - 1:
                self.dec_fuse = channel_mapping(2 * c_out, c_out, norm_layer=norm_layer, bias=use_bias)
            upsample = self._add(f'dec_{l}_upsample', upsample_block(c_out, c_in, norm_layer, use_bias, act))
            dec_res = []
            for i in range(n_residual_blocks):
                # Original quirk: no_end_norm reaches the last-index block of the coarsest
                # scale, which is the first decoder block to run.
                end = no_end_norm and l == num_scales - 1 and i == n_residual_blocks - 1
                dec_res.append(self._add(f'dec_{l}_res_{i}', ResidualBlock(
                    c_in, self.vis_expand_mult * c_in, norm_layer, use_bias, act, use_dropout, no_end_norm=end)))
            self.scales.append(_DualScale(encp_res, downsample, enca_res, enca_vis or None, upsample, dec_res))

        # 3. Output heads.
        self.dec_output = _output_head(nf, output_nc)
        self.aux_heads = [self._add(f'dec_aux_output_{k}', _output_head(nf, c)) for k, c in enumerate(aux_output_nc)]

    def _add(self, name: str, module: nn.Module) -> nn.Module:
        return register(self, name, module)

    def _make_vis_module(self, c_in: int, norm_layer: NormLayer, use_bias: bool) -> nn.Module | None:
        side_nc = self.vis_expand_mult * c_in
        if self.vis_mode == 'residual':
            return ResidualBlock(c_in, side_nc, norm_layer, use_bias, self.activation)
        if self.vis_mode == 'soft_gate':
            return GateBlock(c_in, side_nc, self.activation)
        if self.vis_mode == 'res_no_vis':
            return ResidualBlock(c_in, None, norm_layer, use_bias, self.activation)
        return None  # 'none' and 'hard_gate' have no learned visibility module

    def forward(self, x_p: torch.Tensor, x_a: torch.Tensor, flow: torch.Tensor | None = None,
                vis: torch.Tensor | None = None, output_feats: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, list]:
        """Generate the target image.

        Args:
            x_p: ``[N, pose_nc, H, W]`` target pose (H, W divisible by ``2**num_scales``).
            x_a: ``[N, appearance_nc, H, W]`` source appearance (image in [-1, 1]).
            flow: ``[N, 2, H, W]`` target->source flow in pixels, or ``None`` for no feature warping.
            vis: ``[N, 1, H, W]`` visibility labels 0/1/2 (rounded here), needed with ``flow`` for
                ``hard_gate``, ``soft_gate`` and ``residual``.
            output_feats: also return the decoder features.

        Returns:
            ``[N, output_nc, H, W]`` raw output; if ``aux_output_nc`` or ``output_feats``, the tuple
            ``(out, aux)`` with ``aux`` = aux-head outputs, then (if ``output_feats``) the list of
            decoder features, finest first, bottleneck last.
        """
        check_divisible(x_p, 2 ** self.num_scales, 'DualUnetGenerator')
        use_fw = flow is not None
        if use_fw and self.vis_mode in ('hard_gate', 'soft_gate', 'residual'):
            if vis is None:
                raise ValueError(f'DualUnetGenerator with vis_mode={self.vis_mode!r} needs vis when flow is given')
            vis = torch.round(vis)

        # 1. Pose encoder.
        hidden_p = []
        x_p = self.encp_pre_conv(x_p)
        for scale in self.scales:
            for block in scale.encp_res:
                x_p = block(x_p)
                hidden_p.append(x_p)
            x_p = scale.downsample(x_p)

        # 2. Appearance encoder; skip features are warped, the encoder itself continues unwarped.
        hidden_a = []
        x_a = self.enca_pre_conv(x_a)
        for l, scale in enumerate(self.scales):
            warp_here = use_fw and l < self.num_warp_scales
            if warp_here:
                flow_l, vis_l = self._pool_flow_vis(flow, vis, l)
            for i, block in enumerate(scale.enca_res):
                x_a = block(x_a)
                if warp_here:
                    vis_module = scale.enca_vis[i] if scale.enca_vis is not None else None
                    hidden_a.append(self._warp_features(x_a, flow_l, vis_l, vis_module))
                else:
                    hidden_a.append(x_a)
            x_a = scale.downsample(x_a)

        # 3. Bottleneck fusion and decoder.
        x = self.dec_fuse(torch.cat((x_p, x_a), dim=1))
        feats = [x]
        for scale in reversed(self.scales):
            x = scale.upsample(x)
            feats.insert(0, x)
            for block in reversed(scale.dec_res):
                x = block(x, torch.cat((hidden_p.pop(), hidden_a.pop()), dim=1))

        # 4. Heads.
        out = self.dec_output(x)
        if not self.aux_heads and not output_feats:
            return out
        aux: list = [head(x) for head in self.aux_heads]
        if output_feats:
            aux.append(feats)
        return out, aux

    @staticmethod
    def _pool_flow_vis(flow: torch.Tensor, vis: torch.Tensor | None, l: int
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Flow and visibility at scale ``l``: flow average-pooled and rescaled to the scale's pixel
        units; visibility min-pooled (priority visible 0 > invisible 1 > background 2)."""
        if l == 0:
            return flow, vis
        k = 2 ** l
        flow_l = F.avg_pool2d(flow, kernel_size=k, stride=k) / k
        vis_l = None if vis is None else -F.max_pool2d(-vis, kernel_size=k, stride=k)
        return flow_l, vis_l

    def _warp_features(self, x: torch.Tensor, flow: torch.Tensor, vis: torch.Tensor | None,
                       vis_module: nn.Module | None) -> torch.Tensor:
        """Warp ``x: [N, C, h, w]`` by ``flow: [N, 2, h, w]`` and combine it with ``vis: [N, 1, h, w]``."""
        x_w = warp_acc_flow(x, flow)
        if self.vis_mode == 'hard_gate':
            return x_w * (vis < 2).to(x_w.dtype)
        if self.vis_mode in ('soft_gate', 'residual'):
            # Split into visible and invisible parts; the background is zero in both.
            x_we = torch.cat((x_w * (vis == 0).to(x_w.dtype), x_w * (vis == 1).to(x_w.dtype)), dim=1)
            return vis_module(x_w, x_we)
        if self.vis_mode == 'res_no_vis':
            return vis_module(x_w)
        return x_w
