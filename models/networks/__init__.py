"""Networks of the flow regression and pose-transfer models, by family.

* ``blocks``: convolution, residual, gate, down/upsampling blocks and the norm/activation helpers;
* ``residual_unet``: the residual U-Net trunk shared by the generators and ``FlowUnet_v2``;
* ``generators``: ``UnetGenerator``, ``UnetGenerator_MultiOutput`` (pixel warping), ``DualUnetGenerator``;
* ``flow_networks``: ``FlowUnet``, ``FlowUnet_v2``;
* ``discriminator``: ``NLayerDiscriminator``;
* ``init``: the weight-initialisation schemes.

Compatibility: the original kept all of these in one module, ``models/networks.py``, which also exposed the
losses, the image metrics, the warp and the weight loaders. Code written against the original imports those names
from ``models.networks``; they are re-exported here on purpose, so that such code ports without edits. New code
should import them from where they live (``models.losses``, ``metrics``, ``util.flow_util``, ``util.weights``).
"""
from metrics.psnr import PSNR
from metrics.ssim import SSIM
from models.losses import EPE, GANLoss, MultiScaleFlowLoss, SS_FlowLoss, VGGLoss
from util.flow_util import warp_acc_flow
from util.weights import IncompatibleKeys, StateDictMismatchError, load_network, load_state_dict_compat

from .blocks import (GateBlock, Identity, ResidualBlock, channel_mapping, conv, downsample_block, get_norm_layer,
                     make_activation, upsample_block)
from .discriminator import NLayerDiscriminator
from .flow_networks import FlowUnet, FlowUnet_v2, FlowUnetBlock
from .generators import VIS_MODES, DualUnetGenerator, UnetGenerator, UnetGenerator_MultiOutput
from .init import INIT_TYPES, init_weights

__all__ = [
    'GateBlock', 'Identity', 'ResidualBlock', 'channel_mapping', 'conv', 'downsample_block', 'get_norm_layer',
    'make_activation', 'upsample_block', 'NLayerDiscriminator', 'FlowUnet', 'FlowUnet_v2', 'FlowUnetBlock',
    'VIS_MODES', 'DualUnetGenerator', 'UnetGenerator', 'UnetGenerator_MultiOutput', 'INIT_TYPES', 'init_weights',
    'IncompatibleKeys', 'StateDictMismatchError', 'load_network', 'load_state_dict_compat', 'warp_acc_flow',
    'MultiScaleFlowLoss', 'SS_FlowLoss', 'EPE', 'GANLoss', 'VGGLoss', 'SSIM', 'PSNR',
]
