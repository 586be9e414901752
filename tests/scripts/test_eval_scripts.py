"""Smoke tests of the evaluation scripts: each ``main(argv)`` on a folder of generated-looking images
``<id_1>_<id_2>.jpg`` with random-weight networks saved in the real formats, and the documented error
when a weights file is missing."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.metrics.weights_helpers import (DF_IDS, MARKET_IDS, alexnet_weights, classifier_weights,
                                           fidelity_inception_weights, imagenet_resnet50_weights, pair_stems,
                                           write_images)
from util.io import save_json, save_pickle

SCRIPTS = Path(__file__).resolve().parents[2] / 'scripts'


def load_script(name: str, monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))  # for `import _path`
    spec = importlib.util.spec_from_file_location(f'eval_script_{name}', SCRIPTS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def market(tmp_path_factory):
    root = tmp_path_factory.mktemp('market')
    write_images(root / 'real', MARKET_IDS[:3], seed=1)
    write_images(root / 'gen', pair_stems(MARKET_IDS[:3], 4), seed=2)
    rng = np.random.default_rng(0)
    poses = {i: np.stack([rng.uniform(1, 31, 18), rng.uniform(1, 63, 18)], axis=1).tolist() for i in MARKET_IDS}
    save_pickle(poses, root / 'pose_label.pkl')
    return root


@pytest.fixture(scope='module')
def deepfashion(tmp_path_factory):
    root = tmp_path_factory.mktemp('deepfashion')
    write_images(root / 'gen', pair_stems(DF_IDS, 4), seed=3)
    write_images(root / 'img', DF_IDS, seed=4)
    rng = np.random.default_rng(1)
    attrs = {i: (rng.random(347) < 0.05).astype(np.int64) for i in DF_IDS}
    save_pickle({'label': attrs, 'entry': [f'attr{a}' for a in range(347)]}, root / 'attr_label.pkl')
    save_json({i: k % 23 for k, i in enumerate(DF_IDS)}, root / 'class_label.json')
    save_json({'train': DF_IDS[:4], 'test': DF_IDS[4:]}, root / 'image_split.json')
    return root


RESULT_LINE = re.compile(r'^\[Inception Score\] inception_score: \d+\.\d{3} \(std: \d+\.\d{3}\)$', re.M)


def test_inception_score_script(market, tmp_path_factory, monkeypatch, capsys):
    script = load_script('inception_score', monkeypatch)
    weights = fidelity_inception_weights(tmp_path_factory)
    result = script.main([str(market / 'gen'), '--seed', '0', '--inception_weights', str(weights),
                          '--n_splits', '2', '--batch_size', '3'])
    out = capsys.readouterr().out
    assert RESULT_LINE.search(out), out
    assert result['n_images'] == 4 and result['inception_score'] >= 1
    assert f"{result['inception_score']:.3f}" in out
    with pytest.raises(FileNotFoundError, match='weights-inception-2015-12-05-6726825d.pth.*https://github.com'):
        script.main([str(market / 'gen'), '--inception_weights', str(market / 'missing.pth')])
    monkeypatch.setitem(sys.modules, 'tensorflow', None)
    with pytest.raises(ImportError, match='requirements-tf.txt'):
        script.main([str(market / 'gen'), '--backend', 'tf'])


def test_metric_scripts_score_the_images_of_a_test_results_folder(market, tmp_path, tmp_path_factory, monkeypatch):
    """Given a test's results folder, the scripts score its images/, never the visual grid beside them."""
    results = tmp_path / 'PoseTransfer_x' / 'test_test_best'
    shutil.copytree(market / 'gen', results / 'images')
    shutil.copy(next((market / 'real').glob('*.jpg')), results / 'vis.jpg')
    (results / 'test_opt.json').write_text('{}')
    script = load_script('inception_score', monkeypatch)
    weights = fidelity_inception_weights(tmp_path_factory)
    args = ['--seed', '0', '--inception_weights', str(weights), '--n_splits', '2', '--batch_size', '3']
    from_results = script.main([str(results), *args])
    from_images = script.main([str(market / 'gen'), *args])
    assert from_results['n_images'] == 4 and from_results['inception_score'] == from_images['inception_score']
    alex = alexnet_weights(tmp_path_factory)
    lpips = load_script('lpips_score', monkeypatch).main([str(results), str(market / 'real'), '--gpu_ids', '-1',
                                                           '--alexnet_weights', str(alex)])
    assert lpips['n_pairs'] == 4
    shutil.rmtree(results / 'images')  # a test run without --save_output
    with pytest.raises(FileNotFoundError, match='--save_output'):
        script.main([str(results), *args])


