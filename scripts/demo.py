"""The quick-start job: the whole pipeline on the synthetic demo dataset, with the same scripts and options a user
runs on DeepFashion (only ``--dataset_name demo`` and small epoch counts).

    python scripts/demo.py            # about 10 minutes on 2 CPU cores
    python scripts/demo.py --tiny     # a smoke run of every step (used by the tests)

Steps: generate ``datasets/demo`` if missing; train the flow regression module (``FlowReg_demo``); train the
pose-transfer model without pixel warping (``PoseTransfer_demo_4``); fine-tune the full model's pixel-warping
network on top of it (``PoseTransfer_demo_5``); test it (results in
``<checkpoints_dir>/PoseTransfer_demo_5/test_test_best/``, replaced on every run). Every step prints the command line
it runs.
"""
import _path  # noqa: F401

import argparse
import shlex
import sys
import time
from pathlib import Path

import make_demo_dataset
import test_pose_transfer
import train_flow_regression_module
import train_pose_transfer_model
from data.synthetic import dataset_is_complete
from models.losses import load_vgg19_features

# Epochs and iterations per epoch of each stage (batch size 8), per profile. 'default' fits ~10 min on 2 cores.
PROFILES = {
    'default': dict(flow_epochs=4, flow_steps=150, pose_epochs=3, pose_steps=100, full_epochs=1, full_steps=80,
                    epoch_add_gan=3, n_vis=16, dataset_args=[]),
    'tiny': dict(flow_epochs=1, flow_steps=2, pose_epochs=2, pose_steps=2, full_epochs=1, full_steps=2,
                 epoch_add_gan=2, n_vis=8, dataset_args=['--n_identities', '8', '--images_per_identity', '4',
                                                         '--n_test_identities', '4']),
}


def run(step: str, module, argv: list[str]):
    print(f'\n=== {step}\n$ python scripts/{Path(module.__file__).name} {shlex.join(argv)}', flush=True)
    return module.main(argv)


def vgg_available(weights_path: str | None) -> bool:
    try:
        load_vgg19_features(weights_path)
        return True
    except FileNotFoundError:
        return False


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--tiny', action='store_true', help='smoke run: a few steps of every stage')
    parser.add_argument('--gpu_ids', default='-1', help='-1 for the CPU (default), 0 for the first GPU')
    parser.add_argument('--data_root', default='datasets/demo/', help='where the demo dataset lives')
    parser.add_argument('--checkpoints_dir', default='checkpoints')
    parser.add_argument('--vgg_weights', default=None, help="path to torchvision's vgg19-dcbb9e9d.pth")
    parser.add_argument('--num_workers', default='2')
    args = parser.parse_args(argv)
    prof = PROFILES['tiny' if args.tiny else 'default']
    t_start = time.time()

    if not dataset_is_complete(args.data_root, make_demo_dataset.config_from_argv(prof['dataset_args'])):
        # --force: a half-written or differently configured folder (e.g. an older background style) is
        # regenerated rather than trusted.
        code = run('generate the synthetic demo dataset', make_demo_dataset,
                   ['--out', args.data_root, '--force', *prof['dataset_args']])
        if code:
            raise SystemExit(f'generating the demo dataset in {args.data_root} failed (exit code {code})')

    common = ['--dataset_name', 'demo', '--gpu_ids', args.gpu_ids, '--data_root', args.data_root,
              '--checkpoints_dir', args.checkpoints_dir, '--num_workers', args.num_workers, '--tensorboard', '0']
    run('train the flow regression module', train_flow_regression_module, [
        '--id', 'demo', '--which_model', 'unet_v2', *common, '--n_epoch', str(prof['flow_epochs']),
        '--max_steps_per_epoch', str(prof['flow_steps']), '--lr_decay', str(max(prof['flow_epochs'] - 2, 1)),
        '--save_epoch_freq', '100', '--n_vis', str(prof['n_vis']), '--display_freq', '50'])

    content = []
    if vgg_available(args.vgg_weights):
        print('\nVGG19 ImageNet weights found: the perceptual (content) loss is on, as in the paper.')
        if args.vgg_weights:
            content = ['--vgg_weights', args.vgg_weights]
    else:
        print('\nVGG19 ImageNet weights (vgg19-dcbb9e9d.pth) not found: the demo trains WITHOUT the perceptual '
              'content loss (--loss_weight_content 0); L1 and GAN losses only. Put the file in the torch hub cache '
              '(~/.cache/torch/hub/checkpoints/) or pass --vgg_weights to use it.')
        content = ['--loss_weight_content', '0']
    pose_common = [*common, '--pretrained_flow_id', 'FlowReg_demo', '--pretrained_flow_epoch', 'best', *content,
                   '--n_vis', str(prof['n_vis']), '--display_freq', '50', '--save_epoch_freq', '100']
    run('train the pose-transfer model without pixel warping (ablation 4)', train_pose_transfer_model, [
        '--id', 'demo_4', '--which_model_G', 'dual_unet', '--G_feat_warp', '1', '--G_vis_mode', 'residual',
        *pose_common, '--n_epoch', str(prof['pose_epochs']), '--max_steps_per_epoch', str(prof['pose_steps']),
        '--epoch_add_gan', str(prof['epoch_add_gan'])])
    run('fine-tune the pixel-warping network of the full model on the frozen generator (ablation 5)',
        train_pose_transfer_model, [
            '--id', 'demo_5', '--which_model_G', 'dual_unet', '--G_feat_warp', '1', '--G_vis_mode', 'residual',
            '--G_pix_warp', '1', '--pretrained_G_id', 'PoseTransfer_demo_4', '--pretrained_G_epoch', 'best',
            *pose_common, '--n_epoch', str(prof['full_epochs']), '--max_steps_per_epoch', str(prof['full_steps']),
            '--epoch_add_gan', '1'])
    result = run('test the full model on the demo test split', test_pose_transfer, [
        '--id', 'demo_5', '--which_epoch', 'best', '--gpu_ids', args.gpu_ids, '--checkpoints_dir',
        args.checkpoints_dir, '--num_workers', args.num_workers, '--save_output', '--masked',
        # the model was just trained: results of an earlier demo run (test_test_best/) are replaced, not kept
        '--overwrite',
        # the demo's masked SSIM uses the corrected mask orientation (the default reproduces the original's quirk)
        '--pose_mask_transposed', '0', '--n_vis', str(prof['n_vis'])])

    m, b = result['metrics'], result['baselines']
    print(f'\n=== done in {time.time() - t_start:.0f} s')
    print(f"full model:           SSIM {m['SSIM']:.4f}  masked SSIM {m['mask_SSIM']:.4f}  PSNR {m['PSNR']:.2f}")
    print(f"copy-source baseline: SSIM {b['copy_source_SSIM']:.4f}  masked SSIM {b['copy_source_mask_SSIM']:.4f}  "
          f"PSNR {b['copy_source_PSNR']:.2f}")
    print(f"results:      {result['results_dir']}\nmetrics JSON: {result['json']}\n"
          f"visual grid:  {result['visual_grid']}\nimages:       {result['output_dir']}")
    return result


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
