"""Snapshots of a training run: the original's per-network files plus one complete checkpoint per label, published
together so that every file of a label always describes the same step.

Layout of an experiment folder (``docs/checkpoints.md`` explains the design)::

    snapshots/latest.step412.k2x9af/        one folder per saved version, never modified after publication
        latest_net_netG.pth                 the authors' format: a state_dict of CPU tensors
        latest_net_netD.pth
        latest_checkpoint.pth               ours: networks, optimizers, schedulers, TrainState, options, torch RNG
        manifest.json                       written last: label, step, epoch, sha256 and size of every file, options
    latest -> snapshots/latest.step412.k2x9af          the label: a symbolic link, replaced in one atomic rename
    latest_net_netG.pth -> latest/latest_net_netG.pth  the original file names, resolved through the label link
    latest_checkpoint.pth -> latest/latest_checkpoint.pth

A save writes all files into a temporary folder (``snapshots/.latest.step412.k2x9af.tmp``), fsyncs them, renames the
folder to its final name and then swaps the label link with one ``rename``. A reader therefore sees either the
previous version of the label or the new one, never a mix: ``latest_net_*.pth`` and ``latest_checkpoint.pth`` both
resolve through ``latest``. A kill at any moment leaves at most a temporary folder or an unreferenced old version,
which :func:`sweep_stale_files` removes at the next start-up. Folders written by the original code (plain
``<label>_net_<name>.pth`` / ``<label>_optim_<name>.pth`` files) and by earlier versions of this project (a plain
``<label>_checkpoint.pth``) are still read.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.base_model import BaseModel
from options.base_options import Options
from util.weights import (checkpoint_path, cpu_state_dict, load_network, network_path, optimizer_path,
                          safe_torch_load)

CHECKPOINT_FORMAT = 'intrinsic-flow-checkpoint/1'
SNAPSHOT_FORMAT = 'intrinsic-flow-snapshot/1'
SNAPSHOTS_DIR = 'snapshots'
MANIFEST_NAME = 'manifest.json'
# Seconds to pause after each file of a snapshot is written: widens the window of the kill drill
# (benchmarks/kill_drill.py); unset in normal use.
DRILL_SAVE_PAUSE_ENV = 'INTRINSIC_FLOW_DRILL_SAVE_PAUSE'
# Temporary files and folders: the atomic writer's '.<stem>.<random>.tmp<suffix>', the snapshot's
# '.<label>.step<N>.<random>.tmp' and the label link's '.<label>.tmp<random>'.
_TEMP_NAME = re.compile(r'^\..*\.tmp')
_LABEL_FILE = re.compile(r'^(?P<label>[^.].*?)_(?:net_.+|optim_.+|checkpoint)\.pth$')


class SnapshotError(RuntimeError):
    """A label's files are missing, incomplete or do not match their manifest."""


class NonFiniteModelError(RuntimeError):
    """A network holds NaN or infinite values; it is not saved."""


@dataclass
class TrainState:
    """Where training stands; saved in every complete checkpoint.

    ``epoch`` is the 1-based epoch in progress (or just finished when ``epoch_done``); ``batches_done`` counts the
    iterations of that epoch already run, so a checkpoint taken mid-epoch resumes at the next batch.
    ``skipped_steps`` counts the updates skipped for a non-finite loss (``--nan_policy skip``).
    """
    epoch: int = 0
    step: int = 0
    batches_done: int = 0
    epoch_done: bool = True
    best_metric: float | None = None
    best_epoch: int | None = None
    skipped_steps: int = 0


# ------------------------------------------------------------------------------------------------------- saving

