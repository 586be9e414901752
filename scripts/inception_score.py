"""Inception score of a folder of generated images (SPEC §9.4).

    python scripts/inception_score.py <img_dir> [gpu_ids] [--seed S] [--backend torch|tf]
                                      [--inception_weights weights-inception-2015-12-05-6726825d.pth]

Prints ``[Inception Score] inception_score: <mean> (std: <std>)``.
"""
import _path  # noqa: F401

from util.metrics.inception_score import run_inception_score_cli


def main(argv: list[str] | None = None) -> dict:
    return run_inception_score_cli(argv, masked=False)


if __name__ == '__main__':
    main()
