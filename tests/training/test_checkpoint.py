"""Snapshots: every file of a label describes one step, a kill during a save leaves the previous label intact, the
start-up sweep removes what interrupted saves left behind, and a non-finite model is never saved."""
from __future__ import annotations

import os
import stat

import pytest
import torch

from training import checkpoint
from training.checkpoint import (NonFiniteModelError, TrainState, load_snapshot, save_snapshot, sweep_stale_files,
                                 verify_snapshot)
from util.weights import safe_torch_load


def _perturb(model, value):
    with torch.no_grad():
        for p in model.netF.parameters():
            p.fill_(value)


def _net_equals_checkpoint(exp, label) -> bool:
    net = safe_torch_load(exp / f'{label}_net_netF.pth')
    ckpt = safe_torch_load(exp / f'{label}_checkpoint.pth')
    return all(torch.equal(net[k], ckpt['model']['nets']['netF'][k]) for k in net)


def test_a_label_is_published_as_one_folder(tiny_model):
    model, opt = tiny_model
    exp = opt.expr_dir
    save_snapshot(model, opt, 'latest', TrainState(epoch=1, step=1, batches_done=1, epoch_done=False))
    _perturb(model, 0.5)
    save_snapshot(model, opt, 'latest', TrainState(epoch=1, step=2, batches_done=2, epoch_done=False))
    # The original file names stay loadable and resolve into the one folder the label points to.
    assert (exp / 'latest').is_symlink()
    folder = (exp / 'latest').resolve()
    assert folder.parent == (exp / 'snapshots').resolve()
    for name in ('latest_net_netF.pth', 'latest_checkpoint.pth'):
        assert (exp / name).resolve() == folder / name
    manifest = verify_snapshot(exp, 'latest', deep=True)
    assert manifest['step'] == 2 and set(manifest['files']) == {'latest_net_netF.pth', 'latest_checkpoint.pth'}
    assert _net_equals_checkpoint(exp, 'latest')
    assert safe_torch_load(exp / 'latest_net_netF.pth')['pre_conv.0.0.weight'].eq(0.5).all()
    # The previous version is gone; other labels are separate folders.
    save_snapshot(model, opt, 3, TrainState(epoch=3, step=2))
    assert sorted(p.name.split('.')[0] for p in (exp / 'snapshots').iterdir()) == ['3', 'latest']
    assert verify_snapshot(exp, 3)['step'] == 2 and (exp / '3_net_netF.pth').is_file()


def test_a_kill_during_a_save_leaves_the_previous_label_whole(tiny_model, monkeypatch):
    model, opt = tiny_model
    exp = opt.expr_dir
    save_snapshot(model, opt, 'latest', TrainState(epoch=1, step=1))
    _perturb(model, 0.25)
    real_save = torch.save
    calls = {'n': 0}

    def killed_on_second_file(obj, f, *args, **kwargs):
        calls['n'] += 1
        if calls['n'] == 2:
            raise KeyboardInterrupt  # the network file of step 2 is written, the complete checkpoint is not
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, 'save', killed_on_second_file)
    with pytest.raises(KeyboardInterrupt):
        save_snapshot(model, opt, 'latest', TrainState(epoch=1, step=2))
    monkeypatch.setattr(torch, 'save', real_save)
    assert _net_equals_checkpoint(exp, 'latest')
    assert safe_torch_load(exp / 'latest_checkpoint.pth')['state']['step'] == 1
    assert verify_snapshot(exp, 'latest', deep=True)['step'] == 1


def test_the_sweep_removes_what_interrupted_saves_left(tiny_model):
    model, opt = tiny_model
    exp = opt.expr_dir
    save_snapshot(model, opt, 'latest', TrainState(epoch=1, step=1))
    stale = [exp / '.latest_checkpoint.k2j3.tmp.pth', exp / 'vis' / '.train_epoch1.x1.tmp.jpg',
             exp / 'snapshots' / '.latest.step2.abc.tmp', exp / 'snapshots' / 'latest.step0.old', exp / '.latest.tmp9']
    stale[1].parent.mkdir()
    for path in stale[:2]:
        path.write_bytes(b'partial')
    for path in stale[2:4]:
        path.mkdir()
        (path / 'latest_net_netF.pth').write_bytes(b'x' * 100)
    os.symlink('snapshots/latest.step0.old', stale[4])
    keep = [exp / 'train_log.txt', exp / 'vis' / 'train_epoch1.jpg']
    for path in keep:
        path.write_text('kept')
    removed = sweep_stale_files(exp)
    assert sorted(removed) == sorted(stale)
    for path in stale:
        assert not os.path.lexists(path), path
    for path in keep:
        assert path.is_file()
    assert verify_snapshot(exp, 'latest')['step'] == 1
    assert sweep_stale_files(exp) == []


def test_a_tampered_file_is_refused(tiny_model):
    model, opt = tiny_model
    exp = opt.expr_dir
    save_snapshot(model, opt, 'best', TrainState(epoch=1, step=1))
    target = (exp / 'best_net_netF.pth').resolve()
    data = bytearray(target.read_bytes())
    data[-10] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(checkpoint.SnapshotError, match='best_net_netF.pth.*sha256'):
        verify_snapshot(exp, 'best')
    with pytest.raises(checkpoint.SnapshotError, match='best_net_netF.pth'):
        load_snapshot(model, opt, 'best', steps_per_epoch=1)


def test_resume_reads_the_published_label(tiny_model):
    model, opt = tiny_model
    save_snapshot(model, opt, 'latest', TrainState(epoch=2, step=7, batches_done=3, epoch_done=False))
    reference = {k: v.clone() for k, v in model.netF.state_dict().items()}
    _perturb(model, 1.0)
    state = load_snapshot(model, opt, 'latest', steps_per_epoch=5)
    assert (state.epoch, state.step, state.batches_done, state.epoch_done) == (2, 7, 3, False)
    assert all(torch.equal(v, reference[k]) for k, v in model.netF.state_dict().items())


def test_a_non_finite_model_is_never_saved(tiny_model):
    model, opt = tiny_model
    exp = opt.expr_dir
    save_snapshot(model, opt, 'best', TrainState(epoch=1, step=1))
    with torch.no_grad():
        next(model.netF.parameters())[0].view(-1)[0] = float('nan')
    with pytest.raises(NonFiniteModelError, match=r"refusing to save label 'best' at step 2.*netF.*1 non-finite"):
        save_snapshot(model, opt, 'best', TrainState(epoch=2, step=2))
    assert verify_snapshot(exp, 'best')['step'] == 1
    assert not [p for p in (exp / 'snapshots').iterdir() if p.name.startswith('.')]


@pytest.mark.parametrize('mask', [0o022, 0o027])
def test_snapshot_files_and_folders_follow_the_umask(tiny_model, mask):
    model, opt = tiny_model
    previous = os.umask(mask)
    try:
        save_snapshot(model, opt, 'latest', TrainState(epoch=1, step=1))
    finally:
        os.umask(previous)
    folder = (opt.expr_dir / 'latest').resolve()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~mask
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path.name
