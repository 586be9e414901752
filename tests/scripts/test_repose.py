"""scripts/repose.py and the pipeline under it, with tiny models trained on the demo dataset.

* The pipeline, given the ground-truth keypoints of the demo test split and identity framing, reproduces the test
  script's outputs for the same pairs (same weights, same BatchNorm mode, batches of the same composition).
* Every form of the command line end to end: one photo, a target photo (a Keypoint R-CNN with random weights),
  a pose sequence to a GIF, and batch mode with bad rows.
"""
from __future__ import annotations

import csv
import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from torchvision.models.detection import keypointrcnn_resnet50_fpn

import repose
import test_pose_transfer
import train_pose_transfer_model
from inference import media
from inference.media import load_image
from inference.pipeline import KeypointFile, PoseTransferPipeline
from metrics.ssim import to_uint8
from models.keypoint_detector import TORCHVISION_WEIGHTS_FILE
from training import evaluation
from util.keypoints import read_keypoints, write_openpose_json

from tests.helpers import common_args

# The detector with random weights: keep every box and joint; a small internal resize and few persons (the keypoint
# head runs once per person box) so it runs fast.
RANDOM_DETECTOR_ARGS = ['--detector_person_threshold', '0', '--detector_keypoint_threshold=-inf',
                        '--detector_size', '64', '96', '--detector_max_persons', '3']


def _pose_args(root, ckpt, exp_id, *extra):
    return ['--id', exp_id, *common_args(root, ckpt), '--pretrained_flow_id', 'FlowReg_tiny',
            '--G_nf', '8', '--G_max_nf', '16', '--D_nf', '8', '--batch_size', '2', '--max_steps_per_epoch', '2',
            '--val_batches', '1', '--n_vis', '0', '--display_freq', '1', '--loss_weight_content', '0',
            '--which_model_G', 'dual_unet', '--G_feat_warp', '1', '--G_vis_mode', 'residual', '--n_epoch', '1',
            *extra]


@pytest.fixture(scope='module')
def repose_model(demo_root, flow_checkpoints):
    """``PoseTransfer_repose5``: the full model (pixel warping on ``PoseTransfer_repose4``), demo size 128x64."""
    train_pose_transfer_model.main(_pose_args(demo_root, flow_checkpoints, 'repose4', '--epoch_add_gan', '2'))
    train_pose_transfer_model.main(_pose_args(demo_root, flow_checkpoints, 'repose5', '--G_pix_warp', '1',
                                              '--pretrained_G_id', 'repose4', '--epoch_add_gan', '1'))
    return flow_checkpoints / 'PoseTransfer_repose5'


@pytest.fixture(scope='module')
def test_pairs(demo_root):
    return [tuple(p) for p in json.loads((demo_root / 'Label' / 'pair_split.json').read_text())['test']]


def _image_path(demo_root, image_id):
    return demo_root / 'Img' / 'img' / f'{image_id}.jpg'


