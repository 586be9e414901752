"""Check a dataset folder before training: read every file of every split once and report all problems at once.

    python scripts/check_dataset.py --dataset_name deepfashion [--data_root datasets/deepfashion]
        [--image_size H W] [--strict_seg 1] [--allow_corr_fallback 1] [--num_workers N] [--max_examples 5]

Both stages' split and pose files of the dataset (the option presets: e.g. DeepFashion's pair_split.json with
pose_label.pkl and pair_split_clean.json with pose_label_adapt.pkl) are checked: every image and segmentation is
decoded, every correspondence file of every pair is read, keypoints and correspondences are checked for NaN/inf
and range, and every file a pair needs must exist. Problems are grouped by kind, counted, and the first
--max_examples of each are shown. Exit status 1 when there is any error (warnings alone exit 0: segmentation
labels outside the classes, which the datasets accept unless --strict_seg 1, keypoints outside the image, visible
correspondences outside the source image; with --allow_corr_fallback 1 also unreadable correspondence files, which
the datasets then replace by zero flow). The same check is available in Python as
``data.dataset_check.check_dataset``; the training scripts run it on their own split file with --check_data 1.
"""
from __future__ import annotations

import argparse
import os
import sys

import _path  # noqa: F401

from data.dataset_check import DatasetLayout, check_dataset
from options.base_options import DATASET_NAMES
from options.flow_regression_options import FLOW_PRESETS
from options.pose_transfer_options import POSE_PRESETS

DEFAULT_IMAGE_SIZE = (256, 256)  # the option sets' default when a preset does not set image_size


def layout_for(dataset_name: str, image_size: tuple[int, int] | None = None) -> tuple[str, DatasetLayout]:
    """(data_root, layout) of a dataset from the flow and pose-transfer presets (split/pose files of both)."""
    flow, pose = FLOW_PRESETS[dataset_name], POSE_PRESETS[dataset_name]
    for key in ('data_root', 'img_dir', 'seg_dir', 'corr_dir'):
        if flow[key] != pose[key]:
            raise ValueError(f'the {dataset_name!r} presets disagree on {key}: {flow[key]!r} vs {pose[key]!r}')
    splits = tuple(dict.fromkeys(((flow['fn_split'], flow['fn_pose']), (pose['fn_split'], pose['fn_pose']))))
    size = image_size or tuple(pose.get('image_size', flow.get('image_size', DEFAULT_IMAGE_SIZE)))
    return flow['data_root'], DatasetLayout(img_dir=flow['img_dir'], seg_dir=flow['seg_dir'],
                                            corr_dir=flow['corr_dir'], splits=splits, image_size=size)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dataset_name', required=True, choices=DATASET_NAMES, help='which layout and presets to use')
    p.add_argument('--data_root', default=None, help="dataset folder (default: the preset's data_root)")
    p.add_argument('--image_size', type=int, nargs=2, default=None, metavar=('H', 'W'),
                   help="size every file must have (default: the preset's image_size)")
    p.add_argument('--strict_seg', type=int, default=0, choices=[0, 1],
                   help='1: segmentation labels outside the classes are errors (as the datasets with --strict_seg 1)')
    p.add_argument('--allow_corr_fallback', type=int, default=0, choices=[0, 1],
                   help='1: unreadable correspondence files are warnings (as the datasets with --allow_corr_fallback 1)')
    p.add_argument('--seg_nc', type=int, default=7, help='number of segmentation classes')
    p.add_argument('--joint_nc', type=int, default=18, help='number of keypoints')
    p.add_argument('--num_workers', type=int, default=min(4, os.cpu_count() or 1),
                   help='processes reading files in parallel (0: in this process)')
    p.add_argument('--max_examples', type=int, default=5, help='examples shown per kind of problem')
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    data_root, layout = layout_for(args.dataset_name, tuple(args.image_size) if args.image_size else None)
    report = check_dataset(args.data_root or data_root, args.dataset_name, layout, seg_nc=args.seg_nc,
                           joint_nc=args.joint_nc, strict_seg=bool(args.strict_seg),
                           allow_corr_fallback=bool(args.allow_corr_fallback), num_workers=args.num_workers,
                           max_examples=args.max_examples)
    print(report.format())
    return 0 if report.ok else 1


if __name__ == '__main__':
    sys.exit(main())
