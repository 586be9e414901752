"""The one-pass protocol evaluation (training/protocol_eval.py) against the individual metric functions, on a
results folder for the demo dataset's test split; the GFLA 256x176 size rule on a hand-made image; bad inputs.

The results folder holds, per test pair, the target with seeded noise written as JPEG (quality 95), named
``<id_1>_<id_2>.jpg`` like the test script's output. The end-to-end run on a trained demo model's output is in
tests/scripts/test_evaluate.py.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from metrics.fid_torchvision import TorchvisionInceptionPool, frechet_distance_sqrtm
from metrics.image_prep import center_crop_box, decode_image, resize_image, transform_keypoints
from metrics.inception_score import compute_inception_score, compute_masked_inception_score
from metrics.lpips_metric import build_lpips, compute_lpips, lpips_arrays
from metrics.pose_mask import PoseMaskSettings, pose_masks
from metrics.protocols import GFLA, INTRINSIC_FLOW, customize, get_protocol
from metrics.psnr import PSNRSettings, psnr_batch
from metrics.ssim import SSIMSettings, ssim_batch, ssim_configurable, to_uint8
from training.protocol_eval import EvalConfig, EvaluationError, WeightPaths, evaluate_results, markdown_table
from util.io import load_pickle
from util.pose_util import get_pose_mask_batch

from tests.metrics.weights_helpers import alexnet_weights, fidelity_inception_weights, torchvision_inception_weights


# --------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------
def _test_pairs(root: Path) -> list[tuple[str, str]]:
    return [tuple(p) for p in json.loads((root / 'Label' / 'pair_split.json').read_text())['test']]


def _write_results(root: Path, folder: Path, seed: int = 0) -> list[tuple[str, str]]:
    """Per test pair: the target plus seeded noise, as ``<id_1>_<id_2>.jpg`` (OpenCV, quality 95)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pairs = _test_pairs(root)
    for id_1, id_2 in pairs:
        img = cv2.imread(str(root / 'Img' / 'img' / f'{id_2}.jpg'))
        noisy = np.clip(img.astype(np.int32) + rng.integers(-30, 31, img.shape), 0, 255).astype(np.uint8)
        assert cv2.imwrite(str(folder / f'{id_1}_{id_2}.jpg'), noisy, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return pairs


@pytest.fixture(scope='module')
def results_dir(demo_root, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp('results') / 'test_test_best'
    _write_results(demo_root, folder)
    return folder


@pytest.fixture(scope='module')
def weights(tmp_path_factory) -> WeightPaths:
    return WeightPaths(inception=str(fidelity_inception_weights(tmp_path_factory)),
                       fid_torchvision=str(torchvision_inception_weights(tmp_path_factory)),
                       alexnet=str(alexnet_weights(tmp_path_factory)),
                       checkpoints_dir=str(tmp_path_factory.mktemp('no_classifiers')))


def _config(results: Path, root: Path, weights: WeightPaths, **kwargs) -> EvalConfig:
    return EvalConfig(results_dir=str(results), dataset_name='demo', data_root=str(root), weights=weights,
                      progress=False, **kwargs)


def _decoded(results: Path, root: Path, pairs, decoder: str) -> tuple[np.ndarray, np.ndarray]:
    gen = np.stack([decode_image(results / f'{a}_{b}.jpg', decoder) for a, b in pairs])
    tgt = np.stack([decode_image(root / 'Img' / 'img' / f'{b}.jpg', decoder) for a, b in pairs])
    return gen, tgt


def _batch_means(values: np.ndarray, batch: int = 8) -> float:
    """The original's test-pass average: per-batch means stored as float32, then their float64 mean."""
    means = [np.float32(values[i:i + batch].mean()) for i in range(0, len(values), batch)]
    return float(np.mean(np.asarray(means, dtype=np.float64)))


# --------------------------------------------------------------------------------------------------
# Every protocol equals the individual metric functions
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_intrinsic_flow_equals_the_metric_functions(demo_root, results_dir, weights):
    report = evaluate_results(_config(results_dir, demo_root, weights, protocol='intrinsic_flow'))
    assert report['protocol'] == 'intrinsic_flow' and report['changes'] == {}
    assert set(report['metrics']) == {'ssim', 'mask_ssim', 'psnr', 'is', 'masked_is'}
    assert report['skipped_metrics'] == {}
    pairs = _test_pairs(demo_root)  # the split's order (the original's test pass)
    assert report['images']['n_used'] == len(pairs) == 12 and report['images']['n_skipped'] == 0

    gen, tgt = _decoded(results_dir, demo_root, pairs, 'cv2')
    # The test pass compared with the normalised target tensor converted back by truncation.
    tgt_rt = to_uint8(torch.from_numpy(((tgt.astype(np.float32) / 255 - 0.5) / 0.5).transpose(0, 3, 1, 2)))
    assert not np.array_equal(tgt_rt.numpy(), tgt)
    poses = load_pickle(demo_root / 'Label' / 'pose_label.pkl')
    kps = torch.from_numpy(np.stack([np.asarray(poses[b], dtype=np.float32) for _, b in pairs]))
    mask = get_pose_mask_batch(kps, (128, 64), transposed=True)
    m = report['metrics']
    assert m['ssim']['value'] == _batch_means(ssim_batch(gen, tgt_rt).numpy())
    assert m['mask_ssim']['value'] == _batch_means(ssim_batch(gen, tgt_rt, mask).numpy())
    assert m['psnr']['value'] == _batch_means(psnr_batch(gen, tgt_rt).numpy())
    # IS and masked IS: the folder scripts' functions (list, seeded shuffle, 10 splits) give the same number.
    ref_is = compute_inception_score(results_dir, weights_path=weights.inception, seed=0)
    assert m['is']['value'] == pytest.approx(ref_is['inception_score'], rel=1e-12)
    assert m['is']['split_scores'] == pytest.approx(ref_is['split_scores'], rel=1e-12)
    ref_mis = compute_masked_inception_score(results_dir, pose_file=demo_root / 'Label' / 'pose_label.pkl',
                                             weights_path=weights.inception, seed=0)
    assert m['masked_is']['value'] == pytest.approx(ref_mis['inception_score'], rel=1e-12)

    # The report: settings, counts, versions, weights' hashes, Markdown row.
    assert report['settings']['ssim']['window'] == 7 and report['settings']['averaging']['batch_size'] == 8
    assert report['versions']['torch'] == torch.__version__
    assert {w['sha256'] for w in report['weights'].values()} and all(
        len(w['sha256']) == 64 for w in report['weights'].values())
    row = report['markdown'].splitlines()[2]
    assert row.startswith('| test_test_best | intrinsic_flow | 12 |') and f"{m['ssim']['value']:.4f}" in row


@pytest.mark.slow
def test_gfla_equals_the_metric_functions(demo_root, results_dir, weights):
    report = evaluate_results(_config(results_dir, demo_root, weights, protocol='gfla'))
    assert report['protocol'] == 'gfla' and report['skipped_metrics'] == {}
    assert set(report['metrics']) == {'fid', 'lpips', 'mask_lpips', 'ssim', 'ssim_gauss', 'psnr'}
    pairs = sorted(_test_pairs(demo_root), key=lambda p: f'{p[0]}_{p[1]}.jpg')  # GFLA: sorted generated names
    gen, tgt = _decoded(results_dir, demo_root, pairs, 'pil')
    m = report['metrics']

    assert m['ssim']['value'] == pytest.approx(
        ssim_configurable(gen, tgt, SSIMSettings(window=51, scaling='unit_float32')).mean().item(), abs=1e-15)
    gauss = SSIMSettings(window=None, gaussian=True, sigma=1.5, scaling='unit_float32_x255',
                         data_range='generated_range', sample_covariance=False)
    assert m['ssim_gauss']['value'] == pytest.approx(ssim_configurable(gen, tgt, gauss).mean().item(), abs=1e-15)
    assert m['psnr']['value'] == pytest.approx(
        psnr_batch(gen, tgt, PSNRSettings('unit_float32')).mean().item(), abs=1e-12)

    # LPIPS: 12 pairs < 64, so GFLA's batch shrinks to 12 and nothing is dropped; = the folder LPIPS.
    ref = compute_lpips(results_dir, demo_root / 'Img' / 'img', backbone_weights=weights.alexnet)
    assert m['lpips']['n_images'] == 12 and m['lpips']['n_dropped'] == 0
    assert m['lpips']['value'] == pytest.approx(ref['lpips'], abs=1e-6)
    # mask-LPIPS: GFLA's mask (row = y, no 1e-8), multiplied into both images after the scaling to [-1, 1].
    poses = load_pickle(demo_root / 'Label' / 'pose_label.pkl')
    kps = np.stack([np.asarray(poses[b], dtype=np.float64) for _, b in pairs])
    masks = pose_masks(kps, (128, 64), PoseMaskSettings(transposed=False, norm_eps=0.0, keypoint_dtype='float64'))
    model = build_lpips('alex', '0.1', weights.alexnet)
    assert m['mask_lpips']['value'] == pytest.approx(lpips_arrays(model, gen, tgt, masks).mean().item(), abs=1e-6)

    # FID: torchvision Inception with the early pytorch-fid input mapping; real set = the 16 training images.
    net = TorchvisionInceptionPool(weights.fid_torchvision)
    train = sorted({i for p in json.loads((demo_root / 'Label' / 'pair_split.json').read_text())['train'] for i in p})
    real = np.stack([decode_image(demo_root / 'Img' / 'img' / f'{i}.jpg', 'pil') for i in train])
    assert m['fid']['n_real'] == len(train) == 16 and m['fid']['n_images'] == 12
    assert m['fid']['value'] == pytest.approx(frechet_distance_sqrtm(net.features(gen), net.features(real)),
                                              rel=1e-6)
    assert 'rank deficient' in m['fid']['note']


def test_custom_overrides_are_named_and_listed(demo_root, results_dir, weights, tmp_path):
    report = evaluate_results(_config(results_dir, demo_root, weights, protocol='gfla', metrics=['ssim', 'psnr'],
                                      overrides=['ssim.window=11', 'psnr.scaling=uint8']))
    assert report['protocol'] == 'custom' and report['base_protocol'] == 'gfla'
    assert report['changes'] == {'ssim.window': [51, 11], 'psnr.scaling': ['unit_float32', 'uint8']}
    pairs = sorted(_test_pairs(demo_root), key=lambda p: f'{p[0]}_{p[1]}.jpg')
    gen, tgt = _decoded(results_dir, demo_root, pairs, 'pil')
    assert report['metrics']['ssim']['value'] == pytest.approx(
        ssim_configurable(gen, tgt, SSIMSettings(window=11, scaling='unit_float32')).mean().item(), abs=1e-15)
    assert '| custom (gfla) |' in report['markdown']
    # Extras outside the protocol's list make it custom too; a subset of its own list does not.
    _, changes = customize(INTRINSIC_FLOW, (), ['ssim', 'lpips'], 'demo')
    assert changes == {'metrics': [list(INTRINSIC_FLOW.metrics('demo')), ['ssim', 'lpips']]}
    assert customize(GFLA, (), ['ssim'], 'demo') == (GFLA, {})
    # Setting a value back to the protocol's own is no change.
    assert customize(GFLA, ['ssim.window=11', 'ssim.window=51'])[1] == {}
    for bad, match in ((['ssim.size=3'], 'no setting'), (['foo.window=3'], 'unknown section'),
                       (['ssim.window=eight'], 'not an integer'), (['ssim.window=8'], 'odd'),
                       (['ssim.window'], 'expected')):
        with pytest.raises(ValueError, match=match):
            customize(GFLA, bad)


def test_missing_weights_skip_only_that_metric(demo_root, results_dir, tmp_path, capsys):
    none = WeightPaths(inception=str(tmp_path / 'absent-inception.pth'), checkpoints_dir=str(tmp_path))
    report = evaluate_results(_config(results_dir, demo_root, none, protocol='intrinsic_flow'))
    out = capsys.readouterr().out
    assert set(report['metrics']) == {'ssim', 'mask_ssim', 'psnr'}
    assert set(report['skipped_metrics']) == {'is', 'masked_is'}
    assert 'skipped is:' in out and 'absent-inception.pth' in out
    assert report['markdown'].splitlines()[0].endswith('| IS | masked IS |')
    assert report['markdown'].splitlines()[2].endswith('| – | – |')
    with pytest.raises(EvaluationError, match='--strict: metrics skipped'):
        evaluate_results(_config(results_dir, demo_root, none, protocol='intrinsic_flow', strict=True))


# --------------------------------------------------------------------------------------------------
# The gfla_256x176 size rule on a hand-made image
# --------------------------------------------------------------------------------------------------
def test_center_crop_rule_keeps_columns_40_to_215():
    img = np.zeros((256, 256, 3), np.uint8)
    img[..., 0] = np.arange(256)[None, :]          # red = column
    img[..., 1] = np.arange(256)[:, None]          # green = row
    protocol = get_protocol('gfla_256x176')
    size = protocol.image.size('deepfashion')
    assert size == (256, 176) and protocol.image.resize_rule == 'center_crop'
    out = resize_image(img, size, protocol.image.resize_rule)
    assert out.shape == (256, 176, 3)
    assert np.array_equal(out[0, :, 0], np.arange(40, 216)) and np.array_equal(out[:, 0, 1], np.arange(256))
    assert center_crop_box((256, 256), (256, 176)) == (0, 40)
    # Keypoints follow the crop; missing joints stay -1.
    kps = np.array([[40.0, 10.0], [215.0, 255.0], [-1.0, -1.0]])
    assert np.array_equal(transform_keypoints(kps, (256, 256), size, 'center_crop'),
                          [[0.0, 10.0], [175.0, 255.0], [-1.0, -1.0]])
    # The resampling rules give the same size; 'none' refuses.
    for rule in ('cv2_bilinear', 'pil_bicubic'):
        assert resize_image(img, size, rule).shape == (256, 176, 3)
    with pytest.raises(ValueError, match='resizes nothing'):
        resize_image(img, size, 'none')
    with pytest.raises(ValueError, match='cannot make'):
        resize_image(img[:, :100], size, 'center_crop')


def test_gfla_256x176_crops_native_images_in_the_pass(demo_root, results_dir, weights):
    """Demo images (128x64) cropped to 128x48 by the same rule: generated and target both, and SSIM sees the crop."""
    report = evaluate_results(_config(results_dir, demo_root, weights, protocol='gfla_256x176', metrics=['psnr'],
                                      overrides=['image.demo_size=128x48']))
    assert report['image_size'] == [128, 48] and report['changes'] == {'image.demo_size': [[128, 64], [128, 48]]}
    pairs = sorted(_test_pairs(demo_root), key=lambda p: f'{p[0]}_{p[1]}.jpg')
    gen, tgt = _decoded(results_dir, demo_root, pairs, 'pil')
    expected = psnr_batch(gen[:, :, 8:56], tgt[:, :, 8:56], PSNRSettings('unit_float32')).mean().item()
    assert report['metrics']['psnr']['value'] == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------------------------------
# Bad inputs: a clear error or a reported skip, never a silent partial average
# --------------------------------------------------------------------------------------------------
def _copy(results_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / 'results'
    shutil.copytree(results_dir, folder)
    return folder


def test_empty_folder_and_missing_folder_are_errors(demo_root, tmp_path, weights):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(EvaluationError, match=r'no images \(\*\.jpg, \*\.png\) in .*empty'):
        evaluate_results(_config(tmp_path / 'empty', demo_root, weights, metrics=['ssim']))
    with pytest.raises(EvaluationError, match='results folder .*absent not found'):
        evaluate_results(_config(tmp_path / 'absent', demo_root, weights, metrics=['ssim']))


def test_names_matching_no_pair(demo_root, results_dir, tmp_path, weights):
    folder = tmp_path / 'strangers'
    folder.mkdir()
    for name in ('a_b.jpg', 'synthid00000004_00front_nobody.jpg'):
        shutil.copy(next(results_dir.iterdir()), folder / name)
    with pytest.raises(EvaluationError, match=r'none of the 2 images .* is named <id_1>_<id_2>.*no_pair'):
        evaluate_results(_config(folder, demo_root, weights, metrics=['ssim']))
    # Mixed with matching files: reported and counted, not averaged in; --strict refuses.
    mixed = _copy(results_dir, tmp_path)
    shutil.copy(folder / 'a_b.jpg', mixed / 'a_b.jpg')
    report = evaluate_results(_config(mixed, demo_root, weights, metrics=['ssim']))
    images = report['images']
    assert (images['n_files'], images['n_matched'], images['n_used'], images['n_skipped']) == (13, 12, 12, 1)
    assert images['skipped'] == [{'file': 'a_b.jpg', 'category': 'no_pair',
                                  'reason': images['skipped'][0]['reason']}]
    with pytest.raises(EvaluationError, match='--strict: 1 file'):
        evaluate_results(_config(mixed, demo_root, weights, metrics=['ssim'], strict=True))


def test_wrong_size_and_corrupt_images_are_skipped_and_counted(demo_root, results_dir, tmp_path, weights, capsys):
    folder = _copy(results_dir, tmp_path)
    files = sorted(folder.iterdir())
    small = cv2.resize(cv2.imread(str(files[0])), (32, 64))
    assert cv2.imwrite(str(files[0]), small)
    files[1].write_bytes(files[1].read_bytes()[:500])      # truncated JPEG
    files[2].write_bytes(b'not an image at all, but named .jpg \xff\xd9')
    report = evaluate_results(_config(folder, demo_root, weights, metrics=['ssim', 'psnr']))
    images = report['images']
    assert images['n_used'] == 9 and images['n_skipped'] == 3
    assert images['skipped_by_reason'] == {'wrong_size': 1, 'unreadable': 2}
    assert report['metrics']['ssim']['n_images'] == 9
    reasons = {s['file']: s['reason'] for s in images['skipped']}
    assert '64x32 (HxW)' in reasons[files[0].name] and '128x64' in reasons[files[0].name]
    assert 'truncated' in reasons[files[1].name] and 'cannot be decoded' in reasons[files[2].name]
    assert 'skipped 3 of 12 files' in capsys.readouterr().out
    # The value is the mean over the 9 usable pairs only.
    keep = [p for p in _test_pairs(demo_root) if f'{p[0]}_{p[1]}.jpg' not in reasons]
    gen, tgt = _decoded(folder, demo_root, keep, 'cv2')
    tgt_rt = to_uint8(torch.from_numpy(((tgt.astype(np.float32) / 255 - 0.5) / 0.5).transpose(0, 3, 1, 2)))
    assert report['metrics']['ssim']['value'] == _batch_means(ssim_batch(gen, tgt_rt).numpy())
    with pytest.raises(EvaluationError, match='--strict: 3 file'):
        evaluate_results(_config(folder, demo_root, weights, metrics=['ssim'], strict=True))
    # Nothing usable at all: an error, not an empty average.
    for f in folder.iterdir():
        f.write_bytes(b'broken')
    with pytest.raises(EvaluationError, match='no usable image'):
        evaluate_results(_config(folder, demo_root, weights, metrics=['ssim']))


def test_missing_pairs_of_the_split_are_reported(demo_root, results_dir, tmp_path, weights, capsys):
    folder = _copy(results_dir, tmp_path)
    sorted(folder.iterdir())[0].unlink()
    report = evaluate_results(_config(folder, demo_root, weights, metrics=['psnr']))
    assert report['images']['n_split_pairs'] == 12 and report['images']['n_split_pairs_without_image'] == 1
    assert 'note: 1 of the 12 pairs of the split have no image' in capsys.readouterr().out
    with pytest.raises(EvaluationError, match='1 pair'):
        evaluate_results(_config(folder, demo_root, weights, metrics=['psnr'], strict=True))


def test_markdown_table_combines_reports(demo_root, results_dir, weights):
    a = evaluate_results(_config(results_dir, demo_root, weights, metrics=['psnr'], label='A'))
    b = evaluate_results(_config(results_dir, demo_root, weights, protocol='gfla', metrics=['ssim'], label='B'))
    lines = markdown_table([a, b]).splitlines()
    assert lines[0] == '| model | protocol | images | SSIM | PSNR |'
    assert lines[2].startswith('| A | intrinsic_flow | 12 | – |') and lines[3].startswith('| B | gfla | 12 |')


def test_gt_dir_targets_give_the_same_values(demo_root, results_dir, weights, capsys):
    """--gt_dir (+ --pose_file) instead of the dataset: same pairs, same values; without --real_dir the FID real
    set is unknown, which skips FID with the reason."""
    by_split = evaluate_results(_config(results_dir, demo_root, weights, protocol='gfla',
                                        metrics=['ssim', 'psnr', 'mask_ssim']))
    by_folder = evaluate_results(EvalConfig(
        results_dir=str(results_dir), dataset_name='demo', protocol='gfla',
        metrics=['ssim', 'psnr', 'mask_ssim', 'fid'],
        gt_dir=str(demo_root / 'Img' / 'img'), pose_file=str(demo_root / 'Label' / 'pose_label.pkl'),
        weights=weights, progress=False))
    for name in ('ssim', 'psnr', 'mask_ssim'):
        assert by_folder['metrics'][name]['value'] == by_split['metrics'][name]['value']
    assert by_folder['images']['n_used'] == 12 and by_folder['images']['n_split_pairs'] is None
    assert '--real_dir' in by_folder['skipped_metrics']['fid']
    # Without a pose file the masked metrics are skipped, the others run.
    no_pose = evaluate_results(EvalConfig(results_dir=str(results_dir), dataset_name='demo', protocol='gfla',
                                          metrics=['psnr', 'mask_ssim'], gt_dir=str(demo_root / 'Img' / 'img'),
                                          weights=weights, progress=False))
    assert set(no_pose['metrics']) == {'psnr'} and '--pose_file' in no_pose['skipped_metrics']['mask_ssim']
