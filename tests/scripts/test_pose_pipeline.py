"""Pose-transfer stage end to end: the five ablations, GAN schedule, pixel warping, resume, test script."""
from __future__ import annotations

import json
import re

import pytest
import torch

import test_pose_transfer
import train_pose_transfer_model
from util.weights import safe_torch_load

from tests.helpers import common_args

ABLATIONS = {
    'no_dual_encoder': ['--which_model_G', 'unet'],
    'no_flow': ['--which_model_G', 'dual_unet', '--G_feat_warp', '0'],
    'no_vis': ['--which_model_G', 'dual_unet', '--G_feat_warp', '1', '--G_vis_mode', 'none'],
    'no_pixel_warping': ['--which_model_G', 'dual_unet', '--G_feat_warp', '1', '--G_vis_mode', 'residual'],
}


def pose_args(root, ckpt, exp_id, *extra, content_weight='0'):
    return ['--id', exp_id, *common_args(root, ckpt), '--pretrained_flow_id', 'FlowReg_tiny', '--G_nf', '8',
            '--G_max_nf', '16', '--D_nf', '8', '--batch_size', '2', '--max_steps_per_epoch', '2', '--val_batches', '1',
            '--n_vis', '2', '--display_freq', '1', '--loss_weight_content', content_weight, *extra]


@pytest.fixture(scope='module')
def trained_no_pix_warp(demo_root, flow_checkpoints):
    """``PoseTransfer_tiny4`` (w/o pixel warping), two epochs, GAN from epoch 2; in the flow checkpoints folder."""
    train_pose_transfer_model.main(pose_args(demo_root, flow_checkpoints, 'tiny4', *ABLATIONS['no_pixel_warping'],
                                             '--n_epoch', '2', '--epoch_add_gan', '2'))
    return flow_checkpoints


@pytest.mark.parametrize('name', ['no_dual_encoder', 'no_flow', 'no_vis'])
def test_ablation_trains_with_gan_schedule(name, demo_root, flow_checkpoints):
    summary = train_pose_transfer_model.main(pose_args(demo_root, flow_checkpoints, f'abl_{name}',
                                                       *ABLATIONS[name], '--n_epoch', '2', '--epoch_add_gan', '2'))
    exp = flow_checkpoints / f'PoseTransfer_abl_{name}'
    assert summary['step'] == 4 and summary['best_epoch'] in (1, 2)
    # netD exists from the start, but its files are written only while the GAN term is active, as in the original.
    assert (exp / '1_net_netG.pth').is_file() and not (exp / '1_net_netD.pth').exists()
    assert (exp / '2_net_netG.pth').is_file() and (exp / '2_net_netD.pth').is_file()
    log = (exp / 'train_log.txt').read_text()
    epoch1 = [line for line in log.splitlines() if 'epoch: 1  lr' in line]
    epoch2 = [line for line in log.splitlines() if 'epoch: 2  lr' in line]
    assert epoch1 and all('loss_G' not in line for line in epoch1)
    assert epoch2 and all('loss_G' in line and 'loss_D' in line for line in epoch2)
    for line in log.splitlines():
        assert 'nan' not in line.lower(), line


def test_ablation_without_gan_and_with_content_loss(demo_root, flow_checkpoints, tmp_path):
    """GAN off (--loss_weight_gan 0: no netD at all) and the VGG content loss read from a local weights file."""
    from models.losses import random_vgg19_features
    vgg_file = tmp_path / 'vgg19-dcbb9e9d.pth'
    torch.save({f'features.{k}': v for k, v in random_vgg19_features(0).state_dict().items()}, vgg_file)
    args = pose_args(demo_root, flow_checkpoints, 'nogan', *ABLATIONS['no_pixel_warping'], '--n_epoch', '1',
                     '--loss_weight_gan', '0', '--vgg_weights', str(vgg_file), content_weight='1')
    train_pose_transfer_model.main(args)
    exp = flow_checkpoints / 'PoseTransfer_nogan'
    ckpt = safe_torch_load(exp / 'latest_checkpoint.pth')
    assert set(ckpt['model']['nets']) == {'netG'} and set(ckpt['model']['optimizers']) == {'optim'}
    assert 'loss_content: ' in (exp / 'train_log.txt').read_text()


