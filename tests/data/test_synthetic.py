"""The synthetic dataset generator: layout and formats, exactness of the ground truth, determinism, CLI."""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from data.synthetic import (DemoConfig, dataset_is_complete, generate_demo_dataset, is_complete, make_scene,
                            parse_image_id, self_check)
from data.synthetic.body import PART_SEG, TORSO
from data.synthetic.generate import to_uint8
from data.synthetic.render import BACKGROUND_STYLES, correspondence, coverage, local_coords, render
from tests.data.helpers import SMALL_CONFIG
from util.flow_util import corr_file_size, read_corr
from util.io import load_json, load_pickle

REPO = Path(__file__).resolve().parents[2]


def _load_script(name: str):
    sys.path.insert(0, str(REPO / 'scripts'))
    try:
        spec = importlib.util.spec_from_file_location(f'_script_{name}', REPO / 'scripts' / f'{name}.py')
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / 'scripts'))
    return module


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


def test_layout_and_formats(demo_root: Path) -> None:
    h, w = SMALL_CONFIG.image_size
    label = load_pickle(demo_root / 'Label/pose_label.pkl')
    adapt = load_pickle(demo_root / 'Label/pose_label_adapt.pkl')
    split = load_json(demo_root / 'Label/pair_split.json')
    clean = load_json(demo_root / 'Label/pair_split_clean.json')
    assert set(split) == {'train', 'test', 'test_small'} and set(clean) == {'train', 'test'}
    n_img = SMALL_CONFIG.n_identities * SMALL_CONFIG.images_per_identity
    assert len(label) == len(adapt) == n_img == len(list((demo_root / 'Img/img').glob('*.jpg')))
    n = SMALL_CONFIG.images_per_identity
    assert len(split['train']) == SMALL_CONFIG.n_train_identities * n * (n - 1)
    assert len(split['test']) == SMALL_CONFIG.n_test_identities * SMALL_CONFIG.test_pairs_per_identity
    assert len(split['test_small']) == SMALL_CONFIG.n_test_small
    assert all(p in split['test'] for p in split['test_small'])
    assert clean['train'] == split['train'] and clean['test'] == split['test']
    # Pairs: same identity, different images; train and test identities disjoint.
    for pairs in (split['train'], split['test']):
        for id1, id2 in pairs:
            assert id1 != id2 and parse_image_id(id1)[0] == parse_image_id(id2)[0]
            assert (demo_root / '3d/hmr/corr' / f'{id2}_{id1}.corr').stat().st_size == corr_file_size(h, w)
    train_ids = {parse_image_id(i)[0] for p in split['train'] for i in p}
    test_ids = {parse_image_id(i)[0] for p in split['test'] for i in p}
    assert train_ids and test_ids and not train_ids & test_ids
    # DeepFashion id convention: 'id' + 8 digits, exactly one '_'.
    assert all(i.count('_') == 1 and 'synthid' in i for i in label)
    seg_classes = set()
    for img_id in label:
        img = cv2.imread(str(demo_root / 'Img/img' / f'{img_id}.jpg'), cv2.IMREAD_UNCHANGED)
        seg = cv2.imread(str(demo_root / 'Img/seg' / f'{img_id}.bmp'), cv2.IMREAD_UNCHANGED)
        assert img.shape == (h, w, 3) and seg.shape == (h, w) and seg.dtype == np.uint8
        seg_classes |= set(np.unique(seg).tolist())
        lab, ada = np.array(label[img_id]), np.array(adapt[img_id])
        assert lab.shape == ada.shape == (18, 2)
        # Exact joints: -1 only out of frame; label = rounded joints, face hidden on back views.
        out = (ada[:, 0] == -1)
        assert np.all((ada[~out] >= 0).all(axis=1) & (ada[~out, 0] < w) & (ada[~out, 1] < h))
        ok = (lab[:, 0] != -1)
        np.testing.assert_array_equal(lab[ok], np.round(ada[ok]))
        if img_id.endswith('back'):
            assert (lab[[0, 14, 15]] == -1).all()
    assert seg_classes == set(range(7))
    manifest = load_json(demo_root / 'manifest.json')
    assert manifest['config'] == SMALL_CONFIG.to_dict() and is_complete(demo_root)


