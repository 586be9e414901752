"""Helpers of the model tests: a flow experiment folder with random weights, and tiny model configurations."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from models.networks import FlowUnet, FlowUnet_v2


def write_flow_experiment(folder: Path, label: str = 'best', **arch) -> torch.nn.Module:
    """A flow experiment folder as training writes it: ``train_opt.json`` (a tiny ``unet_v2`` unless ``arch``
    says otherwise) and ``<label>_net_netF.pth`` with random N(0, 1) weights. Returns the network written."""
    saved = {'which_model': 'unet_v2', 'nf': 8, 'max_nf': 16, 'start_scale': 2, 'num_scale': 3, 'norm': 'batch',
             'input_type1': 'joint', 'input_type2': 'joint', 'joint_nc': 18, 'seg_nc': 7, 'init_type': 'kaiming',
             'dataset_name': 'demo', 'lr': 1e-4}
    saved.update(arch)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'train_opt.json').write_text(json.dumps(saved))
    kind = FlowUnet if saved['which_model'] == 'unet' else FlowUnet_v2
    kwargs = dict(input_nc=36, nf=saved['nf'], start_scale=saved['start_scale'], norm=saved['norm'])
    if kind is FlowUnet:
        net = FlowUnet(num_scale=saved['num_scale'], **kwargs)
    else:
        net = FlowUnet_v2(max_nf=saved['max_nf'], num_scales=saved['num_scale'], **kwargs)
    torch.manual_seed(3)
    for p in net.parameters():
        p.data.normal_()
    torch.save(net.state_dict(), folder / f'{label}_net_netF.pth')
    return net