def test_missing_vgg_weights_error_says_what_to_do(demo_root, flow_checkpoints, tmp_path):
    args = pose_args(demo_root, flow_checkpoints, 'novgg', '--vgg_weights', str(tmp_path / 'absent.pth'),
                     content_weight='1')
    with pytest.raises(FileNotFoundError, match='vgg19-dcbb9e9d.pth'):
        train_pose_transfer_model.main(args)


def test_full_model_only_updates_netPW(demo_root, trained_no_pix_warp):
    ckpt_dir = trained_no_pix_warp
    # The original README's spelling without the prefix works.
    train_pose_transfer_model.main(pose_args(demo_root, ckpt_dir, 'tiny5', *ABLATIONS['no_pixel_warping'],
                                             '--G_pix_warp', '1', '--pretrained_G_id', 'tiny4',
                                             '--pretrained_G_epoch', 'best', '--n_epoch', '1', '--epoch_add_gan', '1'))
    before = safe_torch_load(ckpt_dir / 'PoseTransfer_tiny4' / 'best_net_netG.pth')
    after = safe_torch_load(ckpt_dir / 'PoseTransfer_tiny5' / 'latest_net_netG.pth')
    learned = [k for k in before if not k.endswith(('running_mean', 'running_var', 'num_batches_tracked'))]
    for key in learned:
        assert torch.equal(before[key], after[key]), f'netG parameter {key} changed during pixel-warping training'
    # ...but, as in the original, the frozen netG runs in training-mode BatchNorm, so its running stats move.
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith('running_mean'))
    ckpt = safe_torch_load(ckpt_dir / 'PoseTransfer_tiny5' / 'latest_checkpoint.pth')
    n_pw_params = sum(1 for k in ckpt['model']['nets']['netPW']
                      if not k.endswith(('running_mean', 'running_var', 'num_batches_tracked')))
    assert len(ckpt['model']['optimizers']['optim']['state']) == n_pw_params
    items = (ckpt_dir / 'PoseTransfer_tiny5' / 'vis' / 'vis_item_list.txt').read_text().split()
    assert items == ['img_1', 'joint_1', 'seg_1', 'joint_2', 'seg_2', 'flow_out', 'flow_tar', 'vis_out', 'vis_tar',
                     'img_warp', 'img_out_G', 'pix_mask', 'img_out', 'img_tar']


def test_pose_resume_across_the_gan_switch(demo_root, flow_checkpoints):
    args = pose_args(demo_root, flow_checkpoints, 'resume', *ABLATIONS['no_vis'], '--epoch_add_gan', '2',
                     '--lr_decay', '1', '--lr_gamma', '0.5')
    train_pose_transfer_model.main(args + ['--n_epoch', '1'])
    summary = train_pose_transfer_model.main(args + ['--n_epoch', '2', '--resume_train', '--resume_label', 'latest'])
    assert summary['epoch'] == 2 and summary['step'] == 4
    ckpt = safe_torch_load(flow_checkpoints / 'PoseTransfer_resume' / 'latest_checkpoint.pth')
    assert ckpt['model']['optimizers']['optim']['param_groups'][0]['lr'] == pytest.approx(1e-4)
    assert ckpt['model']['optimizers']['optim_D']['param_groups'][0]['lr'] == pytest.approx(1e-5)
    assert {int(s['step']) for s in ckpt['model']['optimizers']['optim']['state'].values()} == {4}
    assert {int(s['step']) for s in ckpt['model']['optimizers']['optim_D']['state'].values()} == {2}


