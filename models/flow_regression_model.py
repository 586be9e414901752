"""Stage 1: regress the intrinsic appearance flow and visibility from two poses."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from models.base_model import BaseModel
from models.factory import (FLOW_NETWORK_DEFAULTS, build_flow_network, define_flow_network, flow_input_items,
                            flow_network_input_nc)
from models.losses import EPE, MultiScaleFlowLoss, SS_FlowLoss, visibility_loss
from models.networks import init_weights
from util.flow_util import FLOW_SCALE
from util.io import load_json
from util.weights import load_network, network_path

if TYPE_CHECKING:  # annotations only: models never import the options layer at run time
    from options.base_options import Options


def load_frozen_flow_network(flow_dir: str | Path, label: str, device: torch.device | str) -> nn.Module:
    """The trained flow network of the experiment folder ``flow_dir``, frozen, in eval mode, on ``device``.

    The architecture comes from ``<flow_dir>/train_opt.json`` (a key missing from an old file takes the flow
    option sets' default, with a warning naming it), the weights from ``<flow_dir>/<label>_net_netF.pth``.
    """
    flow_dir = Path(flow_dir)
    opt_file = flow_dir / 'train_opt.json'
    if not opt_file.is_file():
        raise FileNotFoundError(f'flow network options {opt_file} not found: the folder named by '
                                f'--pretrained_flow_id must hold a trained flow module (train_opt.json and '
                                f'{label}_net_netF.pth)')
    saved = load_json(opt_file)
    arch = {}
    for key, default in FLOW_NETWORK_DEFAULTS.items():
        if key not in saved:
            warnings.warn(f'{opt_file} has no {key!r}: using the default {default!r}, which may not match the '
                          f'saved network weights', UserWarning, stacklevel=2)
        arch[key] = saved.get(key, default)
    net = build_flow_network(arch['which_model'],
                             flow_network_input_nc(arch['input_type1'], arch['input_type2'], arch['joint_nc'],
                                                   arch['seg_nc']),
                             arch['nf'], arch['max_nf'], arch['start_scale'], arch['num_scale'], arch['norm'])
    # Initialised before loading, as the original did: the draws keep the global random stream, and with it every
    # later random draw of a training run, identical to the original's order.
    init_weights(net, saved.get('init_type', 'kaiming'))
    weights = network_path(flow_dir, label, 'netF')
    if not weights.is_file():
        raise FileNotFoundError(f'flow network weights {weights} not found: check --pretrained_flow_epoch '
                                f'({label!r}) and that {flow_dir} is complete')
    load_network(net, weights)
    net.to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net



class FlowRegressionModel(BaseModel):
    """``netF`` with the multi-scale flow loss, visibility cross-entropy and segmentation-sensitive flow loss.

    Outputs after :meth:`forward` (``self.output``):
        ``flow_out``: ``[N, 2, H, W]`` flow in pixels (20 × upsampled finest pyramid level);
        ``vis_out``: ``[N, 3, H, W]`` visibility logits; ``flow_pyramid_out``: list of raw levels (flow / 20);
        ``mask_out``/``mask_tar``: ``[N, 1, H, W]`` human masks (predicted / ground truth);
        ``flow_final``: ``flow_out · mask_out``; ``flow_tar``, ``vis_tar``: ground truth.
    """

    name = 'FlowRegressionModel'

    def __init__(self, opt: Options):
        super().__init__(opt)
        self.input_items = flow_input_items(opt.input_type1, opt.input_type2)
        self.netF = define_flow_network(opt).to(self.device)
        self.nets = {'netF': self.netF}
        self.crit_flow = MultiScaleFlowLoss(start_scale=opt.start_scale, num_scale=opt.num_scale, l_weight=0.32,
                                            loss_type=opt.flow_loss_type)
        self.crit_flow_ss = SS_FlowLoss(loss_type='l1') if opt.use_ss_flow_loss else None
        self.crit_epe = EPE()
        # Loss weights are training options; the test script reports the unweighted losses.
        self.loss_weights = ({'flow': opt.loss_weight_flow, 'vis': opt.loss_weight_vis,
                              'flow_ss': opt.loss_weight_flow_ss} if self.is_train else
                             {'flow': 1.0, 'vis': 1.0, 'flow_ss': 1.0})
        if self.is_train:
            self.optimizers['optim'] = self._make_optimizer(self.netF.parameters(), opt.lr, (opt.beta1, opt.beta2),
                                                            opt.weight_decay)
            self.setup_plateau(mode='min')
        else:
            self.load_network_file(self.netF, self.expr_dir, opt.which_epoch, 'netF')
            self.netF.eval()

    # --------------------------------------------------------------------------------------------------- forward
    def network_input(self) -> torch.Tensor:
        return torch.cat([self.input[item] for item in self.input_items], dim=1)

    def forward(self) -> None:
        flow, vis, pyramid, feat = self.netF(self.network_input())
        flow_out = FLOW_SCALE * flow
        mask_out = (vis.argmax(dim=1, keepdim=True) < 2).float()
        vis_tar = self.input['vis_2']
        self.output = {
            'flow_pyramid_out': pyramid, 'flow_out': flow_out, 'vis_out': vis, 'flow_tar': self.input['flow_2to1'],
            'vis_tar': vis_tar, 'flow_feat': feat, 'mask_out': mask_out, 'mask_tar': (vis_tar < 2).float(),
            'flow_final': flow_out * mask_out,
        }

    def compute_loss(self) -> dict[str, torch.Tensor]:
        """Weighted loss terms (keys without the ``loss_`` prefix) and ``self.loss``/``self.meas`` for logging."""
        out, w = self.output, self.loss_weights
        self.loss = {'loss_flow': self.crit_flow(out['flow_pyramid_out'], out['flow_tar'], out['mask_tar']),
                     'loss_vis': visibility_loss(out['vis_out'], out['vis_tar'])}
        weighted = {'flow': w['flow'] * self.loss['loss_flow'], 'vis': w['vis'] * self.loss['loss_vis']}
        if self.crit_flow_ss is not None:
            self.loss['loss_flow_ss'] = self.crit_flow_ss(out['flow_out'], out['flow_tar'], self.input['seg_1'],
                                                          self.input['seg_2'], out['vis_tar'])
            weighted['flow_ss'] = w['flow_ss'] * self.loss['loss_flow_ss']
        with torch.no_grad():
            self.loss['EPE'] = self.crit_epe(out['flow_out'], out['flow_tar'], out['mask_tar'])
        return weighted

    # ------------------------------------------------------------------------------------------------ training
    def optimize_parameters(self, check_grad: bool = False) -> None:
        self.netF.train()
        self.forward()
        self.optimizers['optim'].zero_grad(set_to_none=True)
        weighted = self.compute_loss()
        self.meas = {}
        if check_grad:
            self.meas.update(self.backward_with_grad_check(weighted, self.netF))
        else:
            sum(weighted.values()).backward()
        self.step_if_finite('optim', weighted)

    def test(self, compute_loss: bool = False) -> None:
        self.loss, self.meas = {}, {}
        with torch.no_grad():
            self.forward()
            if compute_loss:
                self.compute_loss()
                # Reference for EPE: predicting no motion at all.
                out = self.output
                self.meas['zero_flow_EPE'] = float(self.crit_epe(torch.zeros_like(out['flow_tar']), out['flow_tar'],
                                                                 out['mask_tar']))

    def train_mode(self) -> None:
        self.netF.train()

    def eval_mode(self) -> None:
        self.netF.eval()

    def get_current_errors(self) -> dict[str, float]:
        # EPE first: it is the selection metric and the first number of the original's log lines.
        errors = super().get_current_errors()
        return dict(sorted(errors.items(), key=lambda kv: kv[0] != 'EPE'))

    def get_current_visuals(self) -> dict[str, tuple[torch.Tensor, str]]:
        """Panels of the flow model's visual grid, in the original's order."""
        inp, out = self.input, self.output
        return {
            'img_1': (inp['img_1'], 'rgb'), 'img_2': (inp['img_2'], 'rgb'),
            'joint_1': (inp['joint_1'], 'pose'), 'joint_2': (inp['joint_2'], 'pose'),
            'seg_1': (inp['seg_1'], 'seg'), 'seg_2': (inp['seg_2'], 'seg'),
            'flow_tar': (out['flow_tar'], 'flow'), 'flow_out': (out['flow_out'], 'flow'),
            'vis_tar': (out['vis_tar'], 'vis'), 'vis_out': (out['vis_out'], 'vis'),
            'flow_final': (out['flow_final'], 'flow'),
        }