def test_gpu_ids_select_the_device_without_touching_the_environment(market, tmp_path_factory, monkeypatch):
    script = load_script('inception_score', monkeypatch)
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '3')  # restored after the test
    opt = script.build_parser().parse_args(['some/dir', '-1'])
    assert (opt.img_dir, opt.gpu_ids, opt.seed, opt.backend) == ('some/dir', '-1', None, 'torch')
    weights = fidelity_inception_weights(tmp_path_factory)
    result = script.main([str(market / 'gen'), '-1', '--seed', '0', '--inception_weights', str(weights),
                          '--n_splits', '2'])
    assert result['n_images'] == 4
    assert os.environ['CUDA_VISIBLE_DEVICES'] == '3'


def test_masked_inception_score_script(market, tmp_path_factory, monkeypatch, capsys):
    script = load_script('masked_inception_score', monkeypatch)
    weights = fidelity_inception_weights(tmp_path_factory)
    result = script.main([str(market / 'gen'), '--pose_file', str(market / 'pose_label.pkl'),
                          '--inception_weights', str(weights), '--n_splits', '2', '--seed', '1'])
    out = capsys.readouterr().out
    assert RESULT_LINE.search(out), out
    assert 'pose mask' in out and result['pose_mask_transposed'] is True
    with pytest.raises(FileNotFoundError, match='pose label file'):
        script.main([str(market / 'gen'), '--pose_file', str(market / 'nope.pkl')])
    with pytest.raises(FileNotFoundError, match='weights-inception-2015-12-05-6726825d.pth.*https://github.com'):
        script.main([str(market / 'gen'), '--pose_file', str(market / 'pose_label.pkl'),
                     '--inception_weights', str(market / 'missing.pth')])


def test_fid_script(market, tmp_path_factory, monkeypatch, capsys):
    script = load_script('fid_score', monkeypatch)
    weights = fidelity_inception_weights(tmp_path_factory)
    real = market / 'real'
    result = script.main([str(market / 'gen'), str(real), '--gpu_ids', '-1', '--inception_weights', str(weights)])
    out = capsys.readouterr().out
    assert re.search(rf'^FID \(torch-fidelity 0\.4\.0 inception-v3-compat .*pool3, real={re.escape(str(real))} '
                     rf'\(all\) N=3 .*generated=.* N=4 .*resize to 299\): \d+\.\d{{4}}$', out, re.M), out
    assert result['fid'] > 0 and 'rank deficient' in out
    with pytest.raises(FileNotFoundError, match='weights-inception-2015-12-05-6726825d.pth'):
        script.main([str(market / 'gen'), str(real), '--inception_weights', str(market / 'missing.pth')])


def test_lpips_script(market, tmp_path_factory, monkeypatch, capsys):
    script = load_script('lpips_score', monkeypatch)
    alex = alexnet_weights(tmp_path_factory)
    result = script.main([str(market / 'gen'), str(market / 'real'), '--gpu_ids', '-1', '--alexnet_weights', str(alex)])
    out = capsys.readouterr().out
    assert re.search(r'^LPIPS \(lpips 0\.1\.4 v0\.1 alex, .*N=4 pairs.*\): \d+\.\d{4} \(std: \d+\.\d{4}\)$', out,
                     re.M), out
    assert result['n_pairs'] == 4 and result['lpips'] > 0
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(market / 'empty_hub'))
    with pytest.raises(FileNotFoundError, match='alexnet-owt-7be5be79.pth.*download.pytorch.org'):
        script.main([str(market / 'gen'), str(market / 'real')])


def test_fashion_inception_score_script(deepfashion, tmp_path, tmp_path_factory, monkeypatch, capsys):
    script = load_script('fashion_inception_score', monkeypatch)
    ckpt = tmp_path / 'checkpoints'
    readme_spelling = ckpt / 'Fasion_Inception' / 'default' / 'best.pth'
    readme_spelling.parent.mkdir(parents=True)
    shutil.copy(classifier_weights(tmp_path_factory, 'inception'), readme_spelling)
    test_dir = str(deepfashion / 'gen')
    common = ['--test_dir', test_dir, '--rescale_size', '80', '--crop_size', '75', '--n_test_split', '2',
              '--num_workers', '0', '--gpu_ids', '-1']
    result = script.main(common + ['--checkpoints_dir', str(ckpt)])
    out = capsys.readouterr().out
    assert f'\n{test_dir}\n' in out
    assert re.search(r'^score: \d+\.\d{6}, std: \d+\.\d{6}$', out, re.M), out
    assert result['n_images'] == 4 and result['weights'] == str(readme_spelling)
    with pytest.raises(FileNotFoundError, match='Fashion_Inception/default/best.pth.*Fasion_Inception'):
        script.main(common + ['--checkpoints_dir', str(tmp_path / 'empty')])


