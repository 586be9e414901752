"""Data-parallel training under torchrun on the CPU (gloo): both training scripts with two processes, and the
equivalence of one data-parallel step with the original's DataParallel semantics (per-replica BatchNorm)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from metrics.fashion_classifiers import build_classifier
from util.io import save_json, save_pickle
from util.weights import safe_torch_load

from tests.helpers import flow_args
from tests.metrics.weights_helpers import write_images
from tests.scripts import ddp_worker
from tests.scripts.test_pose_pipeline import ABLATIONS, pose_args

WORKER = Path(ddp_worker.__file__)


def torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        env.pop(key, None)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(nproc),
           str(WORKER), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f'{" ".join(cmd)}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-6000:]}'
    return proc


def assert_same_parameters(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys() and a
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=atol), (k, float((a[k] - b[k]).abs().max()))


def files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob('*') if p.is_file()}


@pytest.mark.slow
def test_flow_two_processes_train_identically_and_resume(demo_root, tmp_path):
    ckpt, out = tmp_path / 'ckpt', tmp_path / 'out'
    out.mkdir()
    # Global batch 4 = 2 per process; the per-loss gradient check (one backward per step under DDP) every step.
    args = flow_args(demo_root, ckpt, 'ddp', '--n_epoch', '1', '--check_grad_freq', '1', '--n_vis', '4')
    torchrun('train', 'train_flow_regression_module', str(out), *args)
    exp = ckpt / 'FlowReg_ddp'
    ranks = [safe_torch_load(out / f'rank{r}.pt') for r in (0, 1)]
    assert_same_parameters(ranks[0], ranks[1])
    # Files only from rank 0: one log (whose lines are rank 0's), no temporary leftovers.
    names = files_under(exp)
    assert {'train_opt.json', 'order_line.txt', 'train_log.txt', 'latest_checkpoint.pth', 'best_checkpoint.pth',
            'latest_net_netF.pth', 'vis/train_epoch1.jpg', 'vis/test_epoch1.jpg'} <= names
    assert not any('tmp' in n for n in names), names
    log = (exp / 'train_log.txt').read_text()
    assert log.count('iter: 1 ') == 1 and 'grad_flow: ' in log
    saved = safe_torch_load(exp / 'latest_net_netF.pth')
    assert_same_parameters({f'netF.{k}': v for k, v in saved.items() if f'netF.{k}' in ranks[0]}, ranks[0])
    ckpt_1 = safe_torch_load(exp / 'latest_checkpoint.pth')
    assert ckpt_1['state']['step'] == 2 and ckpt_1['state']['epoch'] == 1

    # Resume for a second epoch under torchrun; equals two epochs in one go.
    torchrun('train', 'train_flow_regression_module', str(out), *flow_args(
        demo_root, ckpt, 'ddp', '--n_epoch', '2', '--n_vis', '0', '--check_grad_freq', '1', '--resume_train',
        '--resume_label', 'latest'))
    resumed = safe_torch_load(out / 'rank0.pt')
    assert_same_parameters(resumed, safe_torch_load(out / 'rank1.pt'))
    (out / 'ref').mkdir()
    torchrun('train', 'train_flow_regression_module', str(out / 'ref'), *flow_args(
        demo_root, tmp_path / 'ref', 'ddp', '--n_epoch', '2', '--n_vis', '0', '--check_grad_freq', '1'))
    assert_same_parameters(resumed, safe_torch_load(out / 'ref' / 'rank0.pt'))
    assert safe_torch_load(exp / 'latest_checkpoint.pth')['state']['step'] == 4


@pytest.mark.slow
def test_pose_two_processes_with_gan_train_identically(demo_root, flow_checkpoints, tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    # netG and netD wrapped separately; GAN from epoch 2 (netD trained only then), frozen flow net unwrapped.
    args = pose_args(demo_root, flow_checkpoints, 'ddp', *ABLATIONS['no_pixel_warping'], '--n_epoch', '2',
                     '--epoch_add_gan', '2', '--check_grad_freq', '2', '--n_vis', '0')
    torchrun('train', 'train_pose_transfer_model', str(out), *args)
    ranks = [safe_torch_load(out / f'rank{r}.pt') for r in (0, 1)]
    assert any(k.startswith('netD.') for k in ranks[0]) and any(k.startswith('netG.') for k in ranks[0])
    assert_same_parameters(ranks[0], ranks[1])
    exp = flow_checkpoints / 'PoseTransfer_ddp'
    log = (exp / 'train_log.txt').read_text()
    assert 'loss_D' in log and 'nan' not in log.lower()
    assert (exp / '2_net_netD.pth').is_file()


@pytest.mark.slow
def test_pose_two_processes_pixel_warping(demo_root, flow_checkpoints, tmp_path):
    """With pixel warping only netPW learns: it is the one wrapped network (netG frozen, not wrapped)."""
    out = tmp_path / 'out'
    out.mkdir()
    base = pose_args(demo_root, flow_checkpoints, 'ddp_g', *ABLATIONS['no_pixel_warping'], '--n_epoch', '1',
                     '--n_vis', '0', '--loss_weight_gan', '0')
    torchrun('train', 'train_pose_transfer_model', str(out), *base)
    args = pose_args(demo_root, flow_checkpoints, 'ddp_pw', *ABLATIONS['no_pixel_warping'], '--G_pix_warp', '1',
                     '--pretrained_G_id', 'ddp_g', '--pretrained_G_epoch', 'latest', '--n_epoch', '1',
                     '--n_vis', '0', '--loss_weight_gan', '0')
    torchrun('train', 'train_pose_transfer_model', str(out), *args)
    ranks = [safe_torch_load(out / f'rank{r}.pt') for r in (0, 1)]
    assert ranks[0] and all(k.startswith('netPW.') for k in ranks[0])
    assert_same_parameters(ranks[0], ranks[1])


@pytest.mark.slow
def test_ddp_step_equals_single_step_with_per_half_batchnorm(demo_root, tmp_path, single_thread_torch):
    """2 processes x batch 4 == one process, batch 8 normalised in two halves of 4 (DataParallel's replicas)."""
    args = flow_args(demo_root, tmp_path / 'ckpt', 'equiv', '--batch_size', '4')
    torchrun('equivalence', str(tmp_path), *args)
    ddp = safe_torch_load(tmp_path / 'ddp.pt')
    reference = ddp_worker.equivalence_reference(args)
    assert_same_parameters(ddp, reference, atol=1e-5)
    # The step moved the weights (the comparison is not between two untouched initialisations).
    start = ddp_worker.equivalence_reference([*args, '--lr', '0'])
    assert max(float((ddp[k] - start[k]).abs().max()) for k in ddp) > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['attr', 'inception'])
