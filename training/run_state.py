"""How a training run starts and stops: what it is (a fresh start or a resume), the records it leaves in the
experiment folder, and the clean stop on SIGTERM/SIGINT.

The training loop calls :func:`begin_run` first; everything here happens before a dataset or a network exists, so
a refused start leaves the experiment folder as it was.
"""
from __future__ import annotations

import datetime
import shlex
from dataclasses import dataclass

from options.base_options import Options, save_options
from util.io import atomic_write

ORDER_LINE_FILE = 'order_line.txt'
TRAIN_OPT_FILE = 'train_opt.json'


@dataclass
class RunStart:
    """What :func:`begin_run` decided. ``opt`` is the options the run trains with."""
    opt: Options

    def close(self) -> None:
        """Release what the run holds (called when training ends, also on errors)."""


def _timestamp() -> str:
    return datetime.datetime.now().isoformat(timespec='seconds')


def append_order_line(opt: Options, kind: str) -> None:
    """Add one line ``<time>  <kind>  <command>`` to ``order_line.txt`` (the earlier lines are kept)."""
    path = opt.expr_dir / ORDER_LINE_FILE
    previous = path.read_text(encoding='utf-8') if path.is_file() else ''
    if previous and not previous.endswith('\n'):
        previous += '\n'  # a file written by the original code holds one line without a newline
    line = f'{_timestamp()}  {kind}  {shlex.join(opt.command_line)}\n'
    atomic_write(path, lambda f: f.write(previous + line), mode='w')


def begin_run(opt: Options, write: bool = True) -> RunStart:
    """Decide what this run is and record it in the experiment folder (when ``write``)."""
    if write:
        save_options(opt, opt.expr_dir / TRAIN_OPT_FILE)
        append_order_line(opt, 'start')
    return RunStart(opt=opt)
