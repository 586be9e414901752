"""Check that the released pose-transfer models and their datasets are where the download scripts put them.

    python scripts/released_models.py [--models 0.5 m0.5] [--checkpoints_dir checkpoints]

Prints one line per missing file or folder (with the command that provides it) and exits with status 1 if
anything is missing; prints each model's dataset and ``ok`` otherwise. Used by ``scripts/reproduce_released.sh``.
"""
import _path  # noqa: F401

import argparse
import sys

from training.released_models import RELEASED_MODELS, missing_for_model


def main(argv: list[str] | None = None) -> dict[str, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--models', nargs='+', default=list(RELEASED_MODELS), choices=list(RELEASED_MODELS),
                   help='released model ids (without PoseTransfer_)')
    p.add_argument('--checkpoints_dir', default='checkpoints')
    opt = p.parse_args(argv)
    missing = {m: missing_for_model(m, opt.checkpoints_dir) for m in opt.models}
    for model, items in missing.items():
        dataset, ablation = RELEASED_MODELS[model]
        if not items:
            print(f'PoseTransfer_{model} ({dataset}, {ablation}): ok')
        for item in items:
            print(f'PoseTransfer_{model} ({dataset}, {ablation}): missing {item}')
    return missing


if __name__ == '__main__':
    sys.exit(1 if any(main().values()) else 0)
