"""How a training run starts and stops: what it is (a fresh start or a resume), the records it leaves in the
experiment folder, the folder's lock, and the clean stop on SIGTERM/SIGINT.

The training loop calls :func:`begin_run` first; it runs before a dataset or a network exists, so a refused start
leaves the experiment folder as it was. Records of every start (``docs/checkpoints.md``):

* ``order_line.txt``: one line per start or resume, ``<ISO time>  <what>  <command line>``; earlier lines are kept;
* ``train_opt.json``: the options of the first run (what the checkpoints were trained with, read by the test
  scripts); each resume writes ``train_opt_resume<N>.json`` (N = 1, 2, ...) with the options it ran with;
* ``train_log.txt``: the same start/resume line with its command line, then the log.
"""
from __future__ import annotations

import datetime
import fcntl
import os
import shlex
import shutil
import signal
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from models.base_model import BaseModel
from options.base_options import Options, load_options_file, merge_resume_options, save_options
from training.checkpoint import (MANIFEST_NAME, TrainState, checkpoint_labels, has_checkpoints, read_manifest,
                                 resolve_label, save_snapshot, sweep_stale_files)
from util.io import atomic_write
from util.weights import checkpoint_path, safe_torch_load

ORDER_LINE_FILE = 'order_line.txt'
TRAIN_OPT_FILE = 'train_opt.json'
LOCK_FILE = 'training.lock'
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Command-line options that choose how a run starts; the printed resume command replaces them with --resume_train.
_START_FLAGS = ('--resume_train', '--auto_resume', '--overwrite')
_START_OPTIONS = ('--resume_label', '--last_epoch')

# Locks this process holds, by lock file: a library caller that starts a second run in the same folder after the
# first one raised (its RunStart never closed) takes the lock over instead of locking itself out.
_HELD_LOCKS: dict[Path, IO[str]] = {}


def _timestamp() -> str:
    return datetime.datetime.now().isoformat(timespec='seconds')


class ExperimentLock:
    """An exclusive ``flock`` on ``<expr_dir>/training.lock`` for the life of a run.

    The kernel releases it when the process ends, however it ends, so a killed run never leaves a stale lock. It
    makes the start-up sweep safe (no other run is writing temporary files in the folder) and refuses a second
    training in the same folder. The file holds the holder's pid, host and start time, for the error message.
    """

    def __init__(self, expr_dir: Path):
        expr_dir.mkdir(parents=True, exist_ok=True)
        self.path = (expr_dir / LOCK_FILE).resolve()
        stale = _HELD_LOCKS.pop(self.path, None)
        if stale is not None:
            stale.close()
        handle = open(self.path, 'a+', encoding='utf-8')
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or 'unknown process'
            handle.close()
            raise RuntimeError(f'another training ({holder}) is running in {expr_dir}: wait for it to end or stop '
                               f'it first (two runs writing one experiment folder would mix their checkpoints)')
        handle.seek(0)
        handle.truncate()
        handle.write(f'pid {os.getpid()} on {socket.gethostname()} since {_timestamp()}\n')
        handle.flush()
        _HELD_LOCKS[self.path] = handle

    def release(self) -> None:
        handle = _HELD_LOCKS.pop(self.path, None)
        if handle is not None:
            handle.close()


