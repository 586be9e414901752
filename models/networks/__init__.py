"""Networks of the flow regression and pose transfer models (SPEC §4, §5)."""
from .blocks import (GateBlock, Identity, ResidualBlock, channel_mapping, conv, downsample_block, get_norm_layer,
                     make_activation, upsample_block)
from .discriminator import NLayerDiscriminator
from .flow_networks import FlowUnet, FlowUnet_v2, FlowUnetBlock
from .generators import VIS_MODES, DualUnetGenerator, UnetGenerator, UnetGenerator_MultiOutput
from .init import INIT_TYPES, init_weights
from .legacy import IncompatibleKeys, StateDictMismatchError, load_network, load_state_dict_compat
from .warp import warp_acc_flow
