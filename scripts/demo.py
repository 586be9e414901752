"""The quick-start job: the whole pipeline on the synthetic demo dataset, with the same scripts and options a user
runs on DeepFashion (only ``--dataset_name demo`` and small epoch counts).

    python scripts/demo.py                  # about 11 minutes on 2 CPU cores
    python scripts/demo.py --profile long   # about 26 minutes: a better flow module and generator
    python scripts/demo.py --tiny           # a smoke run of every step (used by the tests; = --profile tiny)

Steps: generate ``datasets/demo`` if missing; train the flow regression module (``FlowReg_demo``); train the
pose-transfer model without pixel warping (``PoseTransfer_demo_4``); fine-tune the full model's pixel-warping
network on top of it (``PoseTransfer_demo_5``); test both modules on the demo test split; write a small picture
(``PoseTransfer_demo_5/quickstart.jpg``: source, target pose, output, target, predicted flow for a few test pairs).
Every step prints the command line it runs; at the end the demo prints the time of each step. The demo's network
widths and learning rates (chosen for a short CPU run) are options on these command lines; the scripts' defaults
stay the paper's. Every run starts the three models afresh (the training commands carry ``--overwrite``: a
second run replaces the first run's ``FlowReg_demo``, ``PoseTransfer_demo_4`` and ``PoseTransfer_demo_5``). Test
results go to ``<checkpoints_dir>/<id>/test_test_best/`` and are replaced on every run too.
"""
import _path  # noqa: F401

import argparse
import contextlib
import shlex
import sys
import time
from pathlib import Path

import make_demo_dataset
import test_flow_regression_module
import test_pose_transfer
import train_flow_regression_module
import train_pose_transfer_model
from data.synthetic import dataset_is_complete
from models.losses import load_vgg19_features
from options.base_options import merge_train_options
from options.pose_transfer_options import TestPoseTransferOptions
from training.evaluation import save_pose_picture

# Per profile: epochs and iterations per epoch of each stage (batch size 8), network widths and learning rates of
# the flow module (flow_*) and the generator (G_*, pose_lr; full_lr for the pixel-warping network of the full model).
# 'default' takes ~11 min on 2 idle cores (measured); see the README for how it was chosen.
PROFILES = {
    'default': dict(flow_epochs=3, flow_steps=240, flow_nf=16, flow_max_nf=64, flow_lr=1e-3, flow_lr_decay=2,
                    pose_epochs=3, pose_steps=70, G_nf=16, G_max_nf=64, pose_lr=1e-3,
                    full_epochs=1, full_steps=30, full_lr=1e-3,
                    epoch_add_gan=3, n_vis=16, picture_pairs=4, dataset_args=[]),
    # ~3x the default's time, most of it for the flow module (6 epochs over all train pairs), whose accuracy limits
    # the person-region result (see the README).
    'long': dict(flow_epochs=6, flow_steps=375, flow_nf=16, flow_max_nf=64, flow_lr=1e-3, flow_lr_decay=4,
                 pose_epochs=4, pose_steps=140, G_nf=16, G_max_nf=64, pose_lr=1e-3,
                 full_epochs=1, full_steps=80, full_lr=1e-3,
                 epoch_add_gan=4, n_vis=16, picture_pairs=4, dataset_args=[]),
    'tiny': dict(flow_epochs=1, flow_steps=2, flow_nf=8, flow_max_nf=16, flow_lr=1e-4, flow_lr_decay=1,
                 pose_epochs=2, pose_steps=2, G_nf=8, G_max_nf=16, pose_lr=2e-4,
                 full_epochs=1, full_steps=2, full_lr=2e-4,
                 epoch_add_gan=2, n_vis=8, picture_pairs=2, dataset_args=['--n_identities', '8',
                                                                           '--images_per_identity', '4',
                                                                           '--n_test_identities', '4']),
}


def run(step: str, module, argv: list[str]):
    print(f'\n=== {step}\n$ python scripts/{Path(module.__file__).name} {shlex.join(argv)}', flush=True)
    return module.main(argv)