@dataclass
class RunStart:
    """What :func:`begin_run` decided.

    opt: the options the run trains with (on resume: the checkpoint's, with the allowed changes applied).
    resume_label: the label to resume from, or None for a fresh start.
    description: ``start`` or ``resume from <label> (epoch e, step s)``; with the command line it is the run's
        line in ``order_line.txt`` and ``train_log.txt``.
    notes: lines for the training log (sweep results, changed options), printed when the log starts.
    """
    opt: Options
    resume_label: str | None
    description: str
    notes: list[str] = field(default_factory=list)
    stop_signal: int | None = None
    _lock: ExperimentLock | None = None
    _previous_handlers: dict[int, Any] = field(default_factory=dict)

    @property
    def log_lines(self) -> list[str]:
        return [f'{self.description}: {shlex.join(self.opt.command_line)}', *self.notes]

    # ------------------------------------------------------------------------------------------------- signals
    def install_stop_handlers(self) -> None:
        """SIGTERM/SIGINT set ``stop_signal``; the loop then finishes its step, saves ``latest`` and exits
        (:meth:`stop_if_requested`). A second signal exits at once (every save is atomic, so that is safe too)."""
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be installed from the main thread
        for signum in STOP_SIGNALS:
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame) -> None:
        if self.stop_signal is not None:
            raise SystemExit(128 + signum)
        self.stop_signal = signum
        print(f'\n{signal.Signals(signum).name} received: finishing the current step, then saving \'latest\' '
              f'(send it again to stop at once)', flush=True)

    def stop_if_requested(self, model: BaseModel, state: TrainState, saved: bool = False) -> None:
        """After a step (or after the epoch's saves, ``saved=True``): when a stop signal came, save ``latest``,
        print the resume command and exit with ``128 + signal number``."""
        if self.stop_signal is None:
            return
        if not saved:
            save_snapshot(model, self.opt, 'latest', state)
        name = signal.Signals(self.stop_signal).name
        where = 'done' if state.epoch_done else f'{state.batches_done} iterations done'
        print(f"stopped by {name} at epoch {state.epoch} ({where}), step {state.step}: saved 'latest' in "
              f"{self.opt.expr_dir}\nresume with:\n  {resume_command(self.opt)}", flush=True)
        raise SystemExit(128 + self.stop_signal)

    def close(self) -> None:
        """Restore the signal handlers and release the folder's lock (also after an error)."""
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def resume_command(opt: Options) -> str:
    """The command that continues this run from ``latest``: the original command without its start flags, plus
    ``--resume_train``."""
    args, skip = [], False
    for arg in opt.command_line[1:]:
        if skip:
            skip = False
            continue
        if arg in _START_FLAGS or arg.split('=', 1)[0] in _START_OPTIONS:
            skip = arg in _START_OPTIONS
            continue
        args.append(arg)
    return shlex.join(['python', opt.command_line[0], *args, '--resume_train'])


def append_order_line(opt: Options, description: str) -> None:
    """Add ``<time>  <description>  <command>`` to ``order_line.txt`` (the earlier lines are kept)."""
    path = opt.expr_dir / ORDER_LINE_FILE
    previous = path.read_text(encoding='utf-8') if path.is_file() else ''
    if previous and not previous.endswith('\n'):
        previous += '\n'  # a file written by the original code holds one line without a newline
    line = f'{_timestamp()}  {description}  {shlex.join(opt.command_line)}\n'
    atomic_write(path, lambda f: f.write(previous + line), mode='w')


def _resume_label(opt: Options) -> str | None:
    """The label this start resumes from: ``--resume_label``, else ``--last_epoch`` when typed, else ``latest``;
    with ``--auto_resume`` ``latest`` when it exists; None for a fresh start."""
    if opt.resume_train:
        if opt.resume_label:
            return str(opt.resume_label)
        return str(opt.last_epoch) if 'last_epoch' in opt.explicit_keys else 'latest'
    if opt.auto_resume and 'latest' in checkpoint_labels(opt.expr_dir)['complete']:
        return 'latest'
    return None


def _missing_label_message(expr_dir: Path, label: str) -> str:
    head = f'cannot resume: no checkpoint {label!r} in {expr_dir} ({checkpoint_path(expr_dir, label)} not found)'
    if not expr_dir.is_dir():
        return f'{head}; the folder does not exist: check --id and --checkpoints_dir'
    labels = checkpoint_labels(expr_dir)
    hints = []
    if labels['complete']:
        first = labels['complete'][0]
        option = '' if first == 'latest' else f' --resume_label {first}'
        hints.append(f'complete checkpoints there: {", ".join(labels["complete"])} '
                     f'(resume with --resume_train{option})')
    if labels['original']:
        hints.append(f'original-format epoch files: {", ".join(labels["original"])} (resume with --resume_train '
                     f'--last_epoch {labels["original"][-1]})')
    if not hints:
        hints.append('the folder holds no checkpoint: start without --resume_train (--auto_resume resumes only when '
                     'a checkpoint exists)')
    return f'{head}; ' + '; '.join(hints)


