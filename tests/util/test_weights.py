"""Atomic checkpoint writes and safe, error-naming checkpoint reads."""
import pytest
import torch

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