def test_correspondence_hand_checked_cases() -> None:
    """Identity pair -> pixel grid and vis 0; other side -> vis 1; a torso moved in front occludes the arms."""
    config = SMALL_CONFIG
    h, w = config.image_size
    scene = make_scene(config, 0)
    frame = scene.frames[0]
    r = render(scene.ident, frame, config.image_size)
    body = r['part'] >= 0
    corr, vis = correspondence(scene.ident, r, frame, config.image_size)
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), axis=2)
    np.testing.assert_allclose(corr[body], grid[body], atol=1e-4)
    assert (vis[body] == 0).all() and (vis[~body] == 2).all() and (corr[~body] == 0).all()
    # Same geometry seen from the other side: every body point is hidden.
    other = dataclasses.replace(frame, side=1 - frame.side)
    _, vis_other = correspondence(scene.ident, r, other, config.image_size)
    assert (vis_other[body] == 1).all()
    # Torso brought to the front in the source: exactly the non-torso pixels it covers become hidden.
    depth = frame.depth.copy()
    depth[TORSO] = -10.0
    front = dataclasses.replace(frame, depth=depth)
    _, vis_front = correspondence(scene.ident, r, front, config.image_size)
    ys, xs = np.mgrid[0:h, 0:w]
    a, b = local_coords(frame, np.stack([xs.ravel(), ys.ravel()], 1).astype(float))
    torso_cov = coverage(scene.ident, a[TORSO:TORSO + 1], b[TORSO:TORSO + 1], np.array([TORSO]))[0].reshape(h, w)
    expected = np.where(body, np.where(torso_cov & (r['part'] != TORSO), 1, 0), 2)
    np.testing.assert_array_equal(vis_front, expected)
    assert (expected == 1).sum() > 0
    # Segmentation follows the part map.
    np.testing.assert_array_equal(r['seg'][body], PART_SEG[r['part'][body]])


def test_self_check_small_error_and_vis1_present(demo_root: Path) -> None:
    res = self_check(demo_root, n_pairs=24)
    assert res['n_pairs'] == 24
    assert res['corr_max_abs_diff'] == 0 and res['vis_mismatch'] == 0
    # Limited by bilinear resampling of smooth textures (interior) and of silhouettes (all visible).
    assert res['mae_interior_memory'] < 5.0, res
    assert res['mae_visible_memory'] < 9.0, res
    assert res['mae_visible_jpeg'] < 12.0, res
    assert res['jpeg_vs_render_mae'] < 3.0, res
    assert 0.02 < res['vis1_fraction'] < 0.9 and res['pairs_with_vis1'] > 0, res


def test_warp_error_is_large_for_wrong_pairs(demo_root: Path) -> None:
    """The self-check can fail: the ground truth of another pair does not reproduce the target."""
    from util.flow_util import warp_acc_flow
    import torch
    from util.flow_util import corr_to_flow
    split = load_json(demo_root / 'Label/pair_split.json')['train']
    (id1, id2), (_, id2b) = split[0], split[1]
    corr, vis = read_corr(demo_root / '3d/hmr/corr' / f'{id2b}_{id1}.corr')  # belongs to another target
    src = cv2.imread(str(demo_root / 'Img/img' / f'{id1}.jpg'))[:, :, ::-1] / 255.0
    tgt = cv2.imread(str(demo_root / 'Img/img' / f'{id2}.jpg'))[:, :, ::-1] / 255.0
    flow = torch.from_numpy(corr_to_flow(corr, vis)).permute(2, 0, 1)[None].double()
    out = warp_acc_flow(torch.from_numpy(src.copy()).permute(2, 0, 1)[None], flow)[0].permute(1, 2, 0).numpy()
    m = vis[:, :, 0] == 0
    assert np.abs(out - tgt)[m].mean() * 255 > 20


@pytest.mark.parametrize('background', BACKGROUND_STYLES)
def test_deterministic_and_independent_of_workers(tmp_path: Path, background: str) -> None:
    cfg = DemoConfig(seed=7, image_size=(64, 32), n_train_identities=2, n_test_identities=1,
                     images_per_identity=3, test_pairs_per_identity=2, n_test_small=2, background=background)
    generate_demo_dataset(tmp_path / 'a', cfg, workers=1, verbose=False)
    generate_demo_dataset(tmp_path / 'b', cfg, workers=2, verbose=False)
    generate_demo_dataset(tmp_path / 'c', dataclasses.replace(cfg, seed=8), workers=1, verbose=False)
    a, b, c = _tree_bytes(tmp_path / 'a'), _tree_bytes(tmp_path / 'b'), _tree_bytes(tmp_path / 'c')
    assert len(a) == 3 * 3 + 3 * 3 + 2 * 6 + 2 + 4 + 1  # jpg, bmp, corr (train+test), pkl, json, manifest
    assert a == b
    assert a.keys() != c.keys() or any(a[k] != c[k] for k in a)
    assert not list(tmp_path.glob('.*.partial'))


