"""Kill drill: ``kill -9`` a tiny training at random moments, many of them during saves, and check after each kill
that the experiment folder is sound.

    python benchmarks/kill_drill.py [--kills 20] [--seed 0] [--keep DIR]

A tiny flow training (demo data 128x64, ``--nf 8``, 2 iterations per epoch, ``latest`` saved after every iteration
with ``--save_step_freq 1``, ``best`` and an epoch label every epoch) is started with ``--auto_resume`` and killed
with SIGKILL, ``--kills`` times. Every save pauses after each file it writes (``INTRINSIC_FLOW_DRILL_SAVE_PAUSE``),
which widens the window of an interrupted save. Kills alternate between

* ``random``: a uniformly drawn moment within ``--max_delay`` seconds after the run printed its start line
  (training, validation, visualisation or a save);
* ``save``: a uniformly drawn moment within 0.8 s after the temporary folder of the run's 1st to 4th save (drawn
  uniformly) appeared.

After each kill, before anything else touches the folder:

1. every published label (``latest``, ``best``, epochs) verifies against its manifest, and its complete checkpoint
   and every ``<label>_net_*.pth`` (read through the top-level file names, as the original's tools do) describe the
   manifest's step, tensor for tensor, and hold only finite values (``latest`` loads);
2. the temporary files and unreferenced snapshot folders the kill left are counted (with their size), then
   removed by the start-up sweep the next run performs (:func:`training.checkpoint.sweep_stale_files`); afterwards
   nothing temporary remains.

The next start resumes from ``latest``. At the end one more run finishes the current epoch plus one, and the final
step must equal ``epochs x iterations per epoch`` (no iteration lost or repeated). Prints a summary and exits 1 if any
check failed.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from data.synthetic import DemoConfig, generate_demo_dataset  # noqa: E402
from training.checkpoint import (DRILL_SAVE_PAUSE_ENV, SNAPSHOTS_DIR, checkpoint_labels, resolve_label,  # noqa: E402
                                 sweep_stale_files, verify_snapshot)
from util.weights import safe_torch_load  # noqa: E402

STEPS_PER_EPOCH = 2
DEMO = DemoConfig(seed=3, image_size=(128, 64), n_train_identities=2, n_test_identities=1, images_per_identity=4,
                  test_pairs_per_identity=4, n_test_small=2)


def train_command(data: Path, ckpt: Path, n_epoch: int) -> list[str]:
    return [sys.executable, str(ROOT / 'scripts' / 'train_flow_regression_module.py'), '--id', 'drill',
            '--dataset_name', 'demo', '--data_root', str(data), '--checkpoints_dir', str(ckpt), '--gpu_ids', '-1',
            '--num_workers', '0', '--tensorboard', '0', '--which_model', 'unet_v2', '--nf', '8', '--max_nf', '16',
            '--batch_size', '4', '--max_steps_per_epoch', str(STEPS_PER_EPOCH), '--val_batches', '1', '--n_vis', '2',
            '--display_freq', '1', '--save_step_freq', '1', '--save_epoch_freq', '1', '--n_epoch', str(n_epoch),
            '--auto_resume']


def temporary_entries(exp: Path) -> list[Path]:
    """Everything a finished save would not leave: temporary files/folders anywhere in the experiment folder, and
    snapshot folders no label points to."""
    found = [p for p in exp.rglob('.*') if '.tmp' in p.name]
    snapshots = exp / SNAPSHOTS_DIR
    if snapshots.is_dir():
        referenced = {resolve_label(exp, e.name) for e in exp.iterdir() if e.is_symlink()}
        found += [p for p in snapshots.iterdir() if not p.name.startswith('.') and p.resolve() not in referenced]
    return sorted(set(found))


def size_of(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(p.stat().st_size for p in path.rglob('*') if p.is_file() and not p.is_symlink())
    return path.lstat().st_size


def check_labels(exp: Path) -> tuple[int | None, list[str]]:
    """Verify every published label; returns (step of 'latest' or None, problems)."""
    problems: list[str] = []
    latest_step = None
    labels = checkpoint_labels(exp)['complete'] if exp.is_dir() else []
    for label in labels:
        try:
            manifest = verify_snapshot(exp, label, deep=True)
            ckpt = safe_torch_load(exp / f'{label}_checkpoint.pth')
            if ckpt['state']['step'] != manifest['step']:
                problems.append(f'{label}: {label}_checkpoint.pth is step {ckpt["state"]["step"]}, the manifest '
                                f'says {manifest["step"]}')
            for name in manifest['files']:
                if '_net_' not in name:
                    continue
                net = safe_torch_load(exp / name, 'network')
                saved = ckpt['model']['nets'][name[len(label) + len('_net_'):-len('.pth')]]
                if not all(torch.equal(net[k], saved[k]) for k in net):
                    problems.append(f'{label}: {name} is not the network of {label}_checkpoint.pth')
                if not all(torch.isfinite(t).all() for t in net.values() if t.is_floating_point()):
                    problems.append(f'{label}: {name} holds non-finite values')
            if label == 'latest':
                latest_step = manifest['step']
        except Exception as exc:  # noqa: BLE001 -- every failure is a finding of the drill
            problems.append(f'{label}: {type(exc).__name__}: {exc}')
    return latest_step, problems


def wait_for_save(exp: Path, proc: subprocess.Popen, nth: int, timeout: float) -> bool:
    """Poll until the ``nth`` (1-based) save of this run is under way (its temporary folder appeared); False on
    timeout or exit."""
    end = time.monotonic() + timeout
    snapshots = exp / SNAPSHOTS_DIR
    seen: set[str] = set()
    while time.monotonic() < end and proc.poll() is None:
        if snapshots.is_dir():
            seen.update(p.name for p in snapshots.iterdir() if p.name.endswith('.tmp'))
            if len(seen) >= nth:
                return True
        time.sleep(0.01)
    return False


def wait_for_start(log: Path, proc: subprocess.Popen, timeout: float) -> None:
    """Poll until the run has printed its start/resume line (imports, data and model are ready)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        text = log.read_text(errors='replace')
        if 'start: ' in text or 'resume from ' in text:
            return
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--kills', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--save_pause', type=float, default=0.2, help='seconds each save pauses after each file')
    parser.add_argument('--max_delay', type=float, default=20.0,
                        help="upper end of a 'random' kill's delay after the run printed its start line (seconds)")
    parser.add_argument('--keep', type=Path, default=None, help='work in this folder and keep it')
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = args.keep or Path(tempfile.mkdtemp(prefix='kill_drill_'))
    work.mkdir(parents=True, exist_ok=True)
    data, ckpt = work / 'demo', work / 'checkpoints'
    exp = ckpt / 'FlowReg_drill'
    generate_demo_dataset(data, DEMO, workers=1, verbose=False)
    env = dict(os.environ, OMP_NUM_THREADS='1', **{DRILL_SAVE_PAUSE_ENV: str(args.save_pause)})
    n_epoch = 10_000  # never reached during the kills
    rows, failures = [], []
    previous_step = None
    left_files = left_bytes = 0
    started = time.monotonic()
    for k in range(args.kills):
        kind = 'save' if k % 2 else 'random'
        log = open(work / f'run{k:02d}.log', 'w')
        proc = subprocess.Popen(train_command(data, ckpt, n_epoch), stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=ROOT)
        t0 = time.monotonic()
        if kind == 'save':
            in_save = wait_for_save(exp, proc, nth=rng.randint(1, 4), timeout=300)
            time.sleep(rng.uniform(0.0, 0.8) if in_save else 0)
        else:
            wait_for_start(work / f'run{k:02d}.log', proc, timeout=300)
            time.sleep(rng.uniform(0.0, args.max_delay))
        exited = proc.poll()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.close()
        when = time.monotonic() - t0
        step, problems = check_labels(exp)
        leftovers = temporary_entries(exp)
        saving = bool(leftovers)  # the kill interrupted a write (a temporary file) or a publication (an old version)
        nbytes = sum(size_of(p) for p in leftovers)
        left_files += len(leftovers)
        left_bytes += nbytes
        sweep_stale_files(exp)  # what the next start does first (under the folder's lock)
        remaining = temporary_entries(exp)
        if remaining:
            problems.append(f'after the sweep: {", ".join(str(p.relative_to(exp)) for p in remaining)}')
        if exited is not None:
            problems.append(f'the training ended by itself (exit code {exited}) before the kill; see {log.name}')
        if previous_step is not None and (step is None or step < previous_step):
            problems.append(f"'latest' went back from step {previous_step} to {step}")
        previous_step = step if step is not None else previous_step
        rows.append((k + 1, kind, when, saving, step, len(leftovers), nbytes, problems))
        failures += [f'kill {k + 1}: {p}' for p in problems]
        print(f'kill {k + 1:2d} ({kind:6s}) at {when:5.1f} s  during save: {"yes" if saving else "no ":3s}  '
              f'latest step: {step if step is not None else "-":>4}  left: {len(leftovers)} file(s) '
              f'{nbytes / 1e6:6.2f} MB  {"OK" if not problems else "FAIL: " + "; ".join(problems)}', flush=True)

    # Finish: one more epoch after the one in progress; no iteration may be lost or repeated.
    step, _ = check_labels(exp)
    final_epoch = (step or 0) // STEPS_PER_EPOCH + 1
    done = subprocess.run(train_command(data, ckpt, final_epoch), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=dict(env, **{DRILL_SAVE_PAUSE_ENV: ''}), cwd=ROOT, text=True)
    final_step, problems = check_labels(exp)
    if done.returncode != 0:
        problems.append(f'the final run failed (exit code {done.returncode}):\n{done.stdout[-2000:]}')
    if final_step != final_epoch * STEPS_PER_EPOCH:
        problems.append(f'final step {final_step}, expected {final_epoch} epochs x {STEPS_PER_EPOCH} = '
                        f'{final_epoch * STEPS_PER_EPOCH}')
    if temporary_entries(exp):
        problems.append('temporary files after the final run')
    failures += [f'final run: {p}' for p in problems]

    during = sum(1 for r in rows if r[3])
    print(f'\n{len(rows)} kills ({sum(1 for r in rows if r[1] == "save")} aimed at saves; {during} interrupted a save '
          f'in progress) in {time.monotonic() - started:.0f} s; labels verified after every kill: '
          f'{sum(1 for r in rows if not r[7])}/{len(rows)} sound')
    print(f'left by the kills: {left_files} temporary file(s)/folder(s), {left_bytes / 1e6:.2f} MB in total; '
          f'after each start-up sweep: 0 expected, {sum(1 for r in rows if any("after the sweep" in p for p in r[7]))}'
          f' kill(s) with leftovers')
    print(f'final run: epoch {final_epoch}, step {final_step} (expected {final_epoch * STEPS_PER_EPOCH})')
    print('RESULT:', 'PASS' if not failures else f'FAIL ({len(failures)} problem(s))')
    for failure in failures:
        print('  ' + failure)
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not failures else 1


if __name__ == '__main__':
    sys.exit(main())