def test_fashion_classifier_two_processes_train_identically(kind, tmp_path):
    """A fashion classifier's --train under torchrun: identical weights on both ranks, files and prints from rank 0
    only, and the weights moved. (Inception-v3: its auxiliary head stays out of the loss and out of DDP.)"""
    ids = [f'fashionWOMENDressesid00000{k:05d}_1front' for k in range(10)]
    write_images(tmp_path / 'img', ids, size=(40, 40), seed=5)
    rng = np.random.default_rng(2)
    save_json({'train': ids[:8], 'test': ids[8:]}, tmp_path / 'split.json')
    if kind == 'attr':
        script, folder, n_epoch = 'fashion_attribute_score', 'Fashion_Attr', 2
        save_pickle({'label': {i: (rng.random(6) < 0.5).astype(np.int64) for i in ids},
                     'entry': [f'attr{a}' for a in range(6)]}, tmp_path / 'labels.pkl')
        args = ['--n_attr', '6', '--fn_label', str(tmp_path / 'labels.pkl'), '--rescale_size', '36', '--crop_size', '32']
    else:
        # Inception's auxiliary head needs 299x299 inputs and 2 samples per process in training mode.
        script, folder, n_epoch = 'fashion_inception_score', 'Fashion_Inception', 1
        save_json({i: k % 5 for k, i in enumerate(ids)}, tmp_path / 'labels.json')
        args = ['--n_class', '5', '--fn_label', str(tmp_path / 'labels.json'), '--rescale_size', '299',
                '--crop_size', '299']
    ckpt, out = tmp_path / 'ckpt', tmp_path / 'out'
    out.mkdir()
    proc = torchrun('classifier', script, str(out), '--train', '--id', 'ddp', '--from_scratch', *args,
                    '--n_epoch', str(n_epoch), '--batch_size', '4', '--display_freq', '1', '--lr', '1e-3',
                    '--fn_split', str(tmp_path / 'split.json'), '--img_dir', str(tmp_path / 'img'),
                    '--checkpoints_dir', str(ckpt), '--num_workers', '0', '--gpu_ids', '-1')
    ranks = [safe_torch_load(out / f'rank{r}.pt') for r in (0, 1)]
    # Parameters are equal; BatchNorm running statistics are each process's own since DDP's last broadcast.
    assert_same_parameters(*({k: v for k, v in state.items() if not _is_batchnorm_buffer(k)} for state in ranks))
    assert files_under(ckpt) == {f'{folder}/ddp/best.pth', f'{folder}/ddp/latest.pth'}
    latest = safe_torch_load(ckpt / folder / 'ddp' / 'latest.pth')
    assert_same_parameters(latest, {k: ranks[0][k] for k in latest})
    # 8 training images, global batch 4: 2 steps per epoch, each printed once (rank 0 only).
    test_line = 'test mean_ap' if kind == 'attr' else 'test accuracy'
    assert proc.stdout.count('step ') == 2 * n_epoch and proc.stdout.count(test_line) == n_epoch, proc.stdout
    torch.manual_seed(ddp_worker.CLASSIFIER_INIT_SEED)
    untrained = build_classifier(kind, 6 if kind == 'attr' else 5).state_dict()
    assert float((latest['fc.weight'] - untrained['fc.weight']).abs().max()) > 1e-4
    if kind == 'inception':  # the auxiliary head is not trained (as in one process)
        assert all(torch.equal(latest[k], untrained[k]) for k in latest if k.startswith('AuxLogits.')
                   and 'running' not in k and 'num_batches' not in k)


def _is_batchnorm_buffer(key: str) -> bool:
    return key.rsplit('.', 1)[-1] in ('running_mean', 'running_var', 'num_batches_tracked')
