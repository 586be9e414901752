"""Inception score, masked IS and the folder/id helpers."""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from tests.metrics.weights_helpers import MARKET_IDS, fidelity_inception_weights, pair_stems, write_images
from metrics import FOLDER_METRICS, METRICS, get_metric
from metrics.image_folder import LabelKeys, apply_by_shape, list_images, match_label_key, split_pair_name
from metrics.inception_score import (INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_URL, TorchFidelityInception,
                                          build_inception_classifier, compute_inception_score,
                                          compute_masked_inception_score, find_inception_weights,
                                          inception_score_from_probs, load_pose_labels, masked_image_loader)


def reference_inception_score(preds: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """The original's formula written with explicit loops (improved-gan)."""
    n = len(preds)
    scores = []
    for i in range(splits):
        part = preds[i * n // splits:(i + 1) * n // splits]
        n_classes = part.shape[1]
        py = [sum(part[r][c] for r in range(len(part))) / len(part) for c in range(n_classes)]
        kl_rows = []
        for r in range(len(part)):
            kl_rows.append(sum(part[r][c] * (math.log(part[r][c]) - math.log(py[c])) for c in range(n_classes)))
        scores.append(math.exp(sum(kl_rows) / len(kl_rows)))
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    return mean, std


def random_probs(n: int, c: int, seed: int) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(scale=3.0, size=(n, c))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize('n, c', [(37, 13), (100, 1008)])
def test_score_matches_reference_loops(n, c):
    probs = random_probs(n, c, seed=n)
    got = inception_score_from_probs(probs)
    ref_mean, ref_std = reference_inception_score(probs)
    assert got['inception_score'] == pytest.approx(ref_mean, abs=1e-6)
    assert got['inception_score_std'] == pytest.approx(ref_std, abs=1e-6)
    assert len(got['split_scores']) == 10


def test_split_boundaries_hand_computed():
    # Every image certain of its own class: the IS of a split equals its size. With n = 23 the splits
    # preds[i*23//10:(i+1)*23//10] have sizes 2,2,2,3,2,2,3,2,2,3.
    probs = np.eye(23)
    got = inception_score_from_probs(probs)
    sizes = [2, 2, 2, 3, 2, 2, 3, 2, 2, 3]
    assert got['split_scores'] == pytest.approx(sizes)
    assert got['inception_score'] == pytest.approx(2.3)
    assert got['inception_score_std'] == pytest.approx(np.std(sizes))


def test_too_few_images_rejected():
    with pytest.raises(ValueError, match='at least 10 images'):
        inception_score_from_probs(random_probs(9, 5, 0))


class IndexClassifier:
    """Fake IS network: each test image is a flat colour encoding its index; returns a fixed table row."""

    def __init__(self, table: np.ndarray) -> None:
        self.table, self.batch_sizes = table, []

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(images))
        return self.table[images[:, 0, 0, 0].astype(int) // 10]


@pytest.fixture
def index_folder(tmp_path):
    from PIL import Image
    folder = tmp_path / 'index'
    folder.mkdir()
    for i in range(21):  # png: lossless colours; names sort in index order
        Image.fromarray(np.full((8, 4, 3), i * 10, dtype=np.uint8)).save(folder / f'img_{i:02d}.png')
    return folder


def test_seeded_shuffle_is_applied_before_splitting(index_folder):
    table = random_probs(21, 7, seed=5)
    clf = IndexClassifier(table)
    got = compute_inception_score(index_folder, classifier=clf, seed=3, batch_size=10)
    perm = np.random.RandomState(3).permutation(21)
    assert got['inception_score'] == pytest.approx(inception_score_from_probs(table[perm])['inception_score'],
                                                   abs=1e-12)
    # The partition matters for these probabilities, so an unshuffled run would differ.
    assert abs(got['inception_score'] - inception_score_from_probs(table)['inception_score']) > 1e-3
    # Batches of 10 with a last batch of a single image (the original's squeeze bug) work.
    assert clf.batch_sizes == [10, 10, 1]
    again = compute_inception_score(index_folder, classifier=IndexClassifier(table), seed=3)
    assert again['inception_score'] == got['inception_score']
    assert got['n_images'] == 21 and got['seed'] == 3


def test_list_images_jpg_then_png(tmp_path):
    write_images(tmp_path, ['b', 'a'], ext='png')
    write_images(tmp_path, ['d', 'c'], ext='jpg')
    (tmp_path / 'notes.txt').write_text('x')
    assert [p.name for p in list_images(tmp_path)] == ['c.jpg', 'd.jpg', 'a.png', 'b.png']
    with pytest.raises(FileNotFoundError, match='missing'):
        list_images(tmp_path / 'missing')


def test_apply_by_shape_keeps_order():
    images = [np.full((4, 2, 3), 1), np.full((6, 2, 3), 2), np.full((4, 2, 3), 3)]
    out = apply_by_shape(lambda x: x.reshape(len(x), -1).sum(axis=1) / x[0].size, images)
    assert out.tolist() == [1, 2, 3]


def test_split_pair_name():
    market = f'{MARKET_IDS[0]}_{MARKET_IDS[2]}'
    assert split_pair_name(market, n_source_fields=4) == (MARKET_IDS[0], MARKET_IDS[2])
    assert split_pair_name(market, set(MARKET_IDS)) == (MARKET_IDS[0], MARKET_IDS[2])
    # DeepFashion ids whose category contains `_` break the original's fixed rule but not the id matching.
    a, b = 'fashionMENTees_Tanksid0000053001_1front', 'fashionMENTees_Tanksid0000053001_7additional'
    assert split_pair_name(f'{a}_{b}', {a, b}) == (a, b)
    assert split_pair_name(f'{a}_{b}', n_source_fields=2) != (a, b)
    with pytest.raises(ValueError, match='no split'):
        split_pair_name(f'{a}_{b}', {'other'})
    # Labels keyed by In-shop item id (`id` + 8 digits of the image id).
    keys = LabelKeys({'id00000530'})
    assert 'fashionXid0000053001_1front' in keys and 'fashionXid0000053101_1front' not in keys
    _, id_2 = split_pair_name(f'{a}_{b}', keys, 2)
    assert match_label_key(id_2, keys.keys) == 'id00000530'
    assert match_label_key(b, {b, 'id00000530'}) == b  # the image id wins over its item id


def test_registry_fails_loudly():
    assert get_metric('is') is compute_inception_score
    assert {'is', 'masked_is', 'fid', 'lpips', 'fashion_is', 'attr_rec'} <= set(FOLDER_METRICS)
    assert {'ssim', 'psnr'} <= set(METRICS)
    with pytest.raises(KeyError, match="valid metrics: .*'fid'"):
        get_metric('inception')


# ------------------------------------------------------------------------------------------------
# Networks
# ------------------------------------------------------------------------------------------------
def test_torch_backend_probs_are_unbiased_softmax(tmp_path_factory):
    weights = fidelity_inception_weights(tmp_path_factory)
    net = TorchFidelityInception(weights, features=('2048', 'logits_unbiased'))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 64, 32, 3), dtype=np.uint8)
    feats = net.features(images)
    probs = net.probs_from_logits(feats['logits_unbiased'])
    state = torch.load(weights, map_location='cpu', weights_only=True)
    logits = feats['2048'].astype(np.float64) @ state['fc.weight'].double().numpy().T  # no bias

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    assert probs.shape == (2, 1008)
    np.testing.assert_allclose(probs, softmax(logits), rtol=1e-4)
    # The bias of the logits layer is left out, as in the original; with it the result would differ.
    biased = softmax(logits + state['fc.bias'].double().numpy())
    assert np.abs(biased / probs - 1).max() > 1e-2
    assert np.abs(probs[0] / probs[1] - 1).max() > 1e-3  # the random network tells images apart
    # A batch of one image (the original's squeeze bug) gives the same probabilities.
    np.testing.assert_allclose(net(images[1:2]), probs[1:2], rtol=1e-5)


