"""Generate the synthetic demo dataset (DeepFashion-like layout, exact correspondence) and/or check it.

    python scripts/make_demo_dataset.py [--out datasets/demo] [--seed 0] [--size 128 64]
        [--n_identities 100] [--n_test_identities 20] [--images_per_identity 6]
        [--test_pairs_per_identity 15] [--n_test_small 64] [--p_back 0.15] [--jpeg_quality 95]
        [--background studio|cluttered]
        [--workers N] [--force] [--check] [--check_pairs 64] [--quiet]

An existing complete dataset with the same parameters is left alone (exit 0); an incomplete folder or
one generated with other parameters is only replaced with ``--force``. ``--check`` runs the warp
self-check afterwards (or on the existing dataset) and fails if the error is not small. ``--background``
chooses plain light studio backdrops shared within an identity (DeepFashion-like, the default) or a random
cluttered scene per photo (Market-like); for one seed the two differ only in the background pixels.
"""
from __future__ import annotations

import argparse
import sys

import _path  # noqa: F401

from data.synthetic import DemoConfig, generate_demo_dataset, self_check
from data.synthetic.render import BACKGROUND_STYLES

# A failing --check means the ground truth does not reproduce the target (in [0, 255] units).
CHECK_MAX_INTERIOR_MAE = 8.0
CHECK_MAX_VISIBLE_MAE = 15.0


def build_parser() -> argparse.ArgumentParser:
    d = DemoConfig()
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out', default='datasets/demo', help='output folder')
    p.add_argument('--seed', type=int, default=d.seed, help='random seed (same seed -> identical files)')
    p.add_argument('--size', type=int, nargs=2, default=list(d.image_size), metavar=('H', 'W'), help='image size')
    p.add_argument('--n_identities', type=int, default=d.n_train_identities, help='number of train identities')
    p.add_argument('--n_test_identities', type=int, default=d.n_test_identities, help='number of test identities')
    p.add_argument('--images_per_identity', type=int, default=d.images_per_identity)
    p.add_argument('--test_pairs_per_identity', type=int, default=d.test_pairs_per_identity,
                   help='ordered pairs kept per test identity (0: all)')
    p.add_argument('--n_test_small', type=int, default=d.n_test_small, help='size of the test_small split')
    p.add_argument('--p_back', type=float, default=d.p_back, help='probability of a back view')
    p.add_argument('--jpeg_quality', type=int, default=d.jpeg_quality)
    p.add_argument('--background', choices=BACKGROUND_STYLES, default=d.background,
                   help='studio: plain light backdrop shared by the photos of an identity (DeepFashion-like); '
                        'cluttered: a random scene per photo (Market-like)')
    p.add_argument('--workers', type=int, default=None, help='worker processes (default: min(2, cpu count))')
    p.add_argument('--force', action='store_true', help='replace an existing (or incomplete) output folder')
    p.add_argument('--check', action='store_true', help='run the warp self-check and report the errors')
    p.add_argument('--check_pairs', type=int, default=64, help='pairs used by --check')
    p.add_argument('--quiet', action='store_true')
    return p


def config_from_args(args: argparse.Namespace) -> DemoConfig:
    return DemoConfig(seed=args.seed, image_size=tuple(args.size), n_train_identities=args.n_identities,
                      n_test_identities=args.n_test_identities, images_per_identity=args.images_per_identity,
                      test_pairs_per_identity=args.test_pairs_per_identity, n_test_small=args.n_test_small,
                      p_back=args.p_back, jpeg_quality=args.jpeg_quality, background=args.background)


def config_from_argv(argv: list[str]) -> DemoConfig:
    """The configuration these command-line arguments would generate (e.g. to test a folder for it)."""
    return config_from_args(build_parser().parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    try:
        generate_demo_dataset(args.out, config, workers=args.workers, force=args.force, verbose=not args.quiet)
    except FileExistsError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if args.check:
        res = self_check(args.out, n_pairs=args.check_pairs)
        print(f'self-check on {res["n_pairs"]} pairs (mean absolute error in [0, 255], vis-0 pixels):')
        print(f'  rendered in memory: {res["mae_visible_memory"]:.2f} (interior {res["mae_interior_memory"]:.2f})')
        print(f'  JPEG files:         {res["mae_visible_jpeg"]:.2f} (interior {res["mae_interior_jpeg"]:.2f}); '
              f'JPEG vs render {res["jpeg_vs_render_mae"]:.2f}')
        print(f'  body pixels: vis 0 {res["vis0_fraction"]:.3f}, vis 1 {res["vis1_fraction"]:.3f} '
              f'({res["pairs_with_vis1"]} pairs with vis 1); stored vs recomputed corr max diff '
              f'{res["corr_max_abs_diff"]:.2g}, vis mismatches {res["vis_mismatch"]}')
        ok = (res['mae_interior_memory'] <= CHECK_MAX_INTERIOR_MAE
              and res['mae_visible_memory'] <= CHECK_MAX_VISIBLE_MAE
              and res['corr_max_abs_diff'] == 0 and res['vis_mismatch'] == 0)
        if not ok:
            print('error: self-check failed (the stored ground truth does not reproduce the target images)',
                  file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