# ------------------------------------------------------------------------------------- test-script parity
@pytest.mark.parametrize('bn_mode', ['running', 'batch'])
def test_pipeline_reproduces_the_test_script(bn_mode, demo_root, repose_model, test_pairs, monkeypatch):
    """Same pairs, same weights, same BatchNorm mode, batches of 4 in split order on both sides: the pipeline's
    outputs (given keypoints, identity framing) equal the test script's to 1e-5."""
    captured = []
    monkeypatch.setattr(evaluation, 'save_output_images',
                        lambda images, ids, out_dir: captured.append((images.detach().cpu().clone(), list(ids))))
    test_pose_transfer.main(['--id', repose_model.name, '--which_epoch', 'best', '--gpu_ids', '-1',
                             '--checkpoints_dir', str(repose_model.parent), '--num_workers', '0', '--batch_size', '4',
                             '--save_output', '--n_vis', '0', '--bn_mode', bn_mode, '--overwrite'])
    script = torch.cat([images for images, _ in captured])
    assert [pair for _, ids in captured for pair in ids] == test_pairs and len(test_pairs) == 12

    pipe = PoseTransferPipeline.from_pretrained(repose_model, device='cpu', which_epoch='best', bn_mode=bn_mode,
                                                batch_size=4)
    labels = demo_root / 'Label' / 'pose_label.pkl'
    ours, images = [], []
    for start in range(0, len(test_pairs), 4):
        pairs = [pipe.prepare(_image_path(demo_root, a), KeypointFile(labels, b), source_keypoints=KeypointFile(labels, a),
                              framing='identity', name=a) for a, b in test_pairs[start:start + 4]]
        images += [r.image for r in pipe.generate(pairs)]
        ours.append(pipe.model.output['img_out'].detach().cpu().clone())
    ours = torch.cat(ours)
    assert ours.shape == script.shape == (12, 3, 128, 64)
    assert (ours - script).abs().max().item() <= 1e-5
    # The uint8 results are the test script's conversion of those outputs.
    assert np.abs(np.stack(images).astype(int) - to_uint8(script).numpy()).max() <= 1


# ------------------------------------------------------------------------------------------- command line
@pytest.fixture(scope='module')
def poses(demo_root, test_pairs, tmp_path_factory):
    """OpenPose JSON files of the first test pair's source and target, and of a three-frame sequence."""
    folder = tmp_path_factory.mktemp('poses')
    labels = demo_root / 'Label' / 'pose_label.pkl'
    source, target = test_pairs[0]
    write_openpose_json(folder / 'source.json', read_keypoints(labels, entry_id=source))
    write_openpose_json(folder / 'target.json', read_keypoints(labels, entry_id=target))
    for t, (_, other) in enumerate(test_pairs[:3]):
        write_openpose_json(folder / 'seq' / f'frame{t}.json', read_keypoints(labels, entry_id=other))
    return folder


def test_single_photo(repose_model, demo_root, test_pairs, poses, tmp_path, capsys):
    source, target = test_pairs[0]
    labels = demo_root / 'Label' / 'pose_label.pkl'
    out = tmp_path / 'out.png'
    argv = ['--model', str(repose_model), '--source', str(_image_path(demo_root, source)), '--device', 'cpu']
    assert repose.main(argv + ['--source_pose', str(labels), '--source_entry', source, '--target_pose', str(labels),
                               '--target_entry', target, '--out', str(out), '--framing', 'identity', '--panel']) == 0
    assert f'wrote {out}' in capsys.readouterr().out
    pipe = PoseTransferPipeline.from_pretrained(repose_model, device='cpu')
    expected = pipe(_image_path(demo_root, source), KeypointFile(labels, target),
                    source_keypoints=KeypointFile(labels, source), framing='identity')
    np.testing.assert_array_equal(load_image(out, min_side=1), expected.image)  # PNG: lossless
    panel = load_image(tmp_path / 'out_panel.png')
    assert panel.shape == (132, 7 * 66 + 2, 3)
    # OpenPose files, automatic framing, pasted back into the photo.
    pasted = tmp_path / 'pasted.png'
    assert repose.main(argv + ['--source_pose', str(poses / 'source.json'), '--target_pose',
                               str(poses / 'target.json'), '--out', str(pasted), '--paste_back']) == 0
    assert load_image(pasted).shape == (128, 64, 3)