def check_finite(model: BaseModel, label: str | int, step: int) -> None:
    """Raise :class:`NonFiniteModelError` if any floating tensor of any network is NaN or infinite."""
    problems = []
    for name, net in model.nets.items():
        bad = [key for key, t in net.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
        if bad:
            shown = ', '.join(bad[:3]) + (f' ... (+{len(bad) - 3} more)' if len(bad) > 3 else '')
            problems.append(f'{name}: {len(bad)} non-finite tensor(s) ({shown})')
    if problems:
        raise NonFiniteModelError(
            f'refusing to save label {label!r} at step {step}: ' + '; '.join(problems) +
            '. Training diverged; the labels saved before are kept (continue from one with --resume_train '
            '--nan_policy skip to skip the updates of non-finite losses, or start a new --id with a lower --lr)')


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _write_file(path: Path, write) -> None:
    with open(path, 'wb') as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    pause = os.environ.get(DRILL_SAVE_PAUSE_ENV)
    if pause:
        time.sleep(float(pause))


def _label_entries(expr_dir: Path, label: str) -> list[Path]:
    """Top-level ``<label>_net_*.pth`` / ``<label>_optim_*.pth`` / ``<label>_checkpoint.pth`` entries."""
    out = []
    for entry in expr_dir.iterdir():
        match = _LABEL_FILE.match(entry.name)
        if match and match.group('label') == label:
            out.append(entry)
    return out


def _link_label_files(expr_dir: Path, label: str, names: list[str]) -> None:
    """Make the top-level original file names point through the label link; drop the label's other entries."""
    for name in names:
        link, target = expr_dir / name, os.path.join(label, name)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        tmp = expr_dir / f'.{name}.tmp{os.getpid()}'
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        os.replace(tmp, link)  # also replaces a plain file of an older layout
    for entry in _label_entries(expr_dir, label):
        if entry.name not in names:
            entry.unlink()  # a file of another step (e.g. the original's latest_optim_*.pth, a network not saved now)


def save_snapshot(model: BaseModel, opt: Options, label: str | int, state: TrainState) -> Path:
    """Write the label's files (networks of ``model.networks_to_save()`` in the authors' format, then the complete
    checkpoint, then the manifest) into a new folder and publish it as ``label`` in one atomic step.

    Refuses (:class:`NonFiniteModelError`) when a network holds a non-finite value; nothing is written then.
    Returns the published folder.
    """
    label = str(label)
    expr_dir = opt.expr_dir
    check_finite(model, label, state.step)
    snapshots = expr_dir / SNAPSHOTS_DIR
    snapshots.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=snapshots, prefix=f'.{label}.step{state.step}.', suffix='.tmp'))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes a private folder; others may read checkpoints
        files: list[str] = []
        for name, net in model.networks_to_save().items():
            files.append(network_path('', label, name).name)
            sd = cpu_state_dict(net)
            _write_file(tmp / files[-1], lambda f, sd=sd: torch.save(sd, f))
        files.append(checkpoint_path('', label).name)
        complete = {
            'format': CHECKPOINT_FORMAT,
            'model': model.training_state(),
            'state': dataclasses.asdict(state),
            'options': opt.to_dict(),
            'torch_rng': torch.get_rng_state(),
        }
        _write_file(tmp / files[-1], lambda f: torch.save(complete, f))
        manifest = {
            'format': SNAPSHOT_FORMAT, 'label': label, 'step': state.step, 'epoch': state.epoch,
            'epoch_done': state.epoch_done, 'created': datetime.datetime.now().isoformat(timespec='seconds'),
            'files': {name: {'sha256': _sha256(tmp / name), 'bytes': (tmp / name).stat().st_size} for name in files},
            'options': opt.to_dict(),
        }
        text = json.dumps(manifest, indent=1, sort_keys=True) + '\n'
        _write_file(tmp / MANIFEST_NAME, lambda f: f.write(text.encode('utf-8')))
        _fsync_dir(tmp)
        final = snapshots / tmp.name[1:-len('.tmp')]
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(snapshots)
    _publish(expr_dir, label, final, files)
    return final


def _publish(expr_dir: Path, label: str, folder: Path, files: list[str]) -> None:
    """Point the label link at ``folder`` (one atomic rename), then tidy up: links of the original file names, the
    previous version. A kill after the rename leaves only what :func:`sweep_stale_files` repairs."""
    link = expr_dir / label
    if link.exists() and not link.is_symlink():
        raise SnapshotError(f'cannot publish label {label!r}: {link} exists and is not a label link; move it away')
    previous = resolve_label(expr_dir, label) if link.is_symlink() else None
    tmp = expr_dir / f'.{label}.tmp{os.getpid()}'
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(folder, expr_dir), tmp)
    os.replace(tmp, link)
    _fsync_dir(expr_dir)
    _link_label_files(expr_dir, label, files)
    if previous is not None and previous.exists() and previous != folder.resolve():
        shutil.rmtree(previous, ignore_errors=True)


# ------------------------------------------------------------------------------------------------------ reading

