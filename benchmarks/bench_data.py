"""Per-sample load time of both dataset classes at 128x64 and 256x256, optionally against an older implementation.

    python benchmarks/bench_data.py [--n_samples 200] [--repeats 5] [--keep DIR] [--json FILE]
    python benchmarks/bench_data.py --compare-reference [REV]

Generates small synthetic datasets in a temporary folder (or DIR), then times ``dataset[i]`` per dataset type,
size and augmentation (off / train augmentation). Every implementation runs in its own worker process with one
torch thread and one OpenCV thread and no DataLoader workers, so only the per-sample work is measured.

``--compare-reference REV`` also runs the dataset code of git revision REV (default: the last commit before the
loader speed-up), extracted with ``git archive`` into a temporary folder. The two implementations take turns
(alternating order) in every repetition, so both see the same load on a shared CPU; the table gives the median
ms/sample of each in process CPU time (user + system: what a loader worker spends, and little affected by other
processes on a shared CPU) and in wall-clock time, the speed-ups (ratios of the medians) and the range of the
per-repetition CPU-time ratios. Both also
produce the same samples from the same random state and their hashes (every key, dtype, shape, stride and
value) are compared: a difference is reported and makes the exit status 1.

``--retain_freed_memory`` runs every worker with glibc keeping freed memory (what a DataLoader worker gets when its
``worker_init_fn`` calls ``util.memory.retain_freed_memory``); by default freed item arrays go back to the OS and
are page-faulted in again for the next sample, which on a busy CPU is a large part of the per-sample time.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from argparse import Namespace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The last commit whose datasets computed heatmaps, one-hot maps and images over the whole image in float64/HWC
# layout; `--compare-reference` without a value times against it.
REFERENCE_REV = 'ce399ab8d53141814a21527ee7ae866a6336ca21'
SIZES = ((128, 64), (256, 256))
# Per-sample time is measured as process CPU time (user + system, what a loader worker consumes; robust to other
# processes on a shared CPU) and as wall-clock time.
CLOCKS = ('cpu', 'wall')
DATASET_TYPES = ('flow', 'pose_transfer')


def make_opt(root: Path | str, dataset_type: str, size: tuple[int, int], augment: bool,
             joint_mode: str = 'binary', color_jit: bool = False, maps_on_device: bool = False) -> Namespace:
    """Dataset options of the benchmark: DeepFashion-like radius/shift ranges at 256, Market-like at 128x64."""
    return Namespace(
        # Not 'demo': that name makes the datasets check the generator's manifest, and an older revision's
        # check refuses datasets written by a newer generator. Nothing else in the datasets reads the name.
        data_root=str(root), dataset_name='synthetic', dataset_type=dataset_type,
        fn_split='Label/pair_split_clean.json' if dataset_type == 'flow' else 'Label/pair_split.json',
        fn_pose='Label/pose_label_adapt.pkl' if dataset_type == 'flow' else 'Label/pose_label.pkl',
        img_dir='Img/img/', seg_dir='Img/seg/', corr_dir='3d/hmr/corr/', image_size=list(size), joint_nc=18,
        joint_mode=joint_mode, joint_radius=8 if size[0] >= 256 else 4, seg_nc=7, vis_smooth_rate=5,
        aug_shiftx_range=20 if size[0] >= 256 else 5, aug_shifty_range=10 if size[0] >= 256 else 5,
        use_augmentation=int(augment), aug_scale_range=1.2, aug_color_jit=int(color_jit),
        aug_affine_hw_order='as_written', allow_corr_fallback=0, strict_seg=0, debug=False, is_train=augment,
        batch_size=8, num_workers=0, maps_on_device=int(maps_on_device))


# --------------------------------------------------------------------------------------------------
# Worker process: one implementation (a source tree), driven by JSON lines on stdin


def _hash_item(digest, item: dict) -> None:
    """Feed every key, and every tensor's dtype, shape, stride and bytes (or the string value), to ``digest``."""
    for key in sorted(item):
        value = item[key]
        digest.update(key.encode())
        if isinstance(value, str):
            digest.update(b'str:' + value.encode())
        else:
            digest.update(f'{value.dtype}{tuple(value.shape)}{value.stride()}'.encode())
            digest.update(value.contiguous().numpy().tobytes())


