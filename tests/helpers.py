"""Helpers shared by several test packages: the pipeline dataset's configuration, the training command lines'
common arguments, and a demo dataset with planted defects (``plant_defects``).

The training scripts' ``main(argv)`` (and the training loop) run in-process with tiny networks (``--nf 8``,
``--G_nf 8``), a few steps, no loader workers and no TensorBoard, so every pipeline test runs in seconds on a CPU.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from data.synthetic import DemoConfig
from util.io import load_json, load_pickle, save_pickle

# 4 train identities x 12 ordered pairs = 48 train pairs; 2 test identities.
PIPELINE_CONFIG = DemoConfig(seed=5, image_size=(128, 64), n_train_identities=4, n_test_identities=2,
                             images_per_identity=4, test_pairs_per_identity=6, n_test_small=4)


def common_args(root: Path, ckpt: Path) -> list[str]:
    return ['--dataset_name', 'demo', '--data_root', str(root), '--checkpoints_dir', str(ckpt), '--gpu_ids', '-1',
            '--num_workers', '0', '--tensorboard', '0']


def flow_args(root: Path, ckpt: Path, exp_id: str, *extra: str) -> list[str]:
    return ['--id', exp_id, *common_args(root, ckpt), '--which_model', 'unet_v2', '--nf', '8', '--max_nf', '16',
            '--batch_size', '4', '--max_steps_per_epoch', '2', '--val_batches', '1', '--n_vis', '4',
            '--display_freq', '1', *extra]


# What plant_defects breaks -> the dataset check's category and whether it is an error (False: a warning).
PLANTED_CATEGORIES = {
    'empty image': ('image: empty', True),
    'truncated image': ('image: truncated', True),
    'text file as image': ('image: cannot be decoded', True),
    'image of the wrong size': ('image: wrong size', True),
    'missing segmentation': ('segmentation: missing', True),
    'segmentation labels outside the classes': ('segmentation: labels outside 0..6', False),
    'NaN correspondence': ('correspondence: non-finite', True),
    'truncated correspondence': ('correspondence: truncated', True),
    'missing correspondence': ('correspondence: missing', True),
    'NaN keypoints': ('keypoints: NaN or inf', True),
    'keypoints outside the image': ('keypoints: outside the image', False),
    'id absent from the pose file': ('pairs: id absent from the pose file', True),
}


def plant_defects(root: Path) -> dict[str, str]:
    """Break files of the demo dataset at ``root`` (modified in place), one defect of each kind in
    ``PLANTED_CATEGORIES``, all on files of the train pairs of both split files. Pose defects go into
    ``Label/pose_label.pkl`` only. Returns defect -> what names it in a report (a file path or an image id).
    """
    root = Path(root)
    pairs = load_json(root / 'Label/pair_split.json')['train']
    ids = sorted({i for pair in pairs for i in pair})
    img = {i: root / 'Img/img' / f'{i}.jpg' for i in ids}
    seg = {i: root / 'Img/seg' / f'{i}.bmp' for i in ids}
    corr = [root / '3d/hmr/corr' / f'{id_2}_{id_1}.corr' for id_1, id_2 in pairs[:3]]
    img[ids[0]].write_bytes(b'')
    data = img[ids[1]].read_bytes()
    img[ids[1]].write_bytes(data[:len(data) // 2])
    img[ids[2]].write_text('not an image\n')
    h, w = cv2.imread(str(img[ids[3]])).shape[:2]
    cv2.imwrite(str(img[ids[3]]), np.zeros((h // 2, w // 2, 3), np.uint8))
    seg[ids[4]].unlink()
    labels = cv2.imread(str(seg[ids[5]]), cv2.IMREAD_GRAYSCALE)
    labels[:2] = 9
    cv2.imwrite(str(seg[ids[5]]), labels)
    data = bytearray(corr[0].read_bytes())
    data[8:12] = np.float32(np.nan).tobytes()  # u of pixel (0, 0), right after the 8-byte header
    corr[0].write_bytes(bytes(data))
    data = corr[1].read_bytes()
    corr[1].write_bytes(data[:len(data) // 2])
    corr[2].unlink()
    poses = load_pickle(root / 'Label/pose_label.pkl')
    poses[ids[6]] = [list(p) for p in poses[ids[6]]]
    poses[ids[6]][3] = [float('nan'), 5.0]
    poses[ids[7]] = [list(p) for p in poses[ids[7]]]
    poses[ids[7]][0] = [float(10 * w), 5.0]
    del poses[ids[8]]
    save_pickle(poses, root / 'Label/pose_label.pkl')
    return {
        'empty image': str(img[ids[0]]), 'truncated image': str(img[ids[1]]), 'text file as image': str(img[ids[2]]),
        'image of the wrong size': str(img[ids[3]]), 'missing segmentation': str(seg[ids[4]]),
        'segmentation labels outside the classes': str(seg[ids[5]]), 'NaN correspondence': str(corr[0]),
        'truncated correspondence': str(corr[1]), 'missing correspondence': str(corr[2]),
        'NaN keypoints': ids[6], 'keypoints outside the image': ids[7], 'id absent from the pose file': ids[8],
    }