@contextlib.contextmanager
def timed(times: dict[str, float], stage: str):
    """Add the wall time of the ``with`` body to ``times[stage]`` (seconds)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        times[stage] = times.get(stage, 0.0) + time.perf_counter() - t0


def vgg_available(weights_path: str | None) -> bool:
    try:
        load_vgg19_features(weights_path)
        return True
    except FileNotFoundError:
        return False


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--profile', choices=sorted(PROFILES), default='default',
                        help="epochs, iterations, widths and learning rates of the stages: 'default' (~11 min on 2 "
                             "CPU cores), 'long' (~26 min), 'tiny' (a smoke run)")
    parser.add_argument('--tiny', action='store_true', help='smoke run: a few steps of every stage (= --profile tiny)')
    parser.add_argument('--gpu_ids', default='-1', help='-1 for the CPU (default), 0 for the first GPU')
    parser.add_argument('--data_root', default='datasets/demo/', help='where the demo dataset lives')
    parser.add_argument('--checkpoints_dir', default='checkpoints')
    parser.add_argument('--vgg_weights', default=None, help="path to torchvision's vgg19-dcbb9e9d.pth")
    parser.add_argument('--num_workers', default='2')
    args = parser.parse_args(argv)
    prof = PROFILES['tiny' if args.tiny else args.profile]
    times: dict[str, float] = {}

    with timed(times, 'generate the dataset'):
        if not dataset_is_complete(args.data_root, make_demo_dataset.config_from_argv(prof['dataset_args'])):
            # --force: a half-written or differently configured folder (e.g. an older background style) is
            # regenerated rather than trusted.
            code = run('generate the synthetic demo dataset', make_demo_dataset,
                       ['--out', args.data_root, '--force', *prof['dataset_args']])
            if code:
                raise SystemExit(f'generating the demo dataset in {args.data_root} failed (exit code {code})')

    # --overwrite: the demo trains its three models from scratch on every run (a rerun replaces the last one's)
    common = ['--overwrite', '--dataset_name', 'demo', '--gpu_ids', args.gpu_ids, '--data_root', args.data_root,
              '--checkpoints_dir', args.checkpoints_dir, '--num_workers', args.num_workers, '--tensorboard', '0']
    # --overwrite: the models were just retrained, so the results of an earlier demo run (test_test_best/) are replaced
    test_common = ['--which_epoch', 'best', '--gpu_ids', args.gpu_ids, '--checkpoints_dir', args.checkpoints_dir,
                   '--num_workers', args.num_workers, '--n_vis', str(prof['n_vis']), '--overwrite']
    with timed(times, 'train the flow module'):
        run('train the flow regression module', train_flow_regression_module, [
            '--id', 'demo', '--which_model', 'unet_v2', *common, '--nf', str(prof['flow_nf']),
            '--max_nf', str(prof['flow_max_nf']), '--lr', str(prof['flow_lr']), '--n_epoch', str(prof['flow_epochs']),
            '--max_steps_per_epoch', str(prof['flow_steps']), '--lr_decay', str(prof['flow_lr_decay']),
            '--save_epoch_freq', '100', '--n_vis', str(prof['n_vis']), '--display_freq', '50'])
    with timed(times, 'test the flow module'):
        flow = run('test the flow regression module on the demo test split', test_flow_regression_module,
                   ['--id', 'demo', *test_common])

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
                   '--G_nf', str(prof['G_nf']), '--G_max_nf', str(prof['G_max_nf']),
                   '--n_vis', str(prof['n_vis']), '--display_freq', '50', '--save_epoch_freq', '100']
    with timed(times, 'train the generator (4)'):
        run('train the pose-transfer model without pixel warping (ablation 4)', train_pose_transfer_model, [
            '--id', 'demo_4', '--which_model_G', 'dual_unet', '--G_feat_warp', '1', '--G_vis_mode', 'residual',
            *pose_common, '--lr', str(prof['pose_lr']), '--n_epoch', str(prof['pose_epochs']),
            '--max_steps_per_epoch', str(prof['pose_steps']), '--epoch_add_gan', str(prof['epoch_add_gan'])])
    with timed(times, 'fine-tune pixel warping (5)'):
        run('fine-tune the pixel-warping network of the full model on the frozen generator (ablation 5)',
            train_pose_transfer_model, [
                '--id', 'demo_5', '--which_model_G', 'dual_unet', '--G_feat_warp', '1', '--G_vis_mode', 'residual',
                '--G_pix_warp', '1', '--pretrained_G_id', 'PoseTransfer_demo_4', '--pretrained_G_epoch', 'best',
                *pose_common, '--lr', str(prof['full_lr']), '--n_epoch', str(prof['full_epochs']),
                '--max_steps_per_epoch', str(prof['full_steps']), '--epoch_add_gan', '1'])
    # the demo's masked SSIM uses the corrected mask orientation (the default reproduces the original's quirk)
    pose_test = ['--id', 'demo_5', *test_common, '--masked', '--pose_mask_transposed', '0']
    with timed(times, 'test the full model'):
        result = run('test the full model on the demo test split', test_pose_transfer, [*pose_test, '--save_output'])
    with timed(times, 'picture'):
        picture = write_picture(pose_test, prof['picture_pairs'])

    print('\n=== done; time of each step (wall clock):\n' + times_table(times))
    print(summary(flow['metrics'], result['metrics'], result['baselines']))
    print(f"results:      {result['results_dir']}\nmetrics JSON: {result['json']}\n"
          f"visual grid:  {result['visual_grid']}\nimages:       {result['output_dir']}"
          f"\npicture:      {picture}")
    result.update({'flow_metrics': flow['metrics'], 'stage_seconds': times, 'picture': str(picture)})
    return result


def write_picture(test_argv: list[str], n_pairs: int) -> Path:
    """``quickstart.jpg`` in the tested experiment's folder, with the test's options (model, split, BatchNorm)."""
    opt = merge_train_options(TestPoseTransferOptions().parse(test_argv, display=False))
    return save_pose_picture(opt, opt.expr_dir / 'quickstart.jpg', n_pairs=n_pairs)


def times_table(times: dict[str, float]) -> str:
    width = max(len(k) for k in [*times, 'total'])
    rows = [f'  {k:<{width}}  {v:7.1f} s' for k, v in times.items()]
    return '\n'.join([*rows, f'  {"total":<{width}}  {sum(times.values()):7.1f} s'])


def summary(flow: dict[str, float], m: dict[str, float], b: dict[str, float]) -> str:
    """The demo's closing lines: whole-image metrics, person-region metrics against both references, and the
    targets (person SSIM closes half of the gap from copy-source to the ground-truth-flow warp; flow EPE at most
    half of the zero-flow EPE)."""
    copy_ssim, warp_ssim = b['copy_source_person_SSIM'], b['gt_flow_warp_person_SSIM']
    closed = (m['person_SSIM'] - copy_ssim) / (warp_ssim - copy_ssim) if warp_ssim != copy_ssim else float('nan')
    epe_ratio = flow['EPE'] / flow['zero_flow_EPE']
    def row(name: str, whole: tuple[float, float, float] | None, person: tuple[float, float]) -> str:
        left = '{:.4f}  {:.4f}       {:5.2f}'.format(*whole) if whole else ' ' * 27
        return f'{name:<24}{left}  | {person[0]:.4f}       {person[1]:6.2f}'
    return '\n'.join([
        f'{"":<24}SSIM    masked SSIM  PSNR   | person SSIM  person L1',
        row('full model:', (m['SSIM'], m['mask_SSIM'], m['PSNR']), (m['person_SSIM'], m['person_L1'])),
        row('copy source:', (b['copy_source_SSIM'], b['copy_source_mask_SSIM'], b['copy_source_PSNR']),
            (copy_ssim, b['copy_source_person_L1'])),
        row('ground-truth flow warp:', None, (warp_ssim, b['gt_flow_warp_person_L1'])),
        f'person SSIM: the model closes {closed:.0%} of the gap from copy-source to the ground-truth-flow warp '
        f'(target: at least 50%)',
        f"flow module: EPE {flow['EPE']:.3f} = {epe_ratio:.0%} of the zero-flow EPE {flow['zero_flow_EPE']:.3f} "
        f'(target: at most 50%)',
    ])

if __name__ == '__main__':
    sys.exit(0 if main() else 1)
