"""How a training run starts, resumes and stops: which options a resume may change, the records it leaves, what
an existing experiment id requires, the start-up sweep and lock, and the clean stop on SIGTERM."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
import torch

import train_flow_regression_module
from util.weights import safe_torch_load

from tests.helpers import flow_args

EPOCH1 = ['--n_epoch', '1', '--n_vis', '0']


def latest_state(exp):
    return safe_torch_load(exp / 'latest_checkpoint.pth')['state']


# ----------------------------------------------------------------------------------------- resume and options

def test_resume_refuses_a_different_training_setting(demo_root, tmp_path):
    train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'lr', *EPOCH1))
    with pytest.raises(ValueError) as info:
        train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'lr', '--n_epoch', '2', '--n_vis', '0',
                                                    '--resume_train', '--lr', '0.01', '--batch_size', '2'))
    msg = str(info.value)
    assert '--lr 0.01 (checkpoint: 0.0001)' in msg and '--batch_size 2 (checkpoint: 4)' in msg
    assert 'latest' in msg and 'new --id' in msg
    assert latest_state(tmp_path / 'FlowReg_lr')['step'] == 2  # nothing ran


def test_resume_refuses_a_different_architecture(demo_root, tmp_path):
    train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'arch', *EPOCH1))
    with pytest.raises(ValueError, match=r'architecture.*--nf 16 \(checkpoint: 8\)'):
        train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'arch', '--resume_train', '--nf', '16'))


def test_resume_continues_with_the_saved_options_and_applies_run_options(demo_root, tmp_path, capsys):
    exp = tmp_path / 'FlowReg_cont'
    first = flow_args(demo_root, tmp_path, 'cont', *EPOCH1, '--lr_decay', '1', '--lr_gamma', '0.5')
    train_flow_regression_module.main(first)
    first_opt = (exp / 'train_opt.json').read_bytes()
    capsys.readouterr()
    # The resume command does not repeat the schedule: the saved one is used, not the defaults.
    summary = train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'cont', '--resume_train',
                                                          '--n_epoch', '2', '--display_freq', '2'))
    assert summary['epoch'] == 2 and summary['step'] == 4
    assert summary['learning_rate'] == pytest.approx(5e-5)
    out = capsys.readouterr().out
    assert re.search(r'changed on resume: .*n_epoch 2 \(was 1\).*display_freq 2 \(was 1\)', out), out
    # Records: the first run's options file is kept, each resume gets its own, order_line.txt grows.
    assert (exp / 'train_opt.json').read_bytes() == first_opt
    resumed = json.loads((exp / 'train_opt_resume1.json').read_text())
    assert (resumed['n_epoch'], resumed['display_freq'], resumed['lr_decay']) == (2, 2, 1)
    lines = (exp / 'order_line.txt').read_text().splitlines()
    assert len(lines) == 2
    assert re.match(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d  start  \S+ --id cont', lines[0]), lines[0]
    assert re.match(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d  resume from latest \(epoch 1, step 2\)  .*--resume_train',
                    lines[1]), lines[1]
    log = (exp / 'train_log.txt').read_text()
    assert re.search(r'start: \S+ --id cont', log)
    assert re.search(r'resume from latest \(epoch 1, step 2\): .*--resume_train', log)
    # Without a TTY the progress bar is off: log lines carry elapsed time, speed and ETA.
    assert re.search(r'elapsed: \d+:\d\d:\d\d  it/s: [\d.]+  eta: \d+:\d\d:\d\d', log), log


def test_resume_train_alone_means_latest(demo_root, tmp_path):
    train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'alone', *EPOCH1))
    summary = train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'alone', '--resume_train',
                                                          '--n_epoch', '2'))
    assert summary['step'] == 4


def test_auto_resume_starts_fresh_then_resumes(demo_root, tmp_path):
    args = flow_args(demo_root, tmp_path, 'auto', '--n_vis', '0', '--auto_resume')
    assert train_flow_regression_module.main(args + ['--n_epoch', '1'])['step'] == 2
    assert train_flow_regression_module.main(args + ['--n_epoch', '2'])['step'] == 4
    lines = (tmp_path / 'FlowReg_auto' / 'order_line.txt').read_text().splitlines()
    assert [line.split('  ')[1] for line in lines] == ['start', 'resume from latest (epoch 1, step 2)']


def test_resume_without_latest_suggests_what_exists(demo_root, tmp_path):
    exp = tmp_path / 'FlowReg_orig'
    train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'orig', *EPOCH1))
    latest = safe_torch_load(exp / 'latest_checkpoint.pth')
    for path in exp.glob('latest*'):
        path.unlink()
    shutil.rmtree(exp / 'snapshots')
    # an original-format folder: integer-epoch network and optimizer files only
    torch.save(latest['model']['nets']['netF'], exp / '1_net_netF.pth')
    torch.save(latest['model']['optimizers']['optim'], exp / '1_optim_optim.pth')
    with pytest.raises(FileNotFoundError) as info:
        train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'orig', '--resume_train', '--n_epoch', '2'))
    msg = str(info.value)
    assert "no checkpoint 'latest'" in msg and '--last_epoch 1' in msg
    assert train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'orig', '--resume_train', '--n_epoch',
                                                       '2', '--last_epoch', '1'))['step'] == 4


# ----------------------------------------------------------------------------------------- existing experiments

def test_a_new_run_on_an_existing_experiment_is_refused(demo_root, tmp_path):
    train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'taken', *EPOCH1, '--save_epoch_freq', '1'))
    exp = tmp_path / 'FlowReg_taken'
    with pytest.raises(FileExistsError) as info:
        train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'taken', *EPOCH1))
    msg = str(info.value)
    assert str(exp) in msg and '--resume_train' in msg and '--auto_resume' in msg and '--overwrite' in msg
    assert '1_net_netF.pth' not in msg and 'latest, best, 1' in msg
    with pytest.raises(SystemExit):
        train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'taken', '--overwrite', '--resume_train'))
    # --overwrite starts again from nothing: the earlier run's files are gone
    (exp / 'note.txt').write_text('from the first run')
    summary = train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'taken', *EPOCH1, '--overwrite',
                                                          '--save_epoch_freq', '5'))
    assert summary['step'] == 2
    assert not (exp / '1_net_netF.pth').exists() and not (exp / 'note.txt').exists()
    assert len((exp / 'order_line.txt').read_text().splitlines()) == 1


# ----------------------------------------------------------------------------------------- start-up and stop

def test_start_up_sweeps_temporary_files(demo_root, tmp_path):
    train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'sweep', *EPOCH1))
    exp = tmp_path / 'FlowReg_sweep'
    stale = [exp / '.latest_checkpoint.ab12.tmp.pth', exp / 'snapshots' / '.latest.step3.x.tmp']
    stale[0].write_bytes(b'partial')
    stale[1].mkdir()
    train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'sweep', '--resume_train', '--n_epoch', '2'))
    assert not any(p.exists() for p in stale)
    assert 'removed 2 temporary' in (exp / 'train_log.txt').read_text()


def test_a_second_training_in_the_same_folder_is_refused(demo_root, tmp_path):
    exp = tmp_path / 'FlowReg_locked'
    exp.mkdir()
    holder = subprocess.Popen([sys.executable, '-c', (
        'import fcntl, sys, time\n'
        f'f = open({str(exp / "training.lock")!r}, "a")\n'
        'fcntl.flock(f, fcntl.LOCK_EX)\n'
        'print("locked", flush=True)\n'
        'time.sleep(60)\n')], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        with pytest.raises(RuntimeError, match='another training .* is running in'):
            train_flow_regression_module.main(flow_args(demo_root, tmp_path, 'locked', *EPOCH1))
    finally:
        holder.kill()
        holder.wait()


def test_sigterm_saves_latest_and_prints_the_resume_command(demo_root, tmp_path, monkeypatch, capsys):
    from models.flow_regression_model import FlowRegressionModel
    real_step = FlowRegressionModel.optimize_parameters
    calls = {'n': 0}

    def terminated_during_third(self, check_grad=False):
        calls['n'] += 1
        if calls['n'] == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of iteration 3 (epoch 2, first batch)
        real_step(self, check_grad)

    monkeypatch.setattr(FlowRegressionModel, 'optimize_parameters', terminated_during_third)
    args = flow_args(demo_root, tmp_path, 'term', '--n_epoch', '3', '--n_vis', '0')

    def unhandled(signum, frame):
        raise AssertionError('SIGTERM reached the default handler: training did not handle it')

    previous = signal.signal(signal.SIGTERM, unhandled)  # never let the signal end the test process
    try:
        with pytest.raises(SystemExit) as info:
            train_flow_regression_module.main(args)
        assert signal.getsignal(signal.SIGTERM) is unhandled  # the training's handler was removed again
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert info.value.code == 128 + signal.SIGTERM
    exp = tmp_path / 'FlowReg_term'
    state = latest_state(exp)
    assert (state['step'], state['epoch'], state['batches_done'], state['epoch_done']) == (3, 2, 1, False)
    out = capsys.readouterr().out
    assert 'SIGTERM' in out and 'step 3' in out and '--resume_train' in out
    monkeypatch.setattr(FlowRegressionModel, 'optimize_parameters', real_step)
    resume = out[out.index('resume with:'):].splitlines()[1].split()
    assert resume[-1] == '--resume_train' and '--id' in resume
    summary = train_flow_regression_module.main(resume[resume.index('--id'):])
    assert summary['step'] == 6 and summary['epoch'] == 3
