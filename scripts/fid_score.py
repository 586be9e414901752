"""Fréchet Inception distance between generated and real images (torch-fidelity, TF-Inception port).

    python scripts/fid_score.py <gen_dir> <real_dir> [--real_subset all|targets] [--gpu_ids 0]
                                [--inception_weights weights-inception-2015-12-05-6726825d.pth]

``--real_subset targets`` compares with the real target image of each generated ``<id_1>_<id_2>``
only. Prints the protocol (real set, N on each side, formats, network, resize) with the value.
"""
import _path  # noqa: F401

import argparse

from metrics.fid import REAL_SUBSETS, compute_fid
from util.device import select_device
from metrics.inception_score import INCEPTION_WEIGHTS_FILE


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('gen_dir', help='generated images (*.jpg / *.png) (a test results folder '
                   'test_<split>_<epoch>/ may be given: its images/ is scored)')
    p.add_argument('real_dir', help='real images, e.g. datasets/deepfashion/Img/img')
    p.add_argument('--real_subset', default='all', choices=list(REAL_SUBSETS),
                   help='all: every image of real_dir; targets: the target <id_2> of each generated image')
    p.add_argument('--gpu_ids', default='0', help='GPU id; -1 for the CPU (the CPU is used when CUDA is missing)')
    p.add_argument('--inception_weights', default=None,
                   help=f'path of {INCEPTION_WEIGHTS_FILE} (default: torch hub cache)')
    p.add_argument('--batch_size', type=int, default=50, help='images per forward pass (does not change the value)')
    opt = p.parse_args(argv)
    result = compute_fid(opt.gen_dir, opt.real_dir, real_subset=opt.real_subset, weights_path=opt.inception_weights,
                         device=select_device(opt.gpu_ids), batch_size=opt.batch_size)
    print(f"{result['protocol']}: {result['fid']:.4f}")
    if 'note' in result:
        print(f"note: {result['note']}")
    return result


if __name__ == '__main__':
    main()
