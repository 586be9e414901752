"""Training-step throughput at DeepFashion (256x256) and Market (128x64) scale, in float32 and with each speed option.

    python benchmarks/bench_train.py [--device cpu|cuda] [--iters 2] [--batch_size 4] [--json bench_train.json]

Workloads per scale (the paper's full architectures; random weights; synthetic data of the right size):

* ``flow_step``: one training step of the flow regression module;
* ``gen_step``: one generator step (feature warping, VGG content loss; the VGG weights are random, the cost is the
  same), ``gen_step_gan``: the same with the discriminator step and the GAN term, ``gen_step_pixwarp``: the
  pixel-warping stage (frozen generator, netPW learns);
* ``test_forward``: the pose-transfer test forward (flow network + generator, SSIM/PSNR);
* ``loader``: data-loader throughput (one process, no workers; the speed options do not apply).

Variants: ``fp32`` (the faithful path), ``channels_last``, ``bf16``, ``bf16+channels_last``, ``fp16`` and, with
``--compile``, ``compile`` (slow to warm up). Every variant starts from the same weights and batch, so the max-abs
difference of the first step's output (image or flow, before the update) against fp32 measures its numerics.
Times are medians over ``--iters`` iterations after one warm-up; images/s = batch / median. On a shared machine
compare variants as ratios within one run (the load average is recorded).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from data.data_loader import create_dataset, make_dataloader  # noqa: E402
from data.synthetic import DemoConfig, generate_demo_dataset  # noqa: E402
from models import create_model  # noqa: E402
from models.losses import random_vgg19_features  # noqa: E402
from options.base_options import save_options  # noqa: E402
from options.flow_regression_options import TrainFlowRegressionOptions  # noqa: E402
from options.pose_transfer_options import TrainPoseTransferOptions  # noqa: E402
from util.io import save_json  # noqa: E402
from util.weights import atomic_torch_save, cpu_state_dict, network_path  # noqa: E402

SCALES = {'deepfashion': (256, 256), 'market': (128, 64)}
VARIANTS = {
    'fp32': [],
    'channels_last': ['--channels_last', '1'],
    'bf16': ['--amp', 'bf16'],
    'bf16+channels_last': ['--amp', 'bf16', '--channels_last', '1'],
    'fp16': ['--amp', 'fp16'],
    'compile': ['--compile', '1'],
}
FULL_MODEL = ['--which_model_G', 'dual_unet', '--G_feat_warp', '1', '--G_vis_mode', 'residual']


class Bench:
    def __init__(self, scale: str, root: Path, ckpt: Path, device: str, batch_size: int):
        self.scale, self.root, self.ckpt, self.batch_size = scale, root, ckpt, batch_size
        h, w = SCALES[scale]
        self.common = ['--dataset_name', scale, '--data_root', str(root), '--checkpoints_dir', str(ckpt),
                       '--image_size', str(h), str(w), '--img_dir', 'Img/img/', '--seg_dir', 'Img/seg/',
                       '--corr_dir', '3d/hmr/corr/', '--gpu_ids', '0' if device == 'cuda' else '-1',
                       '--num_workers', '0', '--tensorboard', '0', '--batch_size', str(batch_size)]
        self.flow_args = [*self.common, '--id', f'bench_{scale}', '--fn_split', 'Label/pair_split_clean.json',
                          '--fn_pose', 'Label/pose_label_adapt.pkl']
        self.vgg_file = ckpt / 'vgg19_random.pth'
        if not self.vgg_file.is_file():
            atomic_torch_save({f'features.{k}': v for k, v in random_vgg19_features(0).state_dict().items()}, self.vgg_file)
        # The frozen flow network of the pose stage: random weights saved as a flow experiment.
        opt = TrainFlowRegressionOptions().parse(self.flow_args, display=False)
        torch.manual_seed(0)
        model = create_model(opt)
        save_options(opt, Path(opt.expr_dir) / 'train_opt.json')  # parsing writes nothing; a training run would
        atomic_torch_save(cpu_state_dict(model.netF), network_path(opt.expr_dir, 'latest', 'netF'))
        self.pose_args = [*self.common, '--id', f'bench_{scale}', '--fn_split', 'Label/pair_split.json',
                          '--fn_pose', 'Label/pose_label.pkl', '--pretrained_flow_id', f'bench_{scale}',
                          '--pretrained_flow_epoch', 'latest', '--vgg_weights', str(self.vgg_file), *FULL_MODEL]
        # The frozen generator of the pixel-warping stage: random weights saved as a w/o-pixel-warping experiment.
        opt = TrainPoseTransferOptions().parse([*self.pose_args, '--loss_weight_gan', '0'], display=False)
        torch.manual_seed(0)
        atomic_torch_save(cpu_state_dict(create_model(opt).netG), network_path(opt.expr_dir, 'latest', 'netG'))
        self.batches = {}

    def batch(self, kind: str) -> dict:
        if kind not in self.batches:
            opt = (TrainFlowRegressionOptions() if kind == 'flow' else TrainPoseTransferOptions()).parse(
                self.flow_args if kind == 'flow' else self.pose_args, display=False, save=False)
            np.random.seed(0)
            loader = make_dataloader(create_dataset(opt, 'train'), self.batch_size, drop_last=True)
            self.batches[kind] = next(iter(loader))
        return self.batches[kind]

    def model(self, workload: str, variant_args: list[str]):
        if workload == 'flow_step':
            opt = TrainFlowRegressionOptions().parse([*self.flow_args, *variant_args], display=False, save=False)
        else:
            extra = {'gen_step': ['--loss_weight_gan', '0'], 'gen_step_gan': ['--epoch_add_gan', '1'],
                     'gen_step_pixwarp': ['--G_pix_warp', '1', '--loss_weight_gan', '0', '--pretrained_G_id',
                                          f'bench_{self.scale}', '--pretrained_G_epoch', 'latest'],
                     'test_forward': ['--loss_weight_gan', '0']}[workload]
            opt = TrainPoseTransferOptions().parse([*self.pose_args, *extra, *variant_args], display=False,
                                                   save=False)
        torch.manual_seed(0)
        model = create_model(opt)
        model.on_epoch_start(1)
        model.update_learning_rate(1)
        return model

    def run(self, workload: str, variant_args: list[str], iters: int) -> tuple[float, torch.Tensor]:
        """(seconds per iteration, the first iteration's output)."""
        model = self.model(workload, variant_args)
        model.set_input(self.batch('flow' if workload == 'flow_step' else 'pose'))
        key = 'flow_out' if workload == 'flow_step' else 'img_out'
        times, first = [], None
        for _ in range(iters + 1):
            start = time.perf_counter()
            if workload == 'test_forward':
                model.test(compute_loss=True, meas_only=True)
            else:
                model.train_mode()
                model.optimize_parameters(check_grad=False)
            if torch.cuda.is_available() and model.device.type == 'cuda':
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
            if first is None:
                first = model.output[key].detach().float().cpu().clone()
        return statistics.median(times[1:]), first

    def loader(self, n_batches: int) -> float:
        opt = TrainPoseTransferOptions().parse(self.pose_args, display=False, save=False)
        dataset = create_dataset(opt, 'train')
        loader = make_dataloader(dataset, self.batch_size, shuffle=True, drop_last=True, seed=0)
        it = iter(loader)
        next(it)  # warm-up
        start = time.perf_counter()
        n = 0
        for _ in range(n_batches):
            next(it)
            n += self.batch_size
        return n / (time.perf_counter() - start)


def make_dataset(root: Path, scale: str) -> None:
    cfg = DemoConfig(seed=1, image_size=SCALES[scale], n_train_identities=2, n_test_identities=1,
                     images_per_identity=4, test_pairs_per_identity=4, n_test_small=2)
    generate_demo_dataset(root, cfg, workers=1, verbose=False)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--scales', nargs='+', default=list(SCALES), choices=list(SCALES))
    parser.add_argument('--workloads', nargs='+',
                        default=['flow_step', 'gen_step', 'gen_step_gan', 'gen_step_pixwarp', 'test_forward'])
    parser.add_argument('--variants', nargs='+', default=[v for v in VARIANTS if v != 'compile'],
                        choices=list(VARIANTS))
    parser.add_argument('--compile', action='store_true', help='also time --compile 1 (long warm-up)')
    parser.add_argument('--iters', type=int, default=2, help='timed iterations per measurement (after 1 warm-up)')
    parser.add_argument('--batch_size', type=int, default=4)
    parser.add_argument('--loader_batches', type=int, default=4)
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    parser.add_argument('--work_dir', default=None, help='keep the synthetic data here (default: a temp folder)')
    parser.add_argument('--json', default='bench_train.json', help='where to write the results')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = list(dict.fromkeys(['fp32', *args.variants, *(['compile'] if args.compile else [])]))

    result = {'device': args.device, 'torch': torch.__version__, 'threads': torch.get_num_threads(),
              'batch_size': args.batch_size, 'iters': args.iters, 'load_average_start': os.getloadavg(),
              'rows': []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work_dir or tmp)
        for scale in args.scales:
            root = work / f'data_{scale}'
            if not (root / 'Label').is_dir():
                make_dataset(root, scale)
            bench = Bench(scale, root, work / 'ckpt', args.device, args.batch_size)
            for workload in args.workloads:
                ref_time, ref_out = None, None
                for variant in variants:
                    sec, out = bench.run(workload, VARIANTS[variant], args.iters)
                    if variant == 'fp32':
                        ref_time, ref_out = sec, out
                    row = {'scale': scale, 'workload': workload, 'variant': variant,
                           'images_per_s': args.batch_size / sec, 'speedup_vs_fp32': ref_time / sec,
                           'max_abs_diff_vs_fp32': float((out - ref_out).abs().max())}
                    result['rows'].append(row)
                    print(f'{scale:12s} {workload:17s} {variant:19s} {row["images_per_s"]:8.2f} img/s  '
                          f'x{row["speedup_vs_fp32"]:.2f}  max|diff| {row["max_abs_diff_vs_fp32"]:.2e}', flush=True)
            ips = bench.loader(args.loader_batches)
            result['rows'].append({'scale': scale, 'workload': 'loader', 'variant': '-', 'images_per_s': ips,
                                   'speedup_vs_fp32': None, 'max_abs_diff_vs_fp32': None})
            print(f'{scale:12s} {"loader":17s} {"-":19s} {ips:8.2f} img/s', flush=True)
    result['load_average_end'] = os.getloadavg()
    save_json(result, args.json, indent=2)
    print(format_table(result))
    print(f'written {args.json}')
    return result


def format_table(result: dict) -> str:
    lines = [f'device {result["device"]}, torch {result["torch"]}, {result["threads"]} threads, batch '
             f'{result["batch_size"]}, median of {result["iters"]} iterations; load average '
             f'{result["load_average_start"][0]:.1f} -> {result["load_average_end"][0]:.1f}', '',
             '| scale | workload | variant | images/s | vs fp32 | max abs diff vs fp32 |', '|---|---|---|---:|---:|---:|']
    for r in result['rows']:
        speed = '' if r['speedup_vs_fp32'] is None else f'{r["speedup_vs_fp32"]:.2f}x'
        diff = '' if r['max_abs_diff_vs_fp32'] is None else f'{r["max_abs_diff_vs_fp32"]:.1e}'
        lines.append(f'| {r["scale"]} | {r["workload"]} | {r["variant"]} | {r["images_per_s"]:.2f} | {speed} | '
                     f'{diff} |')
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
