"""The residual U-Net trunk shared by the generators (``UnetGenerator``, ``UnetGenerator_MultiOutput``) and the
flow network ``FlowUnet_v2``, and the helpers both network families use.

Checkpoint format. The authors' checkpoints address every tensor by a flat attribute name such as
``enc_3_res_1.conv.0.weight``. Those names are therefore registered verbatim with :func:`register` (in the
original order, which also fixes the order of ``parameters()`` and hence of saved optimizer states). ``forward``
never looks modules up by formatted name: each scale keeps plain references to its modules in a small dataclass,
so the structure can be read from the code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from .blocks import (ActivationArg, ResidualBlock, channel_mapping, downsample_block, get_norm_layer,
                     make_activation, upsample_block)


def register(parent: nn.Module, name: str, module: nn.Module) -> nn.Module:
    """``parent.add_module(name, module)`` returning ``module``: registers a child under the checkpoint's flat key
    name while the caller keeps a plain reference to it."""
    parent.add_module(name, module)
    return module


def unet_widths(l: int, nf: int, max_nf: int) -> tuple[int, int]:
    """``(c_in, c_out)`` of scale ``l``: ``min(nf*(l+1), max_nf)``, ``min(nf*(l+2), max_nf)``."""
    return min(nf * (l + 1), max_nf), min(nf * (l + 2), max_nf)


def check_divisible(x: torch.Tensor, factor: int, name: str, rule: str = '2**num_scales') -> None:
    h, w = x.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f'{name}: spatial size {h}x{w} must be divisible by {rule} = {factor}')


@dataclass(eq=False)
class UnetScale:
    """References to the modules of one scale of a single-path residual U-Net."""
    enc_res: list[ResidualBlock]
    downsample: nn.Sequential
    upsample: nn.Sequential
    dec_res: list[ResidualBlock]
    head: nn.Module | None = None


class ResidualUnet(nn.Module):
    """Encoder/decoder trunk shared by :class:`UnetGenerator`, :class:`UnetGenerator_MultiOutput` and
    :class:`~models.networks.flow_networks.FlowUnet_v2`.

    Registers ``pre_conv`` and, per scale ``l``, ``enc_{l}_res_{i}``, ``enc_{l}_downsample``,
    ``dec_{l}_upsample``, ``dec_{l}_res_{i}`` and, when ``scale_head = (name, factory)`` is given,
    ``{name}_{l}`` = ``factory(c_in)``; subclasses add the output head(s) afterwards.

    width_offset: scale ``l`` uses the widths of scale ``l + width_offset`` (FlowUnet_v2's ``start_level``).
    pre_conv: replaces the default ``channel_mapping(input_nc -> nf)``; it must reduce the resolution by
        ``input_downscale``.
    """

    def __init__(self, input_nc: int, nf: int, max_nf: int, num_scales: int, n_residual_blocks: int,
                 norm: str, activation: ActivationArg, use_dropout: bool, *, width_offset: int = 0,
                 pre_conv: nn.Module | None = None, input_downscale: int = 1,
                 scale_head: tuple[str, Callable[[int], nn.Module]] | None = None) -> None:
        super().__init__()
        norm_layer, use_bias = get_norm_layer(norm)
        self.activation = make_activation(activation)
        self.num_scales = num_scales
        self.input_downscale = input_downscale
        self.pre_conv = (pre_conv if pre_conv is not None
                         else channel_mapping(input_nc, nf, norm_layer=norm_layer, bias=use_bias))
        self.scales: list[UnetScale] = []
        for l in range(num_scales):
            c_in, c_out = unet_widths(l + width_offset, nf, max_nf)
            enc_res = [self._add(f'enc_{l}_res_{i}', ResidualBlock(c_in, None, norm_layer, use_bias, self.activation))
                       for i in range(n_residual_blocks)]
            downsample = self._add(f'enc_{l}_downsample',
                                   downsample_block(c_in, c_out, norm_layer, use_bias, self.activation))
            upsample = self._add(f'dec_{l}_upsample',
                                 upsample_block(c_out, c_in, norm_layer, use_bias, self.activation))
            dec_res = [self._add(f'dec_{l}_res_{i}', ResidualBlock(c_in, c_in, norm_layer, use_bias,
                                                                   self.activation, use_dropout))
                       for i in range(n_residual_blocks)]
            head = self._add(f'{scale_head[0]}_{l}', scale_head[1](c_in)) if scale_head else None
            self.scales.append(UnetScale(enc_res, downsample, upsample, dec_res, head))

    def _add(self, name: str, module: nn.Module) -> nn.Module:
        return register(self, name, module)

    def _trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``[N, input_nc, H, W] -> ([N, c_in(0), H/input_downscale, W/input_downscale], head outputs)``: the
        decoder features before the output head(s), and the per-scale head outputs finest first (empty without
        ``scale_head``)."""
        check_divisible(x, self.input_downscale * 2 ** self.num_scales, type(self).__name__,
                         '2**num_scales' if self.input_downscale == 1 else 'start_scale * 2**num_scales')
        x = self.pre_conv(x)
        skips = []
        for scale in self.scales:
            for block in scale.enc_res:
                x = block(x)
                skips.append(x)
            x = scale.downsample(x)
        head_outputs = []
        for scale in reversed(self.scales):
            x = scale.upsample(x)
            # dec_{l}_res_{i} receives the output of enc_{l}_res_{i}: blocks run last-to-first.
            for block in reversed(scale.dec_res):
                x = block(x, skips.pop())
            if scale.head is not None:
                head_outputs.insert(0, scale.head(x))
        return x, head_outputs