def _existing_run_message(expr_dir: Path) -> str:
    labels = checkpoint_labels(expr_dir)
    found = labels['complete'] + labels['original']
    listing = f' (labels: {", ".join(found)})' if found else ''
    return (f'{expr_dir} already holds checkpoints of an earlier run{listing}. To continue it pass --resume_train '
            f'(from \'latest\') or --auto_resume; to discard it and start again pass --overwrite; or choose another '
            f'--id')


def _label_summary(expr_dir: Path, label: str) -> tuple[dict[str, Any], Path, str]:
    """``(saved options, their file, 'epoch e, step s')`` of a label, without loading its networks when it has a
    manifest. The original's epoch files store no options: then the folder's ``train_opt.json`` (or nothing)."""
    folder = resolve_label(expr_dir, label)
    if folder is not None:
        manifest = read_manifest(folder)
        return manifest['options'], folder / MANIFEST_NAME, f'epoch {manifest["epoch"]}, step {manifest["step"]}'
    path = checkpoint_path(expr_dir, label)
    if path.is_file():
        ckpt = safe_torch_load(path)
        state = ckpt.get('state', {})
        return ckpt.get('options', {}), path, f'epoch {state.get("epoch")}, step {state.get("step")}'
    opt_file = expr_dir / TRAIN_OPT_FILE
    saved = load_options_file(opt_file) if opt_file.is_file() else {}
    return saved, opt_file, f'original-format epoch {label}'


def _clear_experiment(expr_dir: Path) -> int:
    """Delete the contents of an experiment folder (for ``--overwrite``), except the lock; returns the count."""
    count = 0
    for entry in expr_dir.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        count += 1
    return count


def begin_run(opt: Options, write: bool = True) -> RunStart:
    """Decide what this run is, check it, and record it in the experiment folder.

    * resume (``--resume_train``, or ``--auto_resume`` with a ``latest``): the label must exist (else the error
      lists the labels that do); the options become the checkpoint's with the command line's allowed changes
      (:func:`options.base_options.merge_resume_options`; a refused change raises before anything is written);
    * fresh start: refused (``FileExistsError``) when the folder holds checkpoints, unless ``--overwrite``, which
      deletes the folder's contents first.

    With ``write`` (the process that owns the folder; other ranks of a distributed run pass False) it also takes the
    folder's lock, sweeps what interrupted runs left (:func:`training.checkpoint.sweep_stale_files`), writes
    ``train_opt.json`` (fresh) or ``train_opt_resume<N>.json`` (resume) and appends to ``order_line.txt``; and it
    installs the SIGTERM/SIGINT handlers. Call :meth:`RunStart.close` when the run ends.
    """
    expr_dir = opt.expr_dir
    label = _resume_label(opt)
    notes: list[str] = []
    if label is not None:
        labels = checkpoint_labels(expr_dir)
        if label not in labels['complete'] and label not in labels['original']:
            raise FileNotFoundError(_missing_label_message(expr_dir, label))
        saved, source, where = _label_summary(expr_dir, label)
        opt, changes = merge_resume_options(opt, saved, source, label)
        if changes:
            notes.append(f'changed on resume: {", ".join(changes)}')
        description = f'resume from {label} ({where})'
    else:
        if has_checkpoints(expr_dir) and not opt.overwrite:
            raise FileExistsError(_existing_run_message(expr_dir))
        description = 'start'
    run = RunStart(opt=opt, resume_label=label, description=description, notes=notes)
    if write:
        run._lock = ExperimentLock(expr_dir)
        try:
            if label is None and opt.overwrite and has_checkpoints(expr_dir):
                count = _clear_experiment(expr_dir)
                run.notes.append(f'--overwrite: deleted the {count} entries of the earlier run in {expr_dir}')
            removed = sweep_stale_files(expr_dir)
            if removed:
                run.notes.append(f'removed {len(removed)} temporary or unreferenced file(s) left by an interrupted '
                                 f'run: {", ".join(p.name for p in removed[:5])}{" ..." if len(removed) > 5 else ""}')
            if label is None:
                save_options(opt, expr_dir / TRAIN_OPT_FILE)
            else:
                n = 1 + sum(1 for _ in expr_dir.glob('train_opt_resume*.json'))
                save_options(opt, expr_dir / f'train_opt_resume{n}.json')
            append_order_line(opt, description)
        except BaseException:
            run.close()
            raise
    run.install_stop_handlers()
    return run
