"""Helpers of the data tests: the small synthetic dataset's configuration and option namespaces for both dataset
classes."""
from __future__ import annotations

import argparse
from pathlib import Path

from data.synthetic import DemoConfig

# 4 train identities x 12 ordered pairs = 48 train pairs (> the 32 of --debug), 2 test identities.
SMALL_CONFIG = DemoConfig(seed=3, image_size=(128, 64), n_train_identities=4, n_test_identities=2,
                          images_per_identity=4, test_pairs_per_identity=6, n_test_small=5, p_back=0.25)


def make_opt(root: Path | str, dataset_type: str = 'flow', **overrides) -> argparse.Namespace:
    """The option attributes the datasets read, with the demo layout and augmentation off."""
    opt = argparse.Namespace(
        data_root=str(root), dataset_name='demo', dataset_type=dataset_type,
        fn_split='Label/pair_split_clean.json' if dataset_type == 'flow' else 'Label/pair_split.json',
        fn_pose='Label/pose_label_adapt.pkl' if dataset_type == 'flow' else 'Label/pose_label.pkl',
        img_dir='Img/img/', seg_dir='Img/seg/', corr_dir='3d/hmr/corr/',
        image_size=[128, 64], joint_nc=18, joint_mode='binary', joint_radius=4, seg_nc=7, vis_smooth_rate=5,
        aug_shiftx_range=5, aug_shifty_range=5, use_augmentation=0, aug_scale_range=1.2, aug_color_jit=0,
        aug_affine_hw_order='as_written', allow_corr_fallback=0, strict_seg=0, debug=False, is_train=False,
        batch_size=4, num_workers=0, maps_on_device=0,
    )
    for key, value in overrides.items():
        if not hasattr(opt, key):
            raise AttributeError(f'make_opt: unknown option {key!r}')
        setattr(opt, key, value)
    return opt
