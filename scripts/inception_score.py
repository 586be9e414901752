"""Inception score of a folder of generated images, as the paper computes it.

    python scripts/inception_score.py <img_dir> [gpu_ids] [--seed S] [--backend torch|tf]
                                      [--inception_weights weights-inception-2015-12-05-6726825d.pth]

Prints ``[Inception Score] inception_score: <mean> (std: <std>)``. ``scripts/masked_inception_score.py`` is the
same command line with the pose-mask options added.
"""
import _path  # noqa: F401

import argparse
from collections.abc import Sequence

import torch

from metrics.inception_score import (BACKENDS, DEFAULT_POSE_FILE, INCEPTION_WEIGHTS_FILE, TF_GRAPH_DIR, TF_GRAPH_FILE,
                                     TF_GRAPH_SHA256, compute_inception_score, compute_masked_inception_score)
from util.device import select_device

RESULTS_FOLDER_NOTE = ' (a test results folder test_<split>_<epoch>/ may be given: its images/ is scored)'


def build_parser(masked: bool = False) -> argparse.ArgumentParser:
    """``<img_dir> [gpu_ids]`` as in the README, plus options for reproducibility and offline weights."""
    p = argparse.ArgumentParser(description=('masked ' if masked else '') + 'inception score of a folder of images',
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('img_dir', help='folder of *.jpg / *.png images' +
                   (' named <id_1>_<id_2>.<ext>' if masked else '') + RESULTS_FOLDER_NOTE)
    p.add_argument('gpu_ids', nargs='?', default=None,
                   help='GPU id to run on (e.g. 0); -1 for the CPU; default: the first GPU if CUDA is available')
    p.add_argument('--seed', type=int, default=None,
                   help='seed of the image shuffle (default: unseeded, as the original)')
    p.add_argument('--backend', default='torch', choices=list(BACKENDS),
                   help='torch: torch-fidelity port of the TF graph; tf: the TF graph itself (needs TensorFlow)')
    p.add_argument('--inception_weights', default=None,
                   help=f'torch backend: path of {INCEPTION_WEIGHTS_FILE} (default: torch hub cache)')
    p.add_argument('--tf_graph_dir', default=TF_GRAPH_DIR, help=f'tf backend: folder holding {TF_GRAPH_FILE}')
    p.add_argument('--tf_graph_sha256', default=TF_GRAPH_SHA256,
                   help=f'tf backend: expected SHA-256 of {TF_GRAPH_FILE} (default: the published hash of the '
                        f'2015-12-05 graph)')
    p.add_argument('--batch_size', type=int, default=100, help='images per forward pass (does not change the score)')
    p.add_argument('--n_splits', type=int, default=10, help='number of splits')
    if masked:
        p.add_argument('--pose_file', default=DEFAULT_POSE_FILE, help='pose labels {id: 18 (x, y)} of the targets')
        p.add_argument('--pose_mask_transposed', type=int, default=1, choices=[0, 1],
                       help='1: the original mask, drawn with (x, y) as (row, col); 0: the corrected orientation')
    return p


def run(argv: Sequence[str] | None, masked: bool) -> dict:
    """Parse ``argv``, compute (masked) IS and print the original's result line; returns the result dict."""
    opt = build_parser(masked).parse_args(argv)
    # The original exported gpu_ids as CUDA_VISIBLE_DEVICES; selecting the device directly has the same effect
    # without changing the process environment. No id given: the first GPU when there is one.
    gpu_ids = opt.gpu_ids if opt.gpu_ids is not None else ('0' if torch.cuda.is_available() else '-1')
    device = select_device(gpu_ids)
    kwargs = dict(backend=opt.backend, weights_path=opt.inception_weights, device=device,
                  tf_graph_dir=opt.tf_graph_dir, tf_graph_sha256=opt.tf_graph_sha256, batch_size=opt.batch_size,
                  n_splits=opt.n_splits, seed=opt.seed)
    if masked:
        result = compute_masked_inception_score(opt.img_dir, pose_file=opt.pose_file,
                                                pose_mask_transposed=bool(opt.pose_mask_transposed), **kwargs)
    else:
        result = compute_inception_score(opt.img_dir, **kwargs)
    what = 'masked IS' if masked else 'IS'
    orientation = 'transposed as the original' if masked and opt.pose_mask_transposed else 'row=y, col=x'
    extra = f', pose mask from {opt.pose_file} ({orientation})' if masked else ''
    print(f"{what} ({result['network']}, {result['n_images']} images from {opt.img_dir}, {opt.n_splits} splits, "
          f"seed={opt.seed}{extra})")
    print(f"[Inception Score] inception_score: {result['inception_score']:.3f} "
          f"(std: {result['inception_score_std']:.3f})")
    return result


def main(argv: list[str] | None = None) -> dict:
    return run(argv, masked=False)


if __name__ == '__main__':
    main()