def resolve_label(expr_dir: str | os.PathLike, label: str | int) -> Path | None:
    """The snapshot folder ``label`` points to, or None when the label is not a link (an older layout, or absent)."""
    link = Path(expr_dir) / str(label)
    if not link.is_symlink():
        return None
    return (link.parent / os.readlink(link)).resolve()


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise SnapshotError(f'{folder} has no {MANIFEST_NAME}: not a complete snapshot')
    try:
        manifest = json.loads(path.read_text(encoding='utf-8'))
    except json.JSONDecodeError as exc:
        raise SnapshotError(f'{path} is not valid JSON: {exc}') from exc
    if not isinstance(manifest, dict) or manifest.get('format') != SNAPSHOT_FORMAT:
        raise SnapshotError(f'{path} is not a snapshot manifest (expected format {SNAPSHOT_FORMAT!r})')
    return manifest


def verify_snapshot(expr_dir: str | os.PathLike, label: str | int, deep: bool = False) -> dict[str, Any]:
    """Check that every file of a published label matches its manifest (size and sha256) and that the original file
    names resolve into the label's folder; returns the manifest.

    deep: also load the files and check that the complete checkpoint holds the manifest's step and that every
    per-network file equals the checkpoint's copy of that network, tensor by tensor.
    """
    expr_dir, label = Path(expr_dir), str(label)
    folder = resolve_label(expr_dir, label)
    if folder is None:
        raise SnapshotError(f'{expr_dir / label} is not a label link (no snapshot published as {label!r})')
    if not folder.is_dir():
        raise SnapshotError(f'label {label!r} points to {folder}, which does not exist')
    manifest = read_manifest(folder)
    for name, meta in manifest['files'].items():
        path = folder / name
        if not path.is_file():
            raise SnapshotError(f'{path} is listed in the manifest of label {label!r} but missing')
        if path.stat().st_size != meta['bytes'] or _sha256(path) != meta['sha256']:
            raise SnapshotError(f'{path} does not match the sha256/size in {folder / MANIFEST_NAME}: the file was '
                                f'changed after the snapshot was written')
        top = expr_dir / name
        if os.path.lexists(top) and top.resolve() != path.resolve():
            raise SnapshotError(f'{top} does not resolve into the folder of label {label!r} ({folder})')
    if deep:
        ckpt = safe_torch_load(folder / checkpoint_path('', label).name)
        if ckpt['state']['step'] != manifest['step']:
            raise SnapshotError(f'{folder}: checkpoint step {ckpt["state"]["step"]} != manifest step '
                                f'{manifest["step"]}')
        for name in manifest['files']:
            match = re.fullmatch(re.escape(label) + r'_net_(.+)\.pth', name)
            if not match:
                continue
            net = safe_torch_load(folder / name, 'network')
            saved = ckpt['model']['nets'][match.group(1)]
            if net.keys() != saved.keys() or not all(torch.equal(net[k], saved[k]) for k in net):
                raise SnapshotError(f'{folder / name} differs from the network in the complete checkpoint')
    return manifest


def checkpoint_labels(expr_dir: str | os.PathLike) -> dict[str, list[str]]:
    """Labels found in an experiment folder: ``complete`` (a complete checkpoint, resumable with ``--resume_label``)
    and ``original`` (the original code's integer-epoch network + optimizer files, resumable with
    ``--last_epoch``), each sorted with ``latest`` and ``best`` first."""
    expr_dir = Path(expr_dir)
    complete, original = set(), set()
    if expr_dir.is_dir():
        for entry in expr_dir.iterdir():
            match = _LABEL_FILE.match(entry.name)
            if not match or not entry.is_file():
                continue
            label = match.group('label')
            if entry.name == f'{label}_checkpoint.pth':
                complete.add(label)
            elif entry.name.startswith(f'{label}_optim_') and label.isdigit():
                original.add(label)
    return {'complete': sorted(complete, key=_label_order), 'original': sorted(original - complete, key=_label_order)}


def _label_order(label: str) -> tuple:
    """``latest``, ``best``, other names, then epochs in numeric order."""
    return (label not in ('latest', 'best'), label != 'latest', label.isdigit(), int(label) if label.isdigit() else 0,
            label)


def has_checkpoints(expr_dir: str | os.PathLike) -> bool:
    """Whether the folder holds any saved network or checkpoint (ours or the original's)."""
    expr_dir = Path(expr_dir)
    return expr_dir.is_dir() and any(_LABEL_FILE.match(p.name) for p in expr_dir.iterdir())


