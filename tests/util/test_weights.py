"""util.weights: atomic checkpoint writes and safe, error-naming checkpoint reads."""
from __future__ import annotations

import errno

import pytest
import torch

import util.weights
from util.weights import atomic_torch_save, safe_torch_load


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / 'latest_checkpoint.pth'
    atomic_torch_save({'w': torch.arange(4.0)}, path)

    real_save = torch.save

    def crash_midway(obj, f, *args, **kwargs):
        f.write(b'partial garbage')  # some bytes reach the temporary file, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, 'save', crash_midway)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({'w': torch.zeros(4)}, path)
    monkeypatch.setattr(torch, 'save', real_save)

    assert torch.equal(safe_torch_load(path)['w'], torch.arange(4.0))
    assert [p.name for p in tmp_path.iterdir()] == ['latest_checkpoint.pth']  # no temporary file left behind


def test_truncated_checkpoint_error_names_the_file(tmp_path):
    path = tmp_path / 'best_checkpoint.pth'
    atomic_torch_save({'w': torch.randn(100)}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(RuntimeError, match='best_checkpoint.pth'):
        safe_torch_load(path)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        safe_torch_load(tmp_path / 'missing.pth')


@pytest.mark.parametrize('capacity', [0, 1000])
def test_full_disk_during_torch_save_names_the_file_and_cause(tmp_path, disk_fills_up, capacity):
    # torch.save turns the ENOSPC of the file write into "[enforce fail at inline_container.cc] ..." without a path.
    path = tmp_path / 'latest_net_netG.pth'
    atomic_torch_save({'w': torch.arange(3.0)}, path)
    disk_fills_up(util.weights, capacity)
    with pytest.raises(OSError, match=rf'{path}.*No space left on device') as info:
        atomic_torch_save({'w': torch.zeros(100_000)}, path)
    assert info.value.errno == errno.ENOSPC
    assert 'inline_container' not in str(info.value)
    assert torch.equal(safe_torch_load(path)['w'], torch.arange(3.0))  # the previous file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ['latest_net_netG.pth']


def test_other_torch_save_failures_name_the_file(tmp_path, monkeypatch):
    def broken_save(obj, f):
        raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598')
    monkeypatch.setattr(util.weights.torch, 'save', broken_save)
    path = tmp_path / 'x.pth'
    with pytest.raises(OSError, match=rf'{path}.*inline_container.*free on'):
        atomic_torch_save({'w': torch.zeros(3)}, path)
    assert list(tmp_path.iterdir()) == []