def worker_main(tree: Path, retain_memory: bool) -> None:
    """Serve ``time`` / ``digest`` requests with the dataset classes of ``tree``."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), 'w')
    sys.stdout = sys.stderr  # anything the dataset code prints must not corrupt the replies
    if retain_memory:
        # This repository's helper, loaded by path: the reference tree may predate it.
        spec = importlib.util.spec_from_file_location('_bench_memory', REPO_ROOT / 'util' / 'memory.py')
        memory = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(memory)
        if not memory.retain_freed_memory():
            raise RuntimeError('--retain_freed_memory needs glibc (mallopt); not available here')
    sys.path.insert(0, str(tree))
    import cv2
    import numpy as np
    import torch
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    import data
    from data.data_loader import create_dataset
    if not Path(data.__file__).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f'worker for {tree} imported the dataset code from {data.__file__} (PYTHONPATH?)')
    datasets = {}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            key = (request['root'], request['dataset_type'], tuple(request['size']), request['augment'],
                   request['joint_mode'], request['color_jit'], request.get('maps_on_device', False))
            if key not in datasets:
                datasets[key] = create_dataset(make_opt(*key), 'train')
                np.random.seed(0)
                datasets[key][0]  # warm-up: imports, caches
            dataset = datasets[key]
            n = min(request['n'], len(dataset))
            np.random.seed(request['seed'])
            if request['cmd'] == 'time':
                wall, cpu = time.perf_counter(), time.process_time()
                for i in range(n):
                    dataset[i]
                reply = {'wall': (time.perf_counter() - wall) / n * 1000,
                         'cpu': (time.process_time() - cpu) / n * 1000}
            elif request['cmd'] == 'time_device_maps':
                # What --maps_on_device moves to the training device, drawn here on this CPU for a batch of 8.
                from data.base_dataset import draw_device_maps
                batch = torch.utils.data.default_collate([dataset[i] for i in range(8)])
                opt = dataset.opt
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(n // 8):
                    draw_device_maps(dict(batch), opt.joint_mode, opt.joint_radius, opt.seg_nc)
                reply = {'wall': (time.perf_counter() - wall) / (n // 8 * 8) * 1000,
                         'cpu': (time.process_time() - cpu) / (n // 8 * 8) * 1000}
            else:
                digest = hashlib.sha256()
                if dataset.opt.maps_on_device:  # hash the maps the model will draw: they must be the loader's
                    from data.base_dataset import DEVICE_MAP_KEYS, draw_device_maps
                for i in range(n):
                    item = dataset[i]
                    if dataset.opt.maps_on_device:
                        batch = {k: v[None] for k, v in item.items() if torch.is_tensor(v)}
                        draw_device_maps(batch, dataset.opt.joint_mode, dataset.opt.joint_radius, dataset.opt.seg_nc)
                        item.update({k: batch[k][0] for k in DEVICE_MAP_KEYS})
                    _hash_item(digest, item)
                reply = {'digest': digest.hexdigest()}
        except Exception:  # noqa: BLE001 - reported to the parent, which stops with the traceback
            reply = {'error': traceback.format_exc()}
        replies.write(json.dumps(reply) + '\n')
        replies.flush()


class Worker:
    """A worker process running the dataset code of one source tree."""

    def __init__(self, name: str, tree: Path, retain_memory: bool) -> None:
        self.name = name
        env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
        env['OMP_NUM_THREADS'] = '1'
        cmd = [sys.executable, str(Path(__file__).resolve()), '--worker', str(tree)]
        self.proc = subprocess.Popen(cmd + ['--retain_freed_memory'] * retain_memory, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)

    def request(self, **request) -> dict:
        self.proc.stdin.write(json.dumps(request) + '\n')
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f'{self.name} worker exited (status {self.proc.wait()}); see its messages above')
        reply = json.loads(line)
        if 'error' in reply:
            raise RuntimeError(f'{self.name} worker failed on {request}:\n{reply["error"]}')
        return reply

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# --------------------------------------------------------------------------------------------------
# Parent process


def extract_revision(rev: str, dest: Path) -> str:
    """``git archive`` revision ``rev`` of this repository into ``dest``; returns the full commit hash."""
    try:
        commit = subprocess.run(['git', '-C', str(REPO_ROOT), 'rev-parse', '--verify', f'{rev}^{{commit}}'],
                                check=True, capture_output=True, text=True).stdout.strip()
        tar = subprocess.run(['git', '-C', str(REPO_ROOT), 'archive', '--format=tar', commit], check=True,
                             capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, 'stderr', '') or e
        raise SystemExit(f'--compare-reference: cannot extract git revision {rev!r} of {REPO_ROOT} '
                         f'({str(detail).strip()}); run from a git clone and pass a commit from before the loader '
                         f'speed-up') from None
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(dest, filter='data')
    return commit


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f'load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)'


def generate(base: Path, size: tuple[int, int]) -> Path:
    from data.synthetic import DemoConfig, generate_demo_dataset
    cfg = DemoConfig(image_size=size, n_train_identities=10, n_test_identities=2, images_per_identity=6)
    root = base / f'demo_{size[0]}x{size[1]}'
    stats = generate_demo_dataset(root, cfg, workers=1, verbose=False, force=True)
    print(f'{size[0]}x{size[1]}: generated {stats["n_corr"]} pairs in {stats["seconds"]:.2f} s '
          f'({stats["pairs_per_second"]:.0f} pairs/s, 1 process)')
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--n_samples', type=int, default=200, help='samples per timed pass')
    p.add_argument('--repeats', type=int, default=5, help='timed passes per implementation and case (median)')
    p.add_argument('--keep', default=None, help='generate the datasets into this folder and keep them')
    p.add_argument('--compare-reference', dest='reference', nargs='?', const=REFERENCE_REV, default=None,
                   metavar='REV', help=f'also time the dataset code of git revision REV (default {REFERENCE_REV[:7]}) '
                                       f'and check that it gives identical samples')
    p.add_argument('--joint_mode', default='binary', choices=('binary', 'gaussian'), help='heatmap type')
    p.add_argument('--color_jit', type=int, default=0, choices=(0, 1),
                   help='hue jitter in the pose-transfer train augmentation (off by default, as in training)')
    p.add_argument('--sizes', nargs='+', default=[f'{h}x{w}' for h, w in SIZES], metavar='HxW')
    p.add_argument('--retain_freed_memory', action='store_true',
                   help='in every worker, make glibc keep freed memory (util.memory.retain_freed_memory, as a '
                        'DataLoader worker_init_fn can): no page faults for re-allocated item arrays')
    p.add_argument('--maps_on_device', action='store_true',
                   help='time this implementation with --maps_on_device 1 (no heatmaps or one-hot maps in the '
                        'items; the model draws them on its device): the identity check compares the maps drawn '
                        'from the item with the reference\'s, and a last column gives the cost of that drawing on '
                        'this CPU')
    p.add_argument('--json', default=None, help='also write the results to this JSON file')
    p.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker_main(Path(args.worker), args.retain_freed_memory)
        return
    sys.path.insert(0, str(REPO_ROOT))
    import cv2
    import numpy as np
    import torch

    sizes = [tuple(int(v) for v in s.lower().split('x')) for s in args.sizes]
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix='bench_data_'))
    ref_tree = Path(tempfile.mkdtemp(prefix='bench_data_ref_')) if args.reference else None
    print(f'torch {torch.__version__}, numpy {np.__version__}, opencv {cv2.__version__}; datasets in {base}')
    results = {'n_samples': args.n_samples, 'repeats': args.repeats, 'joint_mode': args.joint_mode,
               'color_jit': bool(args.color_jit), 'retain_freed_memory': args.retain_freed_memory,
               'maps_on_device': args.maps_on_device,
               'load_average_start': os.getloadavg(), 'cases': []}
    workers = []
    mismatches = 0
    try:
        roots = {size: generate(base, size) for size in sizes}
        new = Worker('new', REPO_ROOT, args.retain_freed_memory)
        workers.append(new)
        ref = None
        if args.reference:
            results['reference_commit'] = extract_revision(args.reference, ref_tree)
            ref = Worker('reference', ref_tree, args.retain_freed_memory)
            workers.append(ref)
            print(f'reference: {args.reference} = commit {results["reference_commit"][:12]}')
        print(f'{load_average()} at start; {args.n_samples} samples per pass, median of {args.repeats} passes; '
              f'joint_mode {args.joint_mode}, color_jit {args.color_jit}, freed memory '
              f'{"retained" if args.retain_freed_memory else "returned to the OS (glibc defaults)"}'
              + ('; new: --maps_on_device 1 (maps drawn by the model, timed separately in the last column)'
                 if args.maps_on_device else ''))
        header = f'{"size":>8s}  {"dataset":<14s} {"augment":<7s}  {"CPU ms/sample: new":>18s}'
        if ref:
            header += (f' {"ref":>6s} {"speed-up (per-pass range)":>26s}  {"wall ms: new":>12s} {"ref":>6s} '
                       f'speed-up  identical')
        if args.maps_on_device:
            header += '  maps on this CPU, ms/sample'
        print(header)
        for size in sizes:
            for dataset_type in DATASET_TYPES:
                for augment in (False, True):
                    request = dict(root=str(roots[size]), dataset_type=dataset_type, size=list(size),
                                   augment=augment, joint_mode=args.joint_mode, color_jit=bool(args.color_jit),
                                   n=args.n_samples, seed=1)
                    pair = [w for w in (ref, new) if w is not None]
                    # only this implementation has the option; the reference builds the classic items
                    own = {new.name: dict(request, maps_on_device=args.maps_on_device)}
                    passes = {clock: {w.name: [] for w in pair} for clock in CLOCKS}
                    for rep in range(args.repeats):
                        for worker in (pair if rep % 2 == 0 else pair[::-1]):
                            reply = worker.request(cmd='time', **own.get(worker.name, request))
                            for clock in CLOCKS:
                                passes[clock][worker.name].append(reply[clock])
                    case = {'size': f'{size[0]}x{size[1]}', 'dataset_type': dataset_type, 'augment': augment,
                            'ms_per_pass': passes,
                            'ms_per_sample': {clock: {k: statistics.median(v) for k, v in passes[clock].items()}
                                              for clock in CLOCKS}}
                    cpu, wall = case['ms_per_sample']['cpu'], case['ms_per_sample']['wall']
                    line = (f'{case["size"]:>8s}  {dataset_type:<14s} {"train" if augment else "off":<7s}  '
                            f'{cpu["new"]:18.2f}')
                    if ref:
                        ratios = [r / n for r, n in zip(passes['cpu']['reference'], passes['cpu']['new'])]
                        identical = (ref.request(cmd='digest', **request)['digest']
                                     == new.request(cmd='digest', **own[new.name])['digest'])
                        mismatches += not identical
                        case.update(speed_up=cpu['reference'] / cpu['new'], speed_up_per_pass=ratios,
                                    speed_up_wall=wall['reference'] / wall['new'], identical=identical)
                        line += (f' {cpu["reference"]:6.2f} {case["speed_up"]:9.2f}x '
                                 f'({min(ratios):.2f}x-{max(ratios):.2f}x)'
                                 f'  {wall["new"]:12.2f} {wall["reference"]:6.2f} {case["speed_up_wall"]:7.2f}x  '
                                 f'{"yes" if identical else "NO, samples differ"}')
                    if args.maps_on_device:
                        maps = new.request(cmd='time_device_maps', **own[new.name])
                        case['device_maps_ms_per_sample'] = maps
                        line += f'  {maps["cpu"]:27.2f}'
                    print(line, flush=True)
                    results['cases'].append(case)
        results['load_average_end'] = os.getloadavg()
        print(f'{load_average()} at the end')
        if ref:
            worst = min(results['cases'], key=lambda c: c['speed_up'])
            print(f'smallest CPU-time speed-up {worst["speed_up"]:.2f}x ({worst["size"]} {worst["dataset_type"]}, '
                  f'augment {"train" if worst["augment"] else "off"}); samples identical in '
                  f'{len(results["cases"]) - mismatches} of {len(results["cases"])} cases')
        if args.json:
            from util.io import atomic_write
            atomic_write(args.json, lambda f: f.write(json.dumps(results, indent=2)), mode='w')
    finally:
        for worker in workers:
            worker.close()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        if ref_tree is not None:
            shutil.rmtree(ref_tree, ignore_errors=True)
    if mismatches:
        raise SystemExit(f'{mismatches} case(s) gave different samples than the reference')


if __name__ == '__main__':
    main()