def test_missing_inception_weights_message(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as e:
        find_inception_weights(tmp_path / 'nope.pth')
    assert INCEPTION_WEIGHTS_FILE in str(e.value) and INCEPTION_WEIGHTS_URL in str(e.value)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    with pytest.raises(FileNotFoundError) as e:
        build_inception_classifier('torch')
    assert str(tmp_path / 'hub' / 'checkpoints' / INCEPTION_WEIGHTS_FILE) in str(e.value)
    assert INCEPTION_WEIGHTS_URL in str(e.value)
    (tmp_path / 'hub' / 'checkpoints').mkdir(parents=True)
    torch.save({'fc.weight': torch.zeros(1008, 2048)}, tmp_path / 'hub' / 'checkpoints' / INCEPTION_WEIGHTS_FILE)
    assert find_inception_weights() == tmp_path / 'hub' / 'checkpoints' / INCEPTION_WEIGHTS_FILE


def test_tf_backend_without_tensorflow(monkeypatch):
    monkeypatch.setitem(sys.modules, 'tensorflow', None)  # import tensorflow -> ImportError
    with pytest.raises(ImportError, match='pip install -r requirements-tf.txt'):
        build_inception_classifier('tf')
    with pytest.raises(ValueError, match="valid: \\['torch', 'tf'\\]"):
        build_inception_classifier('caffe')


# ------------------------------------------------------------------------------------------------
# Masked IS
# ------------------------------------------------------------------------------------------------
def market_poses(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    poses = {}
    for i, key in enumerate(MARKET_IDS):
        kps = np.stack([rng.uniform(2, 30, 18), rng.uniform(2, 62, 18)], axis=1)
        kps[rng.random(18) < 0.2] = -1
        poses[key] = kps.tolist()  # lists, as in the original pickle
    return poses


def test_masked_loader_multiplies_by_target_mask(tmp_path):
    from util.io import save_pickle
    from util.pose_util import get_pose_mask

    save_pickle(market_poses(), tmp_path / 'pose_label.pkl')
    poses = load_pose_labels(tmp_path / 'pose_label.pkl')
    assert poses[MARKET_IDS[1]].dtype == np.float64
    stem = f'{MARKET_IDS[0]}_{MARKET_IDS[1]}'
    (path,) = write_images(tmp_path / 'gen', [stem], size=(128, 64), ext='png')
    from metrics.image_folder import read_rgb
    img = read_rgb(path)
    for transposed in (True, False):
        mask = get_pose_mask(poses[MARKET_IDS[1]], (128, 64), transposed=transposed)
        got = masked_image_loader(poses, transposed)(path)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, img * mask[:, :, None])
        assert 0 < mask.mean() < 1
    assert not np.array_equal(masked_image_loader(poses, True)(path), masked_image_loader(poses, False)(path))


def test_pose_file_cannot_run_code(tmp_path, code_running_pickle):
    path, marker = code_running_pickle(tmp_path / 'pose_label.pkl', lambda evil: {MARKET_IDS[0]: evil})
    with pytest.raises(ValueError, match=r"pose_label\.pkl.*'posix\.system'"):
        load_pose_labels(path)
    assert not marker.exists()


def test_masked_is_unknown_id_names_file(tmp_path):
    from util.io import save_pickle

    save_pickle(market_poses(), tmp_path / 'pose_label.pkl')
    write_images(tmp_path / 'gen', pair_stems(MARKET_IDS, 10) + ['0001_c1s1_000001_00_0099_c9s9_999999_99'],
                 ext='png')
    with pytest.raises(ValueError, match='0099_c9s9_999999_99.*pose_label.pkl'):
        compute_masked_inception_score(tmp_path / 'gen', pose_file=tmp_path / 'pose_label.pkl',
                                       classifier=IndexClassifier(np.eye(3)))
    with pytest.raises(FileNotFoundError, match='pose label file'):
        compute_masked_inception_score(tmp_path / 'gen', pose_file=tmp_path / 'missing.pkl')
