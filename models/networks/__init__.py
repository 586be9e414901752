"""Networks of the flow regression and pose transfer models (SPEC §4, §5).

Also re-exports the losses (``models.losses``) and image metrics (``util.metrics``) under this
package, as the original ``networks`` module offered them. Those are resolved lazily: ``models.losses``
itself imports ``models.networks.warp``, so an eager import here would be circular.
"""
import importlib

from .blocks import (GateBlock, Identity, ResidualBlock, channel_mapping, conv, downsample_block, get_norm_layer,
                     make_activation, upsample_block)
from .discriminator import NLayerDiscriminator
from .flow_networks import FlowUnet, FlowUnet_v2, FlowUnetBlock
from .generators import VIS_MODES, DualUnetGenerator, UnetGenerator, UnetGenerator_MultiOutput
from .init import INIT_TYPES, init_weights
from .legacy import IncompatibleKeys, StateDictMismatchError, load_network, load_state_dict_compat
from .warp import warp_acc_flow

_LAZY_REEXPORTS = {
    'MultiScaleFlowLoss': 'models.losses',
    'SS_FlowLoss': 'models.losses',
    'EPE': 'models.losses',
    'GANLoss': 'models.losses',
    'VGGLoss': 'models.losses',
    'SSIM': 'util.metrics.ssim',
    'PSNR': 'util.metrics.psnr',
}

__all__ = [
    'GateBlock', 'Identity', 'ResidualBlock', 'channel_mapping', 'conv', 'downsample_block', 'get_norm_layer',
    'make_activation', 'upsample_block', 'NLayerDiscriminator', 'FlowUnet', 'FlowUnet_v2', 'FlowUnetBlock',
    'VIS_MODES', 'DualUnetGenerator', 'UnetGenerator', 'UnetGenerator_MultiOutput', 'INIT_TYPES', 'init_weights',
    'IncompatibleKeys', 'StateDictMismatchError', 'load_network', 'load_state_dict_compat', 'warp_acc_flow',
    *_LAZY_REEXPORTS,
]


def __getattr__(name: str):
    if name in _LAZY_REEXPORTS:
        value = getattr(importlib.import_module(_LAZY_REEXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__() -> list[str]:
    return sorted(__all__)
