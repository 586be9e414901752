"""The command line shared by ``scripts/fashion_inception_score.py`` and ``scripts/fashion_attribute_score.py``:
the original options plus a few modern ones. Each script owns its command line; this module only holds the part
the two have in common.
"""
import argparse

from metrics.fashion_classifiers import DEFAULT_IMG_DIR, DEFAULT_SPLIT_FILE, get_spec


def build_parser(kind: str) -> argparse.ArgumentParser:
    """Command line of ``scripts/fashion_inception_score.py`` (``'inception'``) and
    ``scripts/fashion_attribute_score.py`` (``'attr'``): the original options plus a few modern ones."""
    spec = get_spec(kind)
    p = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--id', default='default', help='classifier id: weights in checkpoints/<folder>/<id>/best.pth')
    if kind == 'inception':
        p.add_argument('--n_class', type=int, default=spec.n_out, help='number of clothing classes')
    else:
        p.add_argument('--n_attr', type=int, default=spec.n_out, help='number of attributes')
    p.add_argument('--rescale_size', type=int, default=spec.rescale_size, help='Resize (shorter side) before cropping')
    p.add_argument('--crop_size', type=int, default=spec.crop_size, help='CenterCrop size (RandomCrop in training)')
    p.add_argument('--gpu_ids', default='0', help='GPU ids, e.g. 0; -1 or empty for the CPU')
    p.add_argument('--debug', action='store_true', help='only the first 2 batches of every loop (smoke test)')
    p.add_argument('--test_dir', default=None, help='folder of generated images <id_1>_<id_2>.<ext> to score'
                   ' (a test results folder test_<split>_<epoch>/ may be given: its images/ is scored)')
    p.add_argument('--n_test_split', type=int, default=10,
                   help='splits of the inception score' + ('' if kind == 'inception' else ' (unused here)'))
    p.add_argument('--ext', default='jpg', choices=['jpg', 'png'], help='extension of the images in test_dir')
    p.add_argument('--batch_size', type=int, default=32)
    # Training options (used with --train).
    p.add_argument('--train', action='store_true', help='train the classifier instead of scoring test_dir')
    p.add_argument('--fn_split', default=DEFAULT_SPLIT_FILE, help='training: JSON {"train": [ids], "test": [ids]}')
    p.add_argument('--fn_label', default=spec.fn_label,
                   help=('training: JSON {id: class index}' if kind == 'inception' else
                         'attribute labels {"label": {id: 0/1 vector}, "entry": [names]} (also needed to score; '
                         'falls back to datasets/deepfashion/Label/attr_label.pkl)'))
    p.add_argument('--img_dir', default=DEFAULT_IMG_DIR, help='training: folder of <id>.jpg images')
    p.add_argument('--lr', type=float, default=1e-4)
    p.add_argument('--weight_decay', type=float, default=spec.weight_decay)
    p.add_argument('--n_epoch', type=int, default=30)
    p.add_argument('--lr_decay', type=int, default=10, help='multiply the lr by lr_gamma every lr_decay epochs')
    p.add_argument('--lr_gamma', type=float, default=0.1)
    p.add_argument('--display_freq', type=int, default=10, help='print the loss every display_freq steps')
    p.add_argument('--optim', default='adam', choices=['adam', 'sgd'])
    # Modern options.
    p.add_argument('--checkpoints_dir', default='checkpoints')
    p.add_argument('--weights', default=None,
                   help=f'classifier weights file (default: <checkpoints_dir>/{spec.folders[0]}/<id>/best.pth, '
                        f'also {spec.folders[1]})')
    p.add_argument('--imagenet_weights', default=None,
                   help=f'training init: torchvision {spec.arch} ImageNet weights (default: torch hub cache '
                        f'{spec.imagenet_files[0]})')
    p.add_argument('--from_scratch', action='store_true', help='training: random init instead of ImageNet weights')
    p.add_argument('--num_workers', type=int, default=4, help='data loader worker processes')
    p.add_argument('--seed', type=int, default=0, help='training: seed of the shuffle order')
    return p
