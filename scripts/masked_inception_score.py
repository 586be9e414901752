"""Masked inception score (Market-1501): every image times the pose mask of its target.

    python scripts/masked_inception_score.py <img_dir> [gpu_ids] [--pose_file datasets/market1501/Label/pose_label.pkl]
                                             [--pose_mask_transposed 1] [--seed S] [--inception_weights PATH]

Image names are ``<id_1>_<id_2>.<ext>``; the target id ``id_2`` is looked up in the pose file.
Prints ``[Inception Score] inception_score: <mean> (std: <std>)``.
"""
import _path  # noqa: F401

import inception_score


def main(argv: list[str] | None = None) -> dict:
    return inception_score.run(argv, masked=True)


if __name__ == '__main__':
    main()
