"""Train and test the paper's five ablations on the demo dataset with one equal CPU budget; print a table.

    python benchmarks/demo_ablations.py --checkpoints_dir checkpoints --steps 100 --epochs 3

Needs the demo flow module ``FlowReg_demo`` (``python scripts/demo.py`` trains it). Every generator gets the
same number of iterations (``epochs × steps``, batch 8); the full model (5) fine-tunes the pixel-warping network
for ``full_steps`` more iterations on the frozen generator of (4), as in the paper. Test: the whole demo test split,
original test-time semantics (batch-statistics BatchNorm, batch 8), masked SSIM with the corrected mask orientation;
each model's results go to ``<checkpoints_dir>/PoseTransfer_<prefix>_<k>/test_test_best/`` (replaced on every run,
since the models were just retrained).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'scripts'))
import _path  # noqa: E402,F401

import argparse  # noqa: E402
import time  # noqa: E402

import test_pose_transfer  # noqa: E402
import train_pose_transfer_model  # noqa: E402

ABLATIONS = [
    ('1', 'w/o dual encoder', ['--which_model_G', 'unet']),
    ('2', 'w/o flow', ['--which_model_G', 'dual_unet', '--G_feat_warp', '0']),
    ('3', 'w/o visibility', ['--which_model_G', 'dual_unet', '--G_feat_warp', '1', '--G_vis_mode', 'none']),
    ('4', 'w/o pixel warping', ['--which_model_G', 'dual_unet', '--G_feat_warp', '1', '--G_vis_mode', 'residual']),
]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoints_dir', default='checkpoints')
    p.add_argument('--data_root', default='datasets/demo/')
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--steps', type=int, default=100, help='iterations per epoch')
    p.add_argument('--full_steps', type=int, default=80)
    p.add_argument('--prefix', default='abl')
    args = p.parse_args(argv)
    common = ['--dataset_name', 'demo', '--gpu_ids', '-1', '--data_root', args.data_root, '--checkpoints_dir',
              args.checkpoints_dir, '--num_workers', '2', '--tensorboard', '0', '--pretrained_flow_id', 'FlowReg_demo',
              '--loss_weight_content', '0', '--n_vis', '16', '--display_freq', '50', '--save_epoch_freq', '100']
    rows, times = [], {}
    runs = [(k, name, flags + ['--n_epoch', str(args.epochs), '--max_steps_per_epoch', str(args.steps),
                               '--epoch_add_gan', str(args.epochs)]) for k, name, flags in ABLATIONS]
    runs.append(('5', 'full', ABLATIONS[3][2] + [
        '--G_pix_warp', '1', '--pretrained_G_id', f'PoseTransfer_{args.prefix}_4', '--pretrained_G_epoch', 'best',
        '--n_epoch', '1', '--max_steps_per_epoch', str(args.full_steps), '--epoch_add_gan', '1']))
    for key, name, flags in runs:
        exp = f'{args.prefix}_{key}'
        t0 = time.time()
        train_pose_transfer_model.main(['--id', exp, *common, *flags])
        times[key] = time.time() - t0
        res = test_pose_transfer.main(['--id', exp, '--which_epoch', 'best', '--gpu_ids', '-1', '--checkpoints_dir',
                                       args.checkpoints_dir, '--num_workers', '2', '--masked',
                                       '--pose_mask_transposed', '0', '--n_vis', '16', '--overwrite'])
        rows.append((key, name, res['metrics'], res['baselines']))
    print('\n| model | SSIM | masked SSIM | PSNR | train time (s) |\n|---|---|---|---|---|')
    for key, name, m, _ in rows:
        print(f"| {key}. {name} | {m['SSIM']:.4f} | {m['mask_SSIM']:.4f} | {m['PSNR']:.2f} | {times[key]:.0f} |")
    b = rows[0][3]
    print(f"| copy source (baseline) | {b['copy_source_SSIM']:.4f} | {b['copy_source_mask_SSIM']:.4f} | "
          f"{b['copy_source_PSNR']:.2f} | – |")


if __name__ == '__main__':
    main()
