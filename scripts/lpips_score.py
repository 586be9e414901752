"""LPIPS between generated images and their real targets (lpips package, v0.1, AlexNet by default).

    python scripts/lpips_score.py <gen_dir> <real_dir> [--net alex] [--version 0.1] [--gpu_ids 0]
                                  [--alexnet_weights alexnet-owt-7be5be79.pth]

Each generated ``<id_1>_<id_2>.<ext>`` is compared with ``<real_dir>/<id_2>.<ext>`` (same size).
"""
import _path  # noqa: F401

import argparse

from util.device import select_device
from metrics.lpips_metric import BACKBONE_WEIGHTS, VERSIONS, compute_lpips


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('gen_dir', help='generated images <id_1>_<id_2>.<ext> (a test results folder '
                   'test_<split>_<epoch>/ may be given: its images/ is scored)')
    p.add_argument('real_dir', help='real images <id>.<ext>, e.g. datasets/market1501/Images/img')
    p.add_argument('--net', default='alex', choices=list(BACKBONE_WEIGHTS), help='LPIPS backbone')
    p.add_argument('--version', default='0.1', choices=list(VERSIONS), help='LPIPS linear-layer version')
    p.add_argument('--backbone_weights', '--alexnet_weights', dest='backbone_weights', default=None,
                   help='torchvision ImageNet weights of the backbone (alex: alexnet-owt-7be5be79.pth; '
                        'default: torch hub cache)')
    p.add_argument('--lin_weights', default=None, help='LPIPS linear layers (default: shipped with the lpips package)')
    p.add_argument('--gpu_ids', default='0', help='GPU id; -1 for the CPU (the CPU is used when CUDA is missing)')
    p.add_argument('--batch_size', type=int, default=32)
    opt = p.parse_args(argv)
    result = compute_lpips(opt.gen_dir, opt.real_dir, net=opt.net, version=opt.version,
                           backbone_weights=opt.backbone_weights, lin_weights=opt.lin_weights,
                           device=select_device(opt.gpu_ids), batch_size=opt.batch_size)
    print(f"{result['protocol']}: {result['lpips']:.4f} (std: {result['lpips_std']:.4f})")
    return result


if __name__ == '__main__':
    main()
