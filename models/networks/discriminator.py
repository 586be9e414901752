"""PatchGAN discriminator ``netD``."""
from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn as nn


def _is_instance_norm(norm_layer: Callable[[int], nn.Module]) -> bool:
    if isinstance(norm_layer, functools.partial):
        norm_layer = norm_layer.func
    return norm_layer is nn.InstanceNorm2d


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator: one logit per overlapping patch.

    Layout of ``model`` (indices are checkpoint keys), widths ``ndf * min(2**n, 8)``: a biased
    stride-2 conv + LeakyReLU(0.2); ``n_layers - 1`` stride-2 [conv, norm, LeakyReLU] groups; one
    stride-1 group; a stride-1 conv to one channel (bias per ``output_bias``); ``Sigmoid`` if
    ``use_sigmoid``. Convolutions followed by ``BatchNorm2d`` have no bias (with
    ``InstanceNorm2d`` they do).

    Args:
        input_nc: input channels (source image + image + target pose = 24 by default).
        ndf: width of the first layer.
        n_layers: number of stride-2 convolutions.
        norm_layer: normalisation class (``nn.BatchNorm2d`` or ``nn.InstanceNorm2d``).
        use_sigmoid: append a ``Sigmoid`` (the ``dcgan`` GAN type).
        output_bias: bias of the output convolution.

    Forward: ``x: [N, input_nc, H, W] -> [N, 1, h, w]`` (30x30 for 256x256, 14x6 for 128x64 inputs
    with ``n_layers=3``); probabilities with ``use_sigmoid``, logits otherwise.
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3,
                 norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d, use_sigmoid: bool = False,
                 output_bias: bool = True) -> None:
        super().__init__()
        use_bias = _is_instance_norm(norm_layer)
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1, bias=True),
                                   nn.LeakyReLU(0.2)]
        width = ndf
        for n in range(1, n_layers + 1):
            new_width = ndf * min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(width, new_width, kernel_size=4, stride=stride, padding=1, bias=use_bias),
                       norm_layer(new_width), nn.LeakyReLU(0.2)]
            width = new_width
        layers.append(nn.Conv2d(width, 1, kernel_size=4, stride=1, padding=1, bias=output_bias))
        if use_sigmoid:
            layers.append(nn.Sigmoid())
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
