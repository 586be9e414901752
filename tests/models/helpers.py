"""Helpers of the model tests: a flow experiment folder with random weights, and tiny model configurations."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from models.networks import FlowUnet, FlowUnet_v2
from options.base_options import Options
from options.pose_transfer_options import TrainPoseTransferOptions

TINY_SIZE = (32, 32)


def write_flow_experiment(folder: Path, label: str = 'best', weight_std: float = 1.0, **arch) -> torch.nn.Module:
    """A flow experiment folder as training writes it: ``train_opt.json`` (a tiny ``unet_v2`` unless ``arch``
    says otherwise) and ``<label>_net_netF.pth`` with random N(0, ``weight_std``²) parameters. Returns the network
    written. (With N(0, 1) the predicted flow reaches 1e19 pixels; 0.1 gives a few pixels.)"""
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
        p.data.normal_(0, weight_std)
    torch.save(net.state_dict(), folder / f'{label}_net_netF.pth')
    return net


def tiny_pose_options(checkpoints_dir: Path, *extra: str, flow_id: str = 'FlowReg_tiny') -> Options:
    """Training options of a tiny pose-transfer model (32x32 images, widths 8-16, three scales) that reads its flow
    network from ``<checkpoints_dir>/<flow_id>`` and needs no VGG weights. ``extra`` arguments override."""
    return TrainPoseTransferOptions().parse(
        ['--id', 'tiny', '--dataset_name', 'demo', '--gpu_ids', '-1', '--checkpoints_dir', str(checkpoints_dir),
         '--num_workers', '0', '--image_size', str(TINY_SIZE[0]), str(TINY_SIZE[1]), '--pretrained_flow_id', flow_id,
         '--G_nf', '8', '--G_max_nf', '16', '--G_n_scale', '3', '--G_n_warp_scale', '2', '--D_nf', '8',
         '--D_n_layers', '2', '--loss_weight_content', '0', *extra], display=False, save=False)


def random_batch(n: int = 2, size: tuple[int, int] = TINY_SIZE, joint_nc: int = 18, seg_nc: int = 7,
                 seed: int = 0) -> dict:
    """A collated batch with every key the models read: images in [-1, 1], binary joint maps, one-hot
    segmentations, flow in pixels, visibility labels 0/1/2 (all three present)."""
    g = torch.Generator().manual_seed(seed)
    h, w = size

    def one_hot(labels, c):
        return torch.nn.functional.one_hot(labels, c).permute(0, 3, 1, 2).float()

    seg_labels = [torch.randint(0, seg_nc, (n, h, w), generator=g) for _ in range(2)]
    vis = torch.randint(0, 3, (n, 1, h, w), generator=g).float()
    return {
        'img_1': torch.rand(n, 3, h, w, generator=g) * 2 - 1, 'img_2': torch.rand(n, 3, h, w, generator=g) * 2 - 1,
        'joint_c_1': torch.rand(n, joint_nc, 2, generator=g) * (w - 1),
        'joint_c_2': torch.rand(n, joint_nc, 2, generator=g) * (w - 1),
        'joint_1': (torch.rand(n, joint_nc, h, w, generator=g) < 0.05).float(),
        'joint_2': (torch.rand(n, joint_nc, h, w, generator=g) < 0.05).float(),
        'seg_1': one_hot(seg_labels[0], seg_nc), 'seg_2': one_hot(seg_labels[1], seg_nc),
        'seg_label_1': seg_labels[0][:, None].float(), 'seg_label_2': seg_labels[1][:, None].float(),
        'flow_2to1': torch.randn(n, 2, h, w, generator=g) * 3, 'vis_2': vis,
        'id_1': [f'a{i}' for i in range(n)], 'id_2': [f'b{i}' for i in range(n)],
    }
