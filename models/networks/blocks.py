"""Building blocks shared by the residual U-Nets.

Module layouts (``Sequential`` indices, sub-module names, which convolutions carry a bias) are part
of the checkpoint format: the authors' released state_dicts address every tensor by these names,
so they must not change. Activations are parameter-free, so one activation object is shared by all
blocks of a network (as in the original); it still occupies its ``Sequential`` index.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

#: An activation argument: a factory such as ``nn.ReLU`` / ``functools.partial(nn.LeakyReLU, 0.1)``,
#: or an already built (parameter-free) module to share.
ActivationArg = Callable[[], nn.Module] | nn.Module
NormLayer = Callable[[int], nn.Module]

NORM_CHOICES = ('batch', 'instance')

# Parameter-free "norm" used where the original disables a normalisation. ``nn.Identity`` accepts
# and ignores the channel argument, so it can stand wherever a norm layer class is expected.
Identity = nn.Identity


def get_norm_layer(norm: str) -> tuple[type[nn.Module], bool]:
    """Return ``(norm_layer, use_bias)`` for the U-Net style networks.

    ``'batch'`` gives ``BatchNorm2d`` with bias-free convolutions (the norm has its own shift);
    ``'instance'`` gives ``InstanceNorm2d`` (affine False, no running stats, hence no state_dict
    entries) with biased convolutions.
    """
    if norm == 'batch':
        return nn.BatchNorm2d, False
    if norm == 'instance':
        return nn.InstanceNorm2d, True
    raise ValueError(f'unknown norm {norm!r}; valid choices are {", ".join(map(repr, NORM_CHOICES))}')


def make_activation(activation: ActivationArg) -> nn.Module:
    """Build the activation from a factory, or pass a ready module through unchanged."""
    if isinstance(activation, nn.Module):
        return activation
    if callable(activation):
        module = activation()
        if not isinstance(module, nn.Module):
            raise TypeError(f'activation factory {activation!r} returned {type(module).__name__}, '
                            'expected an nn.Module')
        return module
    raise TypeError(f'activation must be an nn.Module or a factory returning one, got {activation!r}')


def conv(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, padding: int = 0,
         dilation: int = 1, bias: bool = False, norm_layer: NormLayer = nn.BatchNorm2d) -> nn.Sequential:
    """``Sequential(0: Conv2d, 1: norm_layer(out_channels))``; keys ``0.weight``, ``0.bias``, ``1.*``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                  dilation=dilation, bias=bias),
        norm_layer(out_channels),
    )


def channel_mapping(in_channels: int, out_channels: int, norm_layer: NormLayer = nn.BatchNorm2d,
                    bias: bool = False) -> nn.Sequential:
    """1x1 :func:`conv` (stride 1, no padding) that changes the channel count."""
    return conv(in_channels, out_channels, kernel_size=1, stride=1, padding=0, bias=bias,
                norm_layer=norm_layer)


def downsample_block(in_channels: int, out_channels: int, norm_layer: NormLayer, use_bias: bool,
                     activation: nn.Module) -> nn.Sequential:
    """Halve the resolution: ``Sequential(0: act, 1: Conv2d(k3, s2, p1), 2: norm)``.

    ``[N, in_channels, H, W] -> [N, out_channels, ceil(H/2), ceil(W/2)]``.
    """
    return nn.Sequential(
        activation,
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, bias=use_bias),
        norm_layer(out_channels),
    )


def upsample_block(in_channels: int, out_channels: int, norm_layer: NormLayer, use_bias: bool,
                   activation: nn.Module) -> nn.Sequential:
    """Double the resolution by sub-pixel convolution.

    ``Sequential(0: act, 1: Conv2d(in -> 4*out, k3, p1), 2: PixelShuffle(2), 3: norm(out))``;
    ``[N, in_channels, H, W] -> [N, out_channels, 2H, 2W]``.
    """
    return nn.Sequential(
        activation,
        nn.Conv2d(in_channels, 4 * out_channels, kernel_size=3, stride=1, padding=1, bias=use_bias),
        nn.PixelShuffle(2),
        norm_layer(out_channels),
    )


class ResidualBlock(nn.Module):
    """Pre-activation residual block with an optional side input.

    Without side input: ``out = x + conv(act(x))``. With side input ``a``:
    ``out = x + conv(act(concat(x, conv_a(act(a)))))``. ``conv`` is Conv3x3 + norm; the identity path
    carries the raw ``x``.

    Args:
        dim: channels of ``x`` and of the output.
        dim_a: channels of the side input ``a``; ``None`` (or <= 0) for a block without side input.
        norm_layer: norm class; ``use_bias`` says whether the convolutions before it carry a bias.
        activation: activation factory or shared module instance.
        use_dropout: dropout (p=0.5) on the output while in training mode.
        no_end_norm: replace the norm of ``conv`` by :data:`Identity` and give its conv a bias.
    """

    def __init__(self, dim: int, dim_a: int | None = None, norm_layer: NormLayer = nn.BatchNorm2d,
                 use_bias: bool = False, activation: ActivationArg = nn.ReLU, use_dropout: bool = False,
                 no_end_norm: bool = False) -> None:
        super().__init__()
        self.use_dropout = use_dropout
        self.activation = make_activation(activation)
        self.has_side_input = dim_a is not None and dim_a > 0
        end_norm, end_bias = (Identity, True) if no_end_norm else (norm_layer, use_bias)
        # Registration order conv_a -> conv is the original's (optimizer-state compatibility).
        if self.has_side_input:
            self.conv_a = channel_mapping(dim_a, dim, norm_layer=norm_layer, bias=use_bias)
            self.conv = conv(2 * dim, dim, kernel_size=3, padding=1, bias=end_bias, norm_layer=end_norm)
        else:
            self.conv = conv(dim, dim, kernel_size=3, padding=1, bias=end_bias, norm_layer=end_norm)

    def forward(self, x: torch.Tensor, a: torch.Tensor | None = None) -> torch.Tensor:
        """``x: [N, dim, H, W]``, ``a: [N, dim_a, H, W]`` (exactly when built with ``dim_a``) -> ``[N, dim, H, W]``."""
        if self.has_side_input != (a is not None):
            expected = 'requires a side input' if self.has_side_input else 'takes no side input'
            raise ValueError(f'this ResidualBlock {expected}')
        r = x if a is None else torch.cat((x, self.conv_a(self.activation(a))), dim=1)
        out = x + self.conv(self.activation(r))
        if self.use_dropout:
            out = F.dropout(out, p=0.5, training=self.training)
        return out


class GateBlock(nn.Module):
    """Multiplicative gate computed from a side input: ``x * sigmoid(conv(act(a)))``.

    ``x: [N, dim, H, W]``, ``a: [N, dim_a, H, W]`` -> ``[N, dim, H, W]``; ``conv`` is a biased 1x1 conv.
    """

    def __init__(self, dim: int, dim_a: int, activation: ActivationArg = nn.ReLU) -> None:
        super().__init__()
        self.activation = make_activation(activation)
        self.conv = nn.Conv2d(dim_a, dim, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(self.activation(a)))
