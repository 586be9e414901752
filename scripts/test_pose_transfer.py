"""Generate the test split with a trained pose-transfer model and compute SSIM / PSNR (/ masked SSIM).

    python scripts/test_pose_transfer.py --gpu_ids 0 --id PoseTransfer_0.5 --which_epoch best --save_output [--masked]
"""
import _path  # noqa: F401

from options.base_options import merge_train_options, save_options
from options.pose_transfer_options import TestPoseTransferOptions
from training.evaluation import run_pose_test


def main(argv: list[str] | None = None) -> dict:
    opt = TestPoseTransferOptions().parse(argv, display=False)
    opt = merge_train_options(opt)  # architecture, data and flow model come from the experiment's train_opt.json
    save_options(opt, opt.expr_dir / 'test_opt.json')  # the options this test ran with (after the merge)
    return run_pose_test(opt)


if __name__ == '__main__':
    main()