def test_existing_and_interrupted_outputs(tmp_path: Path) -> None:
    cfg = DemoConfig(seed=1, image_size=(64, 32), n_train_identities=1, n_test_identities=1,
                     images_per_identity=2, test_pairs_per_identity=0, n_test_small=1)
    out = tmp_path / 'd'
    generate_demo_dataset(out, cfg, workers=1, verbose=False)
    mtime = (out / 'manifest.json').stat().st_mtime_ns
    assert generate_demo_dataset(out, cfg, workers=1, verbose=False)['skipped']
    assert (out / 'manifest.json').stat().st_mtime_ns == mtime
    with pytest.raises(FileExistsError, match='different parameters'):
        generate_demo_dataset(out, dataclasses.replace(cfg, seed=2), workers=1, verbose=False)
    (out / 'manifest.json').unlink()  # what an interrupted or foreign folder looks like
    assert not is_complete(out) and not dataset_is_complete(out) and not is_complete(tmp_path / 'missing')
    with pytest.raises(FileExistsError, match='--force'):
        generate_demo_dataset(out, cfg, workers=1, verbose=False)
    generate_demo_dataset(out, cfg, workers=1, verbose=False, force=True)
    assert is_complete(out)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match='images_per_identity'):
        DemoConfig(images_per_identity=1)
    with pytest.raises(ValueError, match='image_size'):
        DemoConfig(image_size=(16, 16))
    with pytest.raises(ValueError, match='unknown keys'):
        DemoConfig.from_dict({'seed': 0, 'size': 3})
    with pytest.raises(ValueError, match="background must be one of \\['studio', 'cluttered'\\]"):
        DemoConfig(background='street')


