"""Training log: the original's text lines, plus TensorBoard scalars and images."""
from __future__ import annotations

import datetime
import sys
import time
from pathlib import Path
from typing import Mapping

import torch
from tqdm import tqdm


def format_line(info: Mapping[str, object], values: Mapping[str, float]) -> str:
    """``[key: value  key: value]  name: 0.1234  name: 0.5678`` as in the original's logs."""
    head = '  '.join(f'{k}: {v}' for k, v in info.items())
    tail = '  '.join(f'{k}: {v:.4f}' for k, v in values.items())
    return f'[{head}]  {tail}' if tail else f'[{head}]'


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


class ProgressClock:
    """Elapsed time, speed and ETA of a run, for log lines when the progress bar is off (no TTY: batch jobs, logs
    redirected to a file).

    Counts the training iterations run since this process started (``first_step`` is where it resumed) against
    ``last_step``; the ETA is the remaining iterations at the average speed so far (validation and visualisation
    time is in the average of later epochs, not predicted).
    """

    def __init__(self, first_step: int, last_step: int):
        self.first_step, self.last_step = first_step, last_step
        self.start = time.monotonic()

    def fields(self, step: int) -> dict[str, str]:
        elapsed = time.monotonic() - self.start
        done = step - self.first_step
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = _duration(max(self.last_step - step, 0) / rate) if rate > 0 else '?'
        return {'elapsed': _duration(elapsed), 'it/s': f'{rate:.2f}', 'eta': eta}


class TrainLogger:
    """Writes ``train_log.txt`` (overwritten at start, or appended to on resume) and TensorBoard events.

    Args:
        expr_dir: experiment folder ``checkpoints/<id>``.
        tensorboard: also write TensorBoard events under ``<expr_dir>/tensorboard``.
        resume: append to an existing log instead of starting a new one.
    """

    def __init__(self, expr_dir: str | Path, tensorboard: bool = True, resume: bool = False):
        self.log_path = Path(expr_dir) / 'train_log.txt'
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.log_path, 'a' if resume else 'w', encoding='utf-8')
        self._write(f'{datetime.datetime.now()}')
        self._write(f'pytorch version: {torch.__version__}')
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imported lazily: it is slow to import
            self.writer = SummaryWriter(log_dir=str(Path(expr_dir) / 'tensorboard'))

    def _write(self, line: str) -> None:
        self._file.write(line + '\n')
        self._file.flush()

    def log(self, info: Mapping[str, object], values: Mapping[str, float], *, step: int | None = None,
            tag: str = 'train', echo: bool = True, progress: Mapping[str, str] | None = None) -> str:
        """Write (and echo) one log line; ``progress`` (``ProgressClock.fields``) is appended as
        ``  [elapsed: ...  it/s: ...  eta: ...]`` for runs without a progress bar."""
        line = format_line(info, values)
        if progress:
            line += '  [' + '  '.join(f'{k}: {v}' for k, v in progress.items()) + ']'
        self._write(line)
        if echo:
            tqdm.write(line, file=sys.stdout)  # keeps progress bars intact
        if self.writer is not None and step is not None:
            for k, v in values.items():
                self.writer.add_scalar(f'{tag}/{k}', v, step)
        return line

    def message(self, text: str, echo: bool = True) -> None:
        self._write(text)
        if echo:
            print(text)

    def image(self, tag: str, image_path: str | Path, step: int) -> None:
        """Add a saved visual grid (JPEG) to TensorBoard."""
        if self.writer is None:
            return
        import numpy as np
        from PIL import Image
        img = np.asarray(Image.open(image_path).convert('RGB'))
        self.writer.add_image(tag, img, step, dataformats='HWC')

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self._file.close()