def saved_options(expr_dir: str | os.PathLike, label: str | int) -> tuple[dict[str, Any], Path] | None:
    """The options a label was saved with, and the file they come from: the manifest of a published label, the
    complete checkpoint of an older layout; None for the original's files (they store no options)."""
    expr_dir = Path(expr_dir)
    folder = resolve_label(expr_dir, label)
    if folder is not None:
        return read_manifest(folder)['options'], folder / MANIFEST_NAME
    path = checkpoint_path(expr_dir, label)
    if path.is_file():
        return safe_torch_load(path).get('options', {}), path
    return None


def load_snapshot(model: BaseModel, opt: Options, label: str | int, steps_per_epoch: int) -> TrainState:
    """Resume from ``label``: a published snapshot (verified against its manifest), a plain complete checkpoint of
    an older layout, or an original-format folder (integer epoch: net + optim files)."""
    folder = resolve_label(opt.expr_dir, label)
    if folder is not None:
        verify_snapshot(opt.expr_dir, label)
        ckpt_file = folder / checkpoint_path('', label).name
    else:
        ckpt_file = checkpoint_path(opt.expr_dir, label)
    if ckpt_file.is_file():
        ckpt = safe_torch_load(ckpt_file)
        if ckpt.get('format') != CHECKPOINT_FORMAT:
            raise RuntimeError(f'{ckpt_file} is not a complete intrinsic-flow checkpoint '
                               f'(format {ckpt.get("format")!r}, expected {CHECKPOINT_FORMAT!r})')
        model.load_training_state(ckpt['model'])
        torch.set_rng_state(ckpt['torch_rng'])
        return TrainState(**ckpt['state'])
    # The original's layout: <epoch>_net_<name>.pth and <epoch>_optim_<name>.pth, integer epochs only.
    if not str(label).isdigit():
        raise FileNotFoundError(f'cannot resume: {ckpt_file} not found (the original format only has integer '
                                f'epoch labels; pass --resume_label <epoch> or check --id)')
    for name, net in model.nets.items():
        path = network_path(opt.expr_dir, label, name)
        # The original writes netD (and optim_D) only once the GAN term is active; before that it has no file.
        if name == 'netD' and not path.is_file():
            continue
        load_network(net, path)
    for name, optim in model.optimizers.items():
        path = optimizer_path(opt.expr_dir, label, name)
        if path.is_file():
            optim.load_state_dict(safe_torch_load(path, 'optimizer'))
        elif name != 'optim_D':  # the original writes optim_D only once the GAN term is active
            raise FileNotFoundError(f'cannot resume: optimizer file {path} not found')
    epoch = int(label)
    return TrainState(epoch=epoch, step=steps_per_epoch * epoch, batches_done=0, epoch_done=True)


# ------------------------------------------------------------------------------------------------------ start-up

def sweep_stale_files(expr_dir: str | os.PathLike) -> list[Path]:
    """Remove what interrupted saves left in an experiment folder; returns the removed paths.

    Removed: temporary files and folders (``.*.tmp*``) in the folder, ``vis/`` and ``snapshots/``; snapshot
    folders no label points to (a version whose replacement was published, or one published by no label).
    Repaired: the original file names of every label link. Call it only while no other process writes the folder
    (the training run holds the folder's lock, see ``training/run_state.py``).
    """
    expr_dir = Path(expr_dir)
    if not expr_dir.is_dir():
        return []
    removed: list[Path] = []
    for folder in (expr_dir, expr_dir / 'vis', expr_dir / SNAPSHOTS_DIR):
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if _TEMP_NAME.match(entry.name):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed.append(entry)
    snapshots = expr_dir / SNAPSHOTS_DIR
    links = {entry.name: resolve_label(expr_dir, entry.name) for entry in expr_dir.iterdir() if entry.is_symlink()
             and os.readlink(entry).startswith(SNAPSHOTS_DIR + os.sep)}
    if snapshots.is_dir():
        referenced = {target for target in links.values() if target is not None}
        for entry in sorted(snapshots.iterdir()):
            if entry.resolve() not in referenced:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                removed.append(entry)
    for label, folder in links.items():
        if folder is not None and (folder / MANIFEST_NAME).is_file():
            _link_label_files(expr_dir, label, list(read_manifest(folder)['files']))
    return removed