def test_cli(demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    script = _load_script('make_demo_dataset')
    size = [str(v) for v in SMALL_CONFIG.image_size]
    args = ['--out', str(demo_root), '--seed', str(SMALL_CONFIG.seed), '--size', *size,
            '--n_identities', str(SMALL_CONFIG.n_train_identities),
            '--n_test_identities', str(SMALL_CONFIG.n_test_identities),
            '--images_per_identity', str(SMALL_CONFIG.images_per_identity),
            '--test_pairs_per_identity', str(SMALL_CONFIG.test_pairs_per_identity),
            '--n_test_small', str(SMALL_CONFIG.n_test_small), '--p_back', str(SMALL_CONFIG.p_back)]
    assert script.main(args + ['--check', '--check_pairs', '8']) == 0
    out = capsys.readouterr().out
    assert 'already complete' in out and 'self-check on 8 pairs' in out
    assert script.main(['--out', str(demo_root), '--seed', '99', '--quiet']) == 2
    assert 'different parameters' in capsys.readouterr().err
    new = tmp_path / 'new'
    assert script.main(['--out', str(new), '--size', '64', '32', '--n_identities', '1', '--n_test_identities', '1',
                        '--images_per_identity', '2', '--background', 'cluttered', '--quiet']) == 0
    config = load_json(new / 'manifest.json')['config']
    assert is_complete(new) and config['image_size'] == [64, 32] and config['background'] == 'cluttered'
    assert script.config_from_argv(['--background', 'cluttered']) == DemoConfig(background='cluttered')


# Renders (uint8 images and segmentations) of TINY_CONFIG in the cluttered style, hashed with the generator as
# it was before the background option existed: the cluttered style must keep producing exactly these pixels.
TINY_CONFIG = DemoConfig(seed=11, image_size=(64, 32), n_train_identities=2, n_test_identities=1,
                         images_per_identity=3, test_pairs_per_identity=2, n_test_small=1, background='cluttered')
CLUTTERED_RENDER_SHA256 = '33e532c3b7af3390df9152df8ed28c8f2de56bb21cf7d46db9b2c02d8736c525'


def _background_pixels(config: DemoConfig, n_identities: int) -> list[list[np.ndarray]]:
    """Per identity, per photo: the rendered background pixels, float ``[M, 3]`` in [0, 1]."""
    out = []
    for index in range(n_identities):
        scene = make_scene(config, index)
        renders = [render(scene.ident, f, config.image_size) for f in scene.frames]
        out.append([r['image'][r['part'] < 0] for r in renders])
    return out


def test_cluttered_style_renders_as_before() -> None:
    digest = hashlib.sha256()
    for index in range(TINY_CONFIG.n_identities):
        scene = make_scene(TINY_CONFIG, index)
        for frame in scene.frames:
            r = render(scene.ident, frame, TINY_CONFIG.image_size)
            digest.update(to_uint8(r['image']).tobytes())
            digest.update(r['seg'].tobytes())
    assert digest.hexdigest() == CLUTTERED_RENDER_SHA256


def test_styles_differ_only_in_the_background(tmp_path: Path) -> None:
    """One seed, both styles: same people, poses and ground-truth files; only background pixels differ."""
    studio = dataclasses.replace(TINY_CONFIG, background='studio')
    for index in range(studio.n_identities):
        s, c = make_scene(studio, index), make_scene(TINY_CONFIG, index)
        assert s.ids == c.ids and s.pairs == c.pairs
        for fs, fc in zip(s.frames, c.frames):
            rs, rc = render(s.ident, fs, studio.image_size), render(c.ident, fc, studio.image_size)
            body = rs['part'] >= 0
            np.testing.assert_array_equal(rs['part'], rc['part'])
            np.testing.assert_array_equal(rs['image'][body], rc['image'][body])
            assert np.abs(rs['image'][~body] - rc['image'][~body]).mean() > 0.05
    roots = {}
    # The self-check's resampling error needs the demo's resolution to be small.
    for config in (dataclasses.replace(c, image_size=(128, 64)) for c in (studio, TINY_CONFIG)):
        roots[config.background] = tmp_path / config.background
        generate_demo_dataset(roots[config.background], config, workers=1, verbose=False)
    trees = {k: _tree_bytes(v) for k, v in roots.items()}
    assert trees['studio'].keys() == trees['cluttered'].keys()
    for key in trees['studio']:
        same = trees['studio'][key] == trees['cluttered'][key]
        assert same == (key.startswith('Img/seg') or key.startswith('3d/') or key.startswith('Label')), key
    for root in roots.values():  # the ground truth reproduces the images in both styles
        res = self_check(root, n_pairs=6)
        assert res['corr_max_abs_diff'] == 0 and res['vis_mismatch'] == 0, res
        assert res['mae_interior_memory'] < 5.0 and res['mae_visible_memory'] < 12.0, res


def test_studio_backgrounds_are_light_plain_and_shared_within_an_identity() -> None:
    config = DemoConfig(seed=2, image_size=(128, 64), images_per_identity=4)
    n = 8
    studio = _background_pixels(config, n)
    for identity in studio:
        means = np.array([px.mean(axis=0) for px in identity])  # [photos, 3]
        assert means.mean() > 0.7  # light
        assert (means.max(axis=1) - means.min(axis=1)).max() < 0.1  # nearly neutral
        assert max(px.std(axis=0).max() for px in identity) < 0.05  # plain
        assert np.abs(means - means.mean(axis=0)).max() < 0.04  # same backdrop, mild per-photo variation
    # Every photo of an identity carries the identity's backdrop; identities have different ones.
    backdrops = [[f.background['backdrop'] for f in make_scene(config, i).frames] for i in range(n)]
    assert all(b is photos[0] for photos in backdrops for b in photos)
    colors = np.array([photos[0]['color'] for photos in backdrops])
    assert len({tuple(c) for c in colors.round(6)}) == n
    identity_means = np.array([np.mean([px.mean(axis=0) for px in identity], axis=0) for identity in studio])
    assert np.abs(identity_means[:, None] - identity_means[None]).max() > 0.03
    # The statistics discriminate: the cluttered style fails them.
    cluttered = _background_pixels(dataclasses.replace(config, background='cluttered'), n)
    stds = [px.std(axis=0).max() for identity in cluttered for px in identity]
    assert np.median(stds) > 0.05


def test_format_1_folder_is_the_cluttered_style(demo_root: Path, tmp_path: Path) -> None:
    """A folder written before the background option is complete for the cluttered config only."""
    old = tmp_path / 'old'
    generate_demo_dataset(old, TINY_CONFIG, workers=1, verbose=False)
    manifest = load_json(old / 'manifest.json')
    del manifest['config']['background']
    manifest['format_version'] = 1
    (old / 'manifest.json').write_text(json.dumps(manifest))
    assert is_complete(old) and is_complete(old, TINY_CONFIG) and dataset_is_complete(old, TINY_CONFIG)
    studio = dataclasses.replace(TINY_CONFIG, background='studio')
    assert not is_complete(old, studio) and not dataset_is_complete(old, studio)
    assert generate_demo_dataset(old, TINY_CONFIG, workers=1, verbose=False)['skipped']
    with pytest.raises(FileExistsError, match='different parameters'):
        generate_demo_dataset(old, studio, workers=1, verbose=False)
    assert is_complete(demo_root, SMALL_CONFIG)
    assert not is_complete(demo_root, dataclasses.replace(SMALL_CONFIG, background='cluttered'))
