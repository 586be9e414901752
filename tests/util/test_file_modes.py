"""Files the project writes get the permissions of an ordinary write (``0o666`` minus the process umask), not the
private ``0o600`` of a temporary file, so other users of a shared machine can read checkpoints, grids and metrics."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from util.io import save_json
from util.visualizer import save_visual_grid
from util.weights import atomic_torch_save


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o027], ids=['umask022', 'umask027'])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def test_json_grid_and_checkpoint_follow_the_umask(tmp_path, umask):
    expected = 0o666 & ~umask  # 0o644 under 022, 0o640 under 027
    json_path = save_json({'a': 1}, tmp_path / 'metrics.json')
    grid_path = save_visual_grid(tmp_path / 'vis' / 'grid.jpg', {'img': (torch.zeros(2, 3, 8, 8), 'rgb')})
    ckpt_path = atomic_torch_save({'w': torch.zeros(3)}, tmp_path / 'latest_checkpoint.pth')
    for path in (json_path, grid_path, grid_path.parent / 'vis_item_list.txt', ckpt_path):
        assert _mode(path) == expected, (path.name, oct(_mode(path)))
    assert expected in (0o644, 0o640)