def test_test_script_outputs(demo_root, trained_no_pix_warp, capsys):
    ckpt_dir = trained_no_pix_warp
    capsys.readouterr()
    result = test_pose_transfer.main(['--id', 'tiny4', '--which_epoch', 'best', '--gpu_ids', '-1', '--checkpoints_dir',
                                      str(ckpt_dir), '--num_workers', '0', '--batch_size', '5', '--save_output',
                                      '--masked', '--n_vis', '3', '--data_split', 'test'])
    out = capsys.readouterr().out
    assert re.search(r'\[model_id: PoseTransfer_tiny4  epoch: best\]  PSNR: \d+\.\d{4}  SSIM: \d\.\d{4}  '
                     r'mask_SSIM: \d\.\d{4}  sec_per_image: \d+\.\d{4}', out), out
    exp = ckpt_dir / 'PoseTransfer_tiny4'
    results = exp / 'test_test_best'
    assert f'results written to {results}' in out and f"metrics written to {results / 'metrics.json'}" in out
    split = json.loads((demo_root / 'Label' / 'pair_split.json').read_text())['test']
    names = sorted(p.name for p in (results / 'images').iterdir())
    assert names == sorted(f'{a}_{b}.jpg' for a, b in split)
    assert result['n_batches'] == 3  # 12 pairs in batches of 5: the last partial batch is kept
    assert (result['results_dir'], result['output_dir'], result['json']) == (
        str(results), str(results / 'images'), str(results / 'metrics.json'))
    saved = json.loads((results / 'metrics.json').read_text())
    assert set(saved['metrics']) == {'PSNR', 'SSIM', 'mask_SSIM', 'sec_per_image', 'person_SSIM', 'person_L1'}
    assert set(saved['baselines']) == {'copy_source_PSNR', 'copy_source_SSIM', 'copy_source_mask_SSIM',
                                       'copy_source_person_SSIM', 'copy_source_person_L1',
                                       'gt_flow_warp_person_SSIM', 'gt_flow_warp_person_L1'}
    # Person-region metrics on a second line, model then the two references on the same pairs.
    number = r'-?\d+\.\d{4}'
    assert re.search(rf'\[model_id: PoseTransfer_tiny4  epoch: best\]  person region: person_SSIM: {number}  '
                     rf'person_L1: {number}  \|  copy source: person_SSIM: {number}  person_L1: {number}  \|  '
                     rf'ground-truth flow warp: person_SSIM: {number}  person_L1: {number}', out), out
    assert saved['person_region_excluded_pairs'] == 0 and saved['person_region_summary'] in out
    b = saved['baselines']
    # Exact ground truth: a perfect flow alone beats copying the source on the person.
    assert b['gt_flow_warp_person_SSIM'] > b['copy_source_person_SSIM']
    assert b['gt_flow_warp_person_L1'] < b['copy_source_person_L1']
    assert 0 < saved['metrics']['SSIM'] < 1 and saved['visual_grid'] == str(results / 'vis.jpg')
    assert sorted(p.name for p in results.iterdir()) == ['images', 'metrics.json', 'test_opt.json', 'vis.jpg',
                                                         'vis_item_list.txt']
    assert json.loads((results / 'test_opt.json').read_text())['G_vis_mode'] == 'residual'  # the merged options
    # nothing of the test outside its folder (the original wrote output/, test_opt.json, vis/test_epoch*.jpg there)
    assert not (exp / 'output').exists() and not (exp / 'test_opt.json').exists()
    assert not (exp / 'vis' / 'test_epochbest.jpg').exists()  # (vis/test_epoch<N>.jpg are training's grids)


def test_bn_mode_running_changes_test_outputs(demo_root, trained_no_pix_warp, tmp_path):
    common = ['--id', 'tiny4', '--gpu_ids', '-1', '--checkpoints_dir', str(trained_no_pix_warp), '--num_workers', '0',
              '--n_vis', '0', '--n_test_batch', '1', '--data_split', 'test_small']
    batch = test_pose_transfer.main(common + ['--results_dir', str(tmp_path / 'batch')])['metrics']['SSIM']
    running = test_pose_transfer.main(common + ['--results_dir', str(tmp_path / 'running'),
                                                '--bn_mode', 'running'])['metrics']['SSIM']
    assert batch != running


