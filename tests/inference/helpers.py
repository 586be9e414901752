"""Helpers of the inference tests: model folders with random weights, skeletons and synthetic photos."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch

from models.factory import define_flow_network, define_generator, define_pixel_warping_network
from models.keypoint_detector import TorchvisionKeypointDetector, build_keypoint_rcnn
from options.base_options import save_options
from options.flow_regression_options import TrainFlowRegressionOptions
from options.pose_transfer_options import TrainPoseTransferOptions
from util.pose_util import DRAW_LIMBS

# Small internal resize and few proposals keep a Keypoint R-CNN forward pass on the CPU well under a second.
FAST_DETECTOR = dict(min_size=64, max_size=96, max_detections=3, num_proposals=30)
TINY_G = ['--G_nf', '8', '--G_max_nf', '16']


def randomize_batchnorm(net: torch.nn.Module, seed: int) -> None:
    """Random running statistics, so eval-mode BatchNorm differs from batch statistics (and from identity)."""
    gen = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=gen))
            module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=gen))


def write_model_folder(ckpt: Path, pose_id: str = 'PoseTransfer_tiny', flow_id: str = 'FlowReg_tiny', *,
                       dataset_name: str = 'demo', pix_warp: bool = True, labels: tuple[str, ...] = ('best',),
                       extra_args: tuple[str, ...] = (), seed: int = 0) -> Path:
    """A pose-transfer experiment folder ``ckpt/pose_id`` (tiny networks, random weights) and its flow folder.

    Written like the training scripts write them: ``train_opt.json`` and ``<label>_net_<name>.pth`` for every
    label. Returns the pose folder.
    """
    torch.manual_seed(seed)
    flow_dir = ckpt / flow_id
    if not (flow_dir / 'train_opt.json').is_file():
        flow_opt = TrainFlowRegressionOptions().parse(
            ['--id', flow_id, '--dataset_name', dataset_name, '--which_model', 'unet_v2', '--nf', '8', '--max_nf', '16',
             '--gpu_ids', '-1'], display=False, save=False)
        save_options(flow_opt, flow_dir / 'train_opt.json')
        net_f = define_flow_network(flow_opt)
        randomize_batchnorm(net_f, seed + 1)
        for label in labels:
            torch.save(net_f.state_dict(), flow_dir / f'{label}_net_netF.pth')
    pose_opt = TrainPoseTransferOptions().parse(
        ['--id', pose_id, '--dataset_name', dataset_name, '--which_model_G', 'dual_unet', '--G_feat_warp', '1',
         '--G_vis_mode', 'residual', '--G_pix_warp', str(int(pix_warp)), '--pretrained_flow_id', flow_id,
         *(['--pretrained_G_id', f'{pose_id}_no_pix_warp'] if pix_warp else []),
         '--gpu_ids', '-1', *TINY_G, *extra_args], display=False, save=False)
    pose_dir = ckpt / pose_opt.id
    save_options(pose_opt, pose_dir / 'train_opt.json')
    nets = {'netG': define_generator(pose_opt)}
    if pix_warp:
        nets['netPW'] = define_pixel_warping_network(pose_opt)
    for i, (name, net) in enumerate(nets.items()):
        randomize_batchnorm(net, seed + 2 + i)
        for label in labels:
            torch.save(net.state_dict(), pose_dir / f'{label}_net_{name}.pth')
    return pose_dir


def skeleton(x0: float = 300.0, y0: float = 120.0, scale: float = 2.0) -> np.ndarray:
    """Front-facing COCO-18 pose ``float32 [18, 2]``: nose at ``(x0, y0)``, 140 * scale pixels from the eyes to the
    ankles."""
    rel = [(0, 0), (0, 22), (-15, 22), (-20, 45), (-22, 68), (15, 22), (20, 45), (22, 68), (-9, 70), (-10, 105),
           (-10, 140), (9, 70), (10, 105), (10, 140), (-4, -4), (4, -4), (-8, -2), (8, -2)]
    return np.array([[x0 + scale * dx, y0 + scale * dy] for dx, dy in rel], dtype=np.float32)


def rotate_arms(pose: np.ndarray, degrees: float) -> np.ndarray:
    """A different pose: both arms raised by ``degrees`` about the shoulders."""
    out = pose.copy()
    a = math.radians(degrees)
    for shoulder, joints, sign in ((2, (3, 4), 1), (5, (6, 7), -1)):
        c, s = math.cos(sign * a), math.sin(sign * a)
        for j in joints:
            d = pose[j] - pose[shoulder]
            out[j] = pose[shoulder] + np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]])
    return out


def synthetic_photo(pose: np.ndarray, height: int = 480, width: int = 640, seed: int = 0) -> np.ndarray:
    """RGB ``uint8`` photo: a textured light background with a figure drawn along ``pose``'s limbs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([200 + 30 * np.sin(xx / 37.0 + k) * np.cos(yy / 53.0) for k in range(3)], axis=2)
    img += rng.normal(0, 4, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    thickness = max(2, int(round(np.ptp(pose[:, 1]) / 12)))
    for f, t in DRAW_LIMBS:
        if (pose[[f, t]] >= 0).all():
            color = tuple(int(v) for v in rng.integers(20, 160, 3))
            cv2.line(img, tuple(int(v) for v in pose[f]), tuple(int(v) for v in pose[t]), color, thickness)
    return img


class RandomKeypointRCNN(TorchvisionKeypointDetector):
    """The torchvision backend with a randomly initialised network instead of a weights file (every box and
    every joint kept), to run the detector path end to end without the 240 MB download."""

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.device = torch.device('cpu')
        self.person_score_thresh = 0.0
        self.keypoint_score_thresh = float('-inf')
        self.model = build_keypoint_rcnn(box_score_thresh=0.0, **FAST_DETECTOR)
