"""Per-sample load time of both dataset classes and demo generation rate, at 128x64 and 256x256.

    python benchmarks/bench_data.py [--n_samples 200] [--keep DIR]

Generates two small synthetic datasets in a temporary folder (or DIR), then times ``dataset[i]`` in
the main process (no DataLoader workers, one torch thread), with and without the training augmentation;
best of three passes, since the CPU may be shared.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from data.data_loader import create_dataset  # noqa: E402
from data.synthetic import DemoConfig, generate_demo_dataset  # noqa: E402


def make_opt(root: Path, dataset_type: str, size: tuple[int, int], augment: bool) -> Namespace:
    return Namespace(
        data_root=str(root), dataset_name='demo', dataset_type=dataset_type,
        fn_split='Label/pair_split_clean.json' if dataset_type == 'flow' else 'Label/pair_split.json',
        fn_pose='Label/pose_label_adapt.pkl' if dataset_type == 'flow' else 'Label/pose_label.pkl',
        img_dir='Img/img/', seg_dir='Img/seg/', corr_dir='3d/hmr/corr/', image_size=list(size), joint_nc=18,
        joint_mode='binary', joint_radius=8 if size[0] >= 256 else 4, seg_nc=7, vis_smooth_rate=5,
        aug_shiftx_range=20 if size[0] >= 256 else 5, aug_shifty_range=10 if size[0] >= 256 else 5,
        use_augmentation=int(augment), aug_scale_range=1.2, aug_color_jit=0, aug_affine_hw_order='as_written',
        allow_corr_fallback=0, strict_seg=0, debug=False, is_train=augment, batch_size=8, num_workers=0)


def time_dataset(root: Path, dataset_type: str, size: tuple[int, int], augment: bool, n: int,
                 repeats: int = 3) -> float:
    """Best of ``repeats`` passes over ``n`` samples, in ms per sample (the CPU may be shared)."""
    ds = create_dataset(make_opt(root, dataset_type, size, augment), 'train')
    n = min(n, len(ds))
    ds[0]  # warm-up (imports, caches)
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(n):
            ds[i]
        best = min(best, (time.perf_counter() - start) / n * 1000)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--n_samples', type=int, default=200)
    p.add_argument('--keep', default=None, help='generate into this folder and keep it')
    args = p.parse_args()
    torch.set_num_threads(1)
    np.random.seed(0)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix='bench_data_'))
    print(f'torch {torch.__version__}, numpy {np.__version__}; datasets in {base}')
    for size in ((128, 64), (256, 256)):
        cfg = DemoConfig(image_size=size, n_train_identities=10, n_test_identities=2, images_per_identity=6)
        root = base / f'demo_{size[0]}x{size[1]}'
        stats = generate_demo_dataset(root, cfg, workers=1, verbose=False, force=True)
        print(f'{size[0]}x{size[1]}: generated {stats["n_corr"]} pairs in {stats["seconds"]:.2f} s '
              f'({stats["pairs_per_second"]:.0f} pairs/s, 1 process)')
        for dataset_type in ('flow', 'pose_transfer'):
            plain = time_dataset(root, dataset_type, size, False, args.n_samples)
            aug = time_dataset(root, dataset_type, size, True, args.n_samples)
            print(f'  {dataset_type:<14s} {plain:6.2f} ms/sample (no augmentation), '
                  f'{aug:6.2f} ms/sample (train augmentation)')
    if not args.keep:
        shutil.rmtree(base)


if __name__ == '__main__':
    main()
