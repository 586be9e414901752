"""Train a pose-transfer model (stage 2): any of the five ablations of the paper. See ``--help`` for all options.

    python scripts/train_pose_transfer_model.py --id id_pose_4 --gpu_ids 0 --dataset_name deepfashion \
        --which_model_G dual_unet --G_feat_warp 1 --G_vis_mode residual
"""
import _path  # noqa: F401

from data.dataset_check import require_clean_dataset
from options.pose_transfer_options import TrainPoseTransferOptions
from training.loop import TrainSpec, train


def main(argv: list[str] | None = None) -> dict:
    checked = TrainPoseTransferOptions().parse(argv, display=False, save=False)
    if checked.check_data:  # --check_data 1: all data problems at once, before the experiment folder is written
        require_clean_dataset(checked)
    opt = TrainPoseTransferOptions().parse(argv)
    # Validation on 'test_small' (or 'test' with --small_val_set 0); the highest SSIM becomes 'best'.
    val_split = 'test_small' if opt.small_val_set else 'test'
    return train(opt, TrainSpec(val_split=val_split, select_metric='SSIM', select_mode='max'))


if __name__ == '__main__':
    main()