@pytest.fixture(scope='module')
def random_detector_weights(tmp_path_factory):
    """A Keypoint R-CNN state_dict with random weights, saved under the file name of torchvision's weights."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('detector') / TORCHVISION_WEIGHTS_FILE
    torch.save(keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict(), path)
    yield path
    path.unlink()  # 240 MB; do not leave it in pytest's kept temporary folders


def test_target_photo_with_the_detector(repose_model, demo_root, test_pairs, poses, random_detector_weights,
                                        tmp_path, capsys):
    source, target = test_pairs[0]
    out = tmp_path / 'from_photo.png'
    code = repose.main(['--model', str(repose_model), '--source', str(_image_path(demo_root, source)),
                        '--source_pose', str(poses / 'source.json'), '--target_image',
                        str(_image_path(demo_root, target)), '--out', str(out), '--device', 'cpu', '--panel',
                        '--detector_weights', str(random_detector_weights), *RANDOM_DETECTOR_ARGS])
    assert code == 0, capsys.readouterr().err
    assert load_image(out).shape == (128, 64, 3) and (tmp_path / 'from_photo_panel.png').is_file()
    # Without a weights file: a clear error naming the file and where to get it.
    code = repose.main(['--model', str(repose_model), '--source', str(_image_path(demo_root, source)),
                        '--source_pose', str(poses / 'source.json'), '--target_image',
                        str(_image_path(demo_root, target)), '--out', str(out), '--device', 'cpu',
                        '--detector_weights', str(tmp_path / 'absent.pth')])
    err = capsys.readouterr().err
    assert code == 1 and 'absent.pth' in err and 'download.pytorch.org' in err


def test_pose_sequence_to_gif(repose_model, demo_root, test_pairs, poses, tmp_path, capsys, monkeypatch):
    source = test_pairs[0][0]
    argv = ['--model', str(repose_model), '--source', str(_image_path(demo_root, source)), '--source_pose',
            str(poses / 'source.json'), '--target_pose_dir', str(poses / 'seq'), '--device', 'cpu', '--fps', '5',
            '--smooth', 'moving_average', '--smooth_window', '3', '--panel', '--batch_size', '2']
    assert repose.main(argv + ['--out', str(tmp_path / 'dance.gif')]) == 0
    frames = iio.imread(tmp_path / 'dance.gif', index=None)
    assert frames.shape[:3] == (3, 128, 64)
    written = sorted(p.name for p in (tmp_path / 'dance_frames').iterdir())
    assert written == [f'dance_{t:06d}{s}.png' for t in range(3) for s in ('', '_panel')]
    # GIF frames are palette-quantised; they stay close to the PNG frames.
    first = load_image(tmp_path / 'dance_frames' / 'dance_000000.png').astype(int)
    assert np.abs(frames[0][..., :3].astype(int) - first).mean() < 12
    # MP4 without imageio-ffmpeg: a GIF and a message saying how to get MP4.
    monkeypatch.setattr(media, 'ffmpeg_available', lambda: False)
    capsys.readouterr()
    assert repose.main(argv + ['--out', str(tmp_path / 'clip.mp4')]) == 0
    captured = capsys.readouterr()
    assert 'pip install imageio-ffmpeg' in captured.err and (tmp_path / 'clip.gif').is_file()
    assert f'wrote {tmp_path / "clip.gif"} (3 frames at 5 fps)' in captured.out


def test_batch_mode_reports_bad_rows_and_keeps_going(repose_model, demo_root, test_pairs, poses, tmp_path, capsys):
    labels = demo_root / 'Label' / 'pose_label.pkl'
    (tmp_path / 'broken.jpg').write_text('not a photo')
    a, (c, d) = test_pairs[0][0], test_pairs[1]
    rows = [
        {'source': str(_image_path(demo_root, a)), 'source_pose': str(poses / 'source.json'),
         'target_pose': str(poses / 'target.json'), 'output': 'first'},
        {'source': 'broken.jpg', 'source_pose': str(poses / 'source.json'), 'target_pose': str(poses / 'target.json')},
        {'source': str(_image_path(demo_root, c)), 'source_pose': str(labels), 'source_entry': c,
         'target_image': str(_image_path(demo_root, d)), 'target_pose': str(labels), 'target_entry': d},
        {'source': str(_image_path(demo_root, c)), 'source_pose': str(labels), 'source_entry': c},
        {'source': str(_image_path(demo_root, a)), 'source_pose': str(poses / 'source.json'),
         'target_pose': str(poses / 'target.json'), 'output': 'first.png'},
    ]
    fields = ['source', 'source_pose', 'source_entry', 'target_pose', 'target_entry', 'target_image', 'output']
    with open(tmp_path / 'pairs.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    out_dir = tmp_path / 'results'
    code = repose.main(['--model', str(repose_model), '--pairs', str(tmp_path / 'pairs.csv'), '--out_dir',
                        str(out_dir), '--device', 'cpu', '--batch_size', '2', '--panel'])
    assert code == 1  # some rows failed
    manifest = json.loads((out_dir / 'manifest.json').read_text())
    assert manifest['n_rows'] == 5 and manifest['n_produced'] == 2 and manifest['n_failed'] == 3
    status = {r['row']: r for r in manifest['rows']}
    assert status[1]['status'] == 'ok' and status[1]['output'] == 'first.png'
    assert status[2]['status'] == 'failed' and 'broken.jpg is not a readable image' in status[2]['reason']
    assert status[3]['status'] == 'ok' and status[3]['output'] == f'{c}_to_{d}.png'
    assert 'no target_pose or target_image' in status[4]['reason']
    assert "'first.png' is already produced by row 1" in status[5]['reason']
    for name in ('first.png', 'first_panel.png', f'{c}_to_{d}.png'):
        assert load_image(out_dir / name).shape[0] in (128, 132)
    with open(out_dir / 'manifest.csv', newline='') as f:
        table = list(csv.DictReader(f))
    assert [r['status'] for r in table] == ['ok', 'failed', 'ok', 'failed', 'failed']
    err = capsys.readouterr().err
    assert 'row 2 (' in err and 'broken.jpg' in err


def test_source_folder_batch_with_the_detector(repose_model, demo_root, test_pairs, poses, random_detector_weights,
                                               tmp_path):
    photos = tmp_path / 'photos'
    photos.mkdir()
    (photos / 'a.jpg').write_bytes(_image_path(demo_root, test_pairs[0][0]).read_bytes())
    (photos / 'b.png').write_bytes(b'\x89PNG broken')
    code = repose.main(['--model', str(repose_model), '--source', str(photos), '--target_pose',
                        str(poses / 'target.json'), '--out_dir', str(tmp_path / 'out'), '--device', 'cpu',
                        '--detector_weights', str(random_detector_weights), *RANDOM_DETECTOR_ARGS])
    assert code == 1
    rows = json.loads((tmp_path / 'out' / 'manifest.json').read_text())['rows']
    assert [(r['output'], r['status']) for r in rows] == [('a.png', 'ok'), ('', 'failed')]
    assert 'b.png is not a readable image' in rows[1]['reason']


@pytest.mark.parametrize('args, message', [
    (['--source', 'x.jpg', '--target_pose', 'p.json'], 'give --out'),
    (['--source', 'x.jpg', '--target_pose', 'p.json', '--out', 'o.txt'], 'use an image file name'),
    (['--source', 'x.jpg', '--target_pose_dir', 'd', '--out', 'o.png'], 'written as a video'),
    (['--pairs', 'p.csv'], '--pairs needs --out_dir'),
    (['--source', 'x.jpg'], 'give the target'),
])
def test_usage_errors(args, message, repose_model, capsys):
    assert repose.main(['--model', str(repose_model), *args]) == 1
    assert message in capsys.readouterr().err


def test_model_folder_without_weights(tmp_path, capsys):
    (tmp_path / 'PoseTransfer_empty').mkdir()
    (tmp_path / 'PoseTransfer_empty' / 'train_opt.json').write_text('{}')
    code = repose.main(['--model', str(tmp_path / 'PoseTransfer_empty'), '--source', 'x.jpg', '--target_pose', 'p.json',
                        '--out', str(tmp_path / 'o.png'), '--device', 'cpu'])
    err = capsys.readouterr().err
    assert code == 1 and 'PoseTransfer_empty: no generator weights best_net_netG.pth or latest_net_netG.pth' in err
