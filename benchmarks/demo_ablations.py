"""Train and test the paper's five ablations on the demo dataset with one equal CPU budget; print a table.

    python benchmarks/demo_ablations.py --checkpoints_dir checkpoints

Needs the demo flow module ``FlowReg_demo`` (``python scripts/demo.py`` trains it). Every generator gets the
same number of iterations (``epochs × steps``, batch 8) at the quick start's widths and learning rate (defaults:
the demo's profile); the full model (5) fine-tunes the pixel-warping network for ``full_steps`` more iterations on
the frozen generator of (4), as in the paper. Test: the whole demo test split, original test-time semantics
(batch-statistics BatchNorm, batch 8), masked SSIM with the corrected mask orientation, and the person-region SSIM
and L1 (inside the target's ground-truth body mask) with their two references: copy-source and the source warped
with the ground-truth flow; each model's results go to
``<checkpoints_dir>/PoseTransfer_<prefix>_<k>/test_test_best/`` (replaced on every run, since the models were just
retrained).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'scripts'))
import _path  # noqa: E402,F401

import argparse  # noqa: E402
import time  # noqa: E402

import demo  # noqa: E402
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
    prof = demo.PROFILES['default']
    p.add_argument('--epochs', type=int, default=prof['pose_epochs'])
    p.add_argument('--steps', type=int, default=prof['pose_steps'], help='iterations per epoch')
    p.add_argument('--full_steps', type=int, default=prof['full_steps'])
    p.add_argument('--G_nf', type=int, default=prof['G_nf'])
    p.add_argument('--G_max_nf', type=int, default=prof['G_max_nf'])
    p.add_argument('--lr', type=float, default=prof['pose_lr'], help='generator learning rate')
    p.add_argument('--full_lr', type=float, default=prof['full_lr'], help='pixel-warping network learning rate')
    p.add_argument('--prefix', default='abl')
    args = p.parse_args(argv)
    # --overwrite: every run retrains the ablations from scratch
    common = ['--overwrite', '--dataset_name', 'demo', '--gpu_ids', '-1', '--data_root', args.data_root,
              '--checkpoints_dir', args.checkpoints_dir, '--num_workers', '2', '--tensorboard', '0',
              '--pretrained_flow_id', 'FlowReg_demo', '--loss_weight_content', '0', '--n_vis', '16', '--display_freq', '50', '--save_epoch_freq', '100',
              '--G_nf', str(args.G_nf), '--G_max_nf', str(args.G_max_nf)]
    rows, times = [], {}
    schedule = ['--lr', str(args.lr), '--n_epoch', str(args.epochs), '--max_steps_per_epoch', str(args.steps),
                '--epoch_add_gan', str(args.epochs)]
    runs = [(k, name, flags + schedule) for k, name, flags in ABLATIONS]
    runs.append(('5', 'full', ABLATIONS[3][2] + [
        '--G_pix_warp', '1', '--pretrained_G_id', f'PoseTransfer_{args.prefix}_4', '--pretrained_G_epoch', 'best',
        '--lr', str(args.full_lr), '--n_epoch', '1', '--max_steps_per_epoch', str(args.full_steps),
        '--epoch_add_gan', '1']))
    for key, name, flags in runs:
        exp = f'{args.prefix}_{key}'
        t0 = time.time()
        train_pose_transfer_model.main(['--id', exp, *common, *flags])
        times[key] = time.time() - t0
        res = test_pose_transfer.main(['--id', exp, '--which_epoch', 'best', '--gpu_ids', '-1', '--checkpoints_dir',
                                       args.checkpoints_dir, '--num_workers', '2', '--masked',
                                       '--pose_mask_transposed', '0', '--n_vis', '16', '--overwrite'])
        rows.append((key, name, res['metrics'], res['baselines']))
    print(table(rows, times))


def table(rows: list[tuple[str, str, dict, dict]], times: dict[str, float]) -> str:
    """The markdown table: one row per ablation, then the two references (from the first run; every run tests the
    same pairs)."""
    lines = ['| model | SSIM | masked SSIM | PSNR | person SSIM | person L1 | train time (s) |',
             '|---|---|---|---|---|---|---|']
    for key, name, m, _ in rows:
        lines.append(f"| {key}. {name} | {m['SSIM']:.4f} | {m['mask_SSIM']:.4f} | {m['PSNR']:.2f} | "
                     f"{m['person_SSIM']:.4f} | {m['person_L1']:.2f} | {times[key]:.0f} |")
    b = rows[0][3]
    lines.append(f"| copy source (reference) | {b['copy_source_SSIM']:.4f} | {b['copy_source_mask_SSIM']:.4f} | "
                 f"{b['copy_source_PSNR']:.2f} | {b['copy_source_person_SSIM']:.4f} | "
                 f"{b['copy_source_person_L1']:.2f} | – |")
    lines.append(f"| source warped with the ground-truth flow (reference) | – | – | – | "
                 f"{b['gt_flow_warp_person_SSIM']:.4f} | {b['gt_flow_warp_person_L1']:.2f} | – |")
    return '\n'.join(lines)

if __name__ == '__main__':
    main()
