"""Builders that read options and construct networks with explicit keyword arguments.

Networks never see the options object; these functions are the one place that maps option names to constructor
arguments. The choice lists and the flow network's architecture defaults are defined here, next to the code that
uses them, and the option sets import them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from models.networks import (DualUnetGenerator, FlowUnet, FlowUnet_v2, NLayerDiscriminator, UnetGenerator,
                             UnetGenerator_MultiOutput, init_weights)

if TYPE_CHECKING:  # annotations only: models never import the options layer at run time
    from options.base_options import Options

FLOW_MODELS = ('unet', 'unet_v2')
GENERATOR_MODELS = ('unet', 'dual_unet')
GAN_TYPES = ('dcgan', 'lsgan')

# Architecture of a flow network when a saved options file lacks a key (the option sets use the same defaults).
FLOW_NETWORK_DEFAULTS: dict[str, object] = {
    'which_model': 'unet_v2', 'nf': 32, 'max_nf': 128, 'start_scale': 2, 'num_scale': 5, 'norm': 'batch',
    'input_type1': 'joint', 'input_type2': 'joint', 'joint_nc': 18, 'seg_nc': 7,
}

# Channels of every item a tensor-type string may name; 'joint'/'seg' depend on the options.
_FIXED_DIMS = {'img': 3, 'img_out': 3, 'img_out_G': 3, 'img_warp': 3, 'flow': 2, 'flow_out': 2, 'flow_tar': 2,
               'vis': 1, 'vis_out': 1, 'vis_tar': 1, 'vismap': 3, 'vismap_out': 3, 'vismap_tar': 3,
               'pix_mask': 1}


def tensor_type_items(type_str: str) -> list[str]:
    items = [s for s in type_str.split('+') if s]
    if not items:
        raise ValueError(f'empty tensor-type string {type_str!r}')
    return items


def item_dim(item: str, joint_nc: int, seg_nc: int) -> int:
    """Channels of one tensor-type item such as ``img_1``, ``joint_2`` or ``flow_out``."""
    if item in _FIXED_DIMS:
        return _FIXED_DIMS[item]
    base = item.rsplit('_', 1)[0] if item.rsplit('_', 1)[-1] in ('1', '2') else item
    if base == 'img':
        return 3
    if base == 'joint':
        return joint_nc
    if base == 'seg':
        return seg_nc
    if base in _FIXED_DIMS:
        return _FIXED_DIMS[base]
    valid = sorted(set(_FIXED_DIMS) | {'img_1', 'img_2', 'joint_1', 'joint_2', 'seg_1', 'seg_2'})
    raise ValueError(f'unknown tensor-type item {item!r}; valid items: {valid}')


def tensor_type_dim(type_str: str, joint_nc: int, seg_nc: int) -> int:
    return sum(item_dim(i, joint_nc, seg_nc) for i in tensor_type_items(type_str))


def flow_input_items(input_type1: str, input_type2: str) -> list[str]:
    """Flow-network inputs: each side's items sorted alphabetically (the original's order), side 1 then side 2."""
    valid = {'img', 'seg', 'joint'}
    items = []
    for side, type_str in (('1', input_type1), ('2', input_type2)):
        names = sorted(tensor_type_items(type_str))
        bad = [n for n in names if n not in valid]
        if bad:
            raise ValueError(f'--input_type{side} items {bad} cannot be network inputs; valid: {sorted(valid)}')
        items += [f'{n}_{side}' for n in names]
    return items


ACTIVATIONS = {'relu': lambda: nn.ReLU(), 'leaky_relu': lambda: nn.LeakyReLU(0.1)}


def activation_from_name(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f'unknown --G_activation {name!r}; valid: {sorted(ACTIVATIONS)}')
    return ACTIVATIONS[name]()


def build_flow_network(which_model: str, input_nc: int, nf: int, max_nf: int, start_scale: int, num_scale: int,
                       norm: str) -> nn.Module:
    """``netF``: ``'unet'`` (FlowUnet) or ``'unet_v2'`` (FlowUnet_v2), random weights.

    The original never passes ``max_nf`` to FlowUnet, which therefore always widens to 512; ``max_nf`` only
    applies to ``unet_v2``.
    """
    if which_model == 'unet':
        return FlowUnet(input_nc=input_nc, nf=nf, start_scale=start_scale, num_scale=num_scale, norm=norm)
    if which_model == 'unet_v2':
        return FlowUnet_v2(input_nc=input_nc, nf=nf, max_nf=max_nf, start_scale=start_scale, num_scales=num_scale,
                           norm=norm)
    raise ValueError(f'unknown --which_model {which_model!r}; valid: {list(FLOW_MODELS)}')


def flow_network_input_nc(input_type1: str, input_type2: str, joint_nc: int, seg_nc: int) -> int:
    return sum(item_dim(i, joint_nc, seg_nc) for i in flow_input_items(input_type1, input_type2))


def define_flow_network(opt: Options) -> nn.Module:
    """``netF`` per ``--which_model``, initialised with ``--init_type``."""
    net = build_flow_network(opt.which_model, flow_network_input_nc(opt.input_type1, opt.input_type2, opt.joint_nc,
                                                                    opt.seg_nc),
                             opt.nf, opt.max_nf, opt.start_scale, opt.num_scale, opt.norm)
    init_weights(net, opt.init_type)
    return net


def define_generator(opt: Options) -> nn.Module:
    """``netG`` per ``--which_model_G``."""
    if opt.which_model_G == 'unet':
        input_nc = tensor_type_dim(f'{opt.G_appearance_type}+{opt.G_pose_type}', opt.joint_nc, opt.seg_nc)
        net = UnetGenerator(input_nc=input_nc, output_nc=3, nf=opt.G_nf, max_nf=opt.G_max_nf,
                            num_scales=opt.G_n_scale, norm=opt.G_norm, activation=activation_from_name(opt.G_activation),
                            use_dropout=bool(opt.use_dropout))
    elif opt.which_model_G == 'dual_unet':
        net = DualUnetGenerator(
            pose_nc=tensor_type_dim(opt.G_pose_type, opt.joint_nc, opt.seg_nc),
            appearance_nc=tensor_type_dim(opt.G_appearance_type, opt.joint_nc, opt.seg_nc),
            output_nc=3, nf=opt.G_nf, max_nf=opt.G_max_nf, num_scales=opt.G_n_scale,
            num_warp_scales=opt.G_n_warp_scale, norm=opt.G_norm, vis_mode=opt.G_vis_mode,
            activation=activation_from_name(opt.G_activation), use_dropout=bool(opt.use_dropout),
            no_end_norm=bool(opt.G_no_end_norm))
    else:
        raise ValueError(f'unknown --which_model_G {opt.which_model_G!r}; valid: {list(GENERATOR_MODELS)}')
    init_weights(net, opt.init_type)
    return net


def define_pixel_warping_network(opt: Options) -> nn.Module:
    """``netPW``: width fixed at nf=32, max_nf=128 whatever the G options (as the original; its checkpoints have
    these widths)."""
    net = UnetGenerator_MultiOutput(
        input_nc=tensor_type_dim(opt.G_pix_warp_input_type, opt.joint_nc, opt.seg_nc), output_nc=[1],
        nf=32, max_nf=128, num_scales=opt.G_n_scale, norm=opt.G_norm, activation=nn.ReLU(), use_dropout=False)
    init_weights(net, opt.init_type)
    return net


def define_discriminator(opt: Options) -> nn.Module:
    """``netD``: sigmoid output for dcgan, raw for lsgan."""
    net = NLayerDiscriminator(input_nc=tensor_type_dim(opt.D_input_type_real, opt.joint_nc, opt.seg_nc),
                              ndf=opt.D_nf, n_layers=opt.D_n_layers, norm_layer=nn.BatchNorm2d,
                              use_sigmoid=(opt.gan_type == 'dcgan'), output_bias=True)
    init_weights(net, opt.init_type)
    return net
