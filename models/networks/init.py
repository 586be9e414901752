"""Weight initialisation applied to every newly built network (``--init_type``)."""
from __future__ import annotations

import torch.nn as nn

INIT_TYPES = ('normal', 'normal2', 'xavier', 'kaiming', 'orthogonal')


def init_weights(net: nn.Module, init_type: str = 'kaiming') -> nn.Module:
    """Initialise ``net`` in place by class name and return it.

    Conv* (including ``ConvTranspose2d``) and ``Linear`` weights: ``normal`` N(0, 0.02),
    ``normal2`` N(0, 0.001), ``xavier`` Xavier-normal with gain 0.02, ``kaiming`` Kaiming-normal
    (a=0, fan_in), ``orthogonal`` gain 1. ``BatchNorm2d`` weights: N(1, 0.001) for ``normal2``,
    N(1, 0.02) otherwise. Biases of these layers are zeroed; running statistics and parameter-free
    norms are left alone.
    """
    if init_type not in INIT_TYPES:
        raise ValueError(f'unknown init_type {init_type!r}; valid choices are {", ".join(map(repr, INIT_TYPES))}')
    std = 0.001 if init_type == 'normal2' else 0.02

    def init_module(m: nn.Module) -> None:
        classname = type(m).__name__
        if classname.startswith('Conv') or classname == 'Linear':
            if init_type in ('normal', 'normal2'):
                nn.init.normal_(m.weight, 0.0, std)
            elif init_type == 'xavier':
                nn.init.xavier_normal_(m.weight, gain=0.02)
            elif init_type == 'kaiming':
                nn.init.kaiming_normal_(m.weight, a=0, mode='fan_in')
            else:
                nn.init.orthogonal_(m.weight, gain=1)
        elif classname.startswith('BatchNorm2d'):
            if m.weight is not None:  # affine=False has nothing to initialise
                nn.init.normal_(m.weight, 1.0, std)
        else:
            return
        if getattr(m, 'bias', None) is not None:
            nn.init.zeros_(m.bias)

    net.apply(init_module)
    return net
