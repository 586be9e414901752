"""Generate the test split with a trained pose-transfer model and compute SSIM / PSNR (/ masked SSIM).

    python scripts/test_pose_transfer.py --gpu_ids 0 --id PoseTransfer_0.5 --which_epoch best --save_output [--masked]

Writes a fresh folder ``checkpoints/<id>/test_<split>_<epoch>/`` (or ``<--results_dir>/test_<split>_<epoch>/``):
``metrics.json``, ``vis.jpg``, ``test_opt.json`` and, with ``--save_output``, ``images/<id_1>_<id_2>.jpg`` for the
metric scripts. An existing folder of that name is refused unless ``--overwrite``.
"""
import _path  # noqa: F401

from options.base_options import merge_train_options
from options.pose_transfer_options import TestPoseTransferOptions
from training.evaluation import run_pose_test


def main(argv: list[str] | None = None) -> dict:
    # save=False: nothing is written before the experiment is known to exist; the options go to the results folder.
    opt = TestPoseTransferOptions().parse(argv, display=False, save=False)
    opt = merge_train_options(opt)  # architecture, data and flow model come from the experiment's train_opt.json
    return run_pose_test(opt)


if __name__ == '__main__':
    main()