def test_repeated_test_is_refused_or_replaced_never_mixed(trained_no_pix_warp, tmp_path):
    """The original's output/ kept the images of every earlier run, so a metric script scored a mixture."""
    args = ['--id', 'tiny4', '--gpu_ids', '-1', '--checkpoints_dir', str(trained_no_pix_warp), '--num_workers', '0',
            '--n_vis', '0', '--save_output', '--batch_size', '2', '--results_dir', str(tmp_path)]
    first = test_pose_transfer.main(args)
    images = tmp_path / 'test_test_best' / 'images'
    assert first['n_pairs'] == 12 and len(list(images.iterdir())) == 12
    with pytest.raises(FileExistsError, match='--overwrite'):
        test_pose_transfer.main(args + ['--n_test_batch', '1'])
    assert len(list(images.iterdir())) == 12
    second = test_pose_transfer.main(args + ['--n_test_batch', '1', '--overwrite'])
    assert second['n_pairs'] == 2 and len(list(images.iterdir())) == 2
    assert json.loads((tmp_path / 'test_test_best' / 'metrics.json').read_text())['n_pairs'] == 2
    # another epoch or split is another folder
    test_pose_transfer.main(args + ['--n_test_batch', '1', '--data_split', 'test_small'])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['test_test_best', 'test_test_small_best']


def tree_state(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns, p.stat().st_mode) for p in folder.rglob('*'))


def test_read_only_model_folder_is_tested_with_results_dir(trained_no_pix_warp, tmp_path):
    ckpt_dir = trained_no_pix_warp
    exp = ckpt_dir / 'PoseTransfer_tiny4'
    args = ['--id', 'tiny4', '--gpu_ids', '-1', '--checkpoints_dir', str(ckpt_dir), '--num_workers', '0', '--n_vis',
            '2', '--save_output', '--n_test_batch', '1', '--batch_size', '2', '--which_epoch', 'latest',
            '--results_dir', str(tmp_path / 'mine')]
    before, before_ckpt = tree_state(exp), sorted(p.name for p in ckpt_dir.iterdir())
    modes = {p: p.stat().st_mode for p in [exp, *exp.rglob('*')]}
    try:
        for path in modes:
            path.chmod(path.stat().st_mode & ~0o222)
        result = test_pose_transfer.main(args)
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
    assert tree_state(exp) == before and sorted(p.name for p in ckpt_dir.iterdir()) == before_ckpt
    results = tmp_path / 'mine' / 'test_test_latest'
    assert result['results_dir'] == str(results)
    assert len(list((results / 'images').glob('*.jpg'))) == 2 and (results / 'vis.jpg').is_file()


def test_unknown_test_id_lists_close_names_and_creates_nothing(trained_no_pix_warp):
    ckpt_dir = trained_no_pix_warp
    before = sorted(p.name for p in ckpt_dir.iterdir())
    with pytest.raises(FileNotFoundError, match=r'did you mean PoseTransfer_tiny4') as info:
        test_pose_transfer.main(['--id', 'tiny44', '--gpu_ids', '-1', '--checkpoints_dir', str(ckpt_dir)])
    assert 'PoseTransfer_tiny44' in str(info.value)
    assert sorted(p.name for p in ckpt_dir.iterdir()) == before


def test_removed_output_dir_option_says_where_images_go(trained_no_pix_warp, capsys):
    with pytest.raises(SystemExit):
        test_pose_transfer.main(['--id', 'tiny4', '--gpu_ids', '-1', '--checkpoints_dir', str(trained_no_pix_warp),
                                 '--output_dir', 'output'])
    err = capsys.readouterr().err
    assert '--output_dir was removed' in err and 'images/' in err and '--results_dir' in err