def test_fashion_inception_train(deepfashion, tmp_path, monkeypatch, capsys):
    script = load_script('fashion_inception_score', monkeypatch)
    ckpt = tmp_path / 'checkpoints'
    # Inception's auxiliary head needs 299x299 inputs in training mode; two steps of two images.
    result = script.main(['--train', '--id', 'trained', '--from_scratch', '--debug', '--n_epoch', '1',
                          '--batch_size', '2', '--rescale_size', '299', '--crop_size', '299', '--display_freq', '1',
                          '--fn_split', str(deepfashion / 'image_split.json'),
                          '--fn_label', str(deepfashion / 'class_label.json'), '--img_dir', str(deepfashion / 'img'),
                          '--checkpoints_dir', str(ckpt), '--num_workers', '0', '--gpu_ids', '-1'])
    out = capsys.readouterr().out
    assert out.count('step') == 2 and 'test accuracy' in out
    best = ckpt / 'Fashion_Inception' / 'trained' / 'best.pth'
    assert result['best'] == str(best) and (best.parent / 'latest.pth').is_file()
    from metrics.fashion_classifiers import load_classifier
    load_classifier('inception', best)  # strict load of the trained checkpoint


def test_fashion_attribute_score_script(deepfashion, tmp_path_factory, monkeypatch, capsys):
    script = load_script('fashion_attribute_score', monkeypatch)
    weights = classifier_weights(tmp_path_factory, 'attr')
    result = script.main(['--test_dir', str(deepfashion / 'gen'), '--fn_label', str(deepfashion / 'attr_label.pkl'),
                          '--weights', str(weights), '--rescale_size', '40', '--crop_size', '32',
                          '--num_workers', '0', '--gpu_ids', '-1'])
    out = capsys.readouterr().out
    for name in ('mean_ap', 'rec-3', 'rec-5', 'rec-10', 'rec-20'):
        assert re.search(rf'^{name}: -?\d+\.\d{{6}}$', out, re.M), out
    assert 0 <= result['rec-20'] <= 100 and result['n_images'] == 4
    with pytest.raises(FileNotFoundError, match='attribute label file'):
        script.main(['--test_dir', str(deepfashion / 'gen'), '--fn_label', str(deepfashion / 'nope.pkl'),
                     '--weights', str(weights)])
    with pytest.raises(FileNotFoundError, match='Fashion_Attr/default/best.pth.*Fasion_Attr.*download_models.sh'):
        script.main(['--test_dir', str(deepfashion / 'gen'), '--fn_label', str(deepfashion / 'attr_label.pkl'),
                     '--checkpoints_dir', str(deepfashion / 'no_checkpoints')])


def test_fashion_attribute_train(deepfashion, tmp_path, tmp_path_factory, monkeypatch, capsys):
    script = load_script('fashion_attribute_score', monkeypatch)
    ckpt = tmp_path / 'checkpoints'
    args = ['--train', '--id', 'trained', '--debug', '--n_epoch', '1', '--batch_size', '2', '--rescale_size', '40',
            '--crop_size', '32', '--fn_split', str(deepfashion / 'image_split.json'),
            '--fn_label', str(deepfashion / 'attr_label.pkl'), '--img_dir', str(deepfashion / 'img'),
            '--checkpoints_dir', str(ckpt), '--num_workers', '0', '--gpu_ids', '-1']
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'empty_hub'))
    with pytest.raises(FileNotFoundError, match='resnet50-0676ba61.pth.*--from_scratch'):
        script.main(args)
    result = script.main(args + ['--imagenet_weights', str(imagenet_resnet50_weights(tmp_path_factory))])
    out = capsys.readouterr().out
    assert 'initialised from' in out and 'test mean_ap' in out
    from metrics.fashion_classifiers import load_classifier
    model = load_classifier('attr', result['best'])
    imagenet = torch.load(imagenet_resnet50_weights(tmp_path_factory), map_location='cpu', weights_only=True)
    # Trained from the ImageNet init: same shapes, moved by two Adam steps (lr 1e-4).
    delta = (model.conv1.weight - imagenet['conv1.weight']).abs().max().item()
    assert 0 < delta < 1e-3
