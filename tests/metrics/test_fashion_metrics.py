"""FashionIS and AttrRec-k: scores against loop implementations of the recall/mean-AP recipes; classifier loading."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from metrics.fashion_classifiers import (build_classifier, eval_transform, find_classifier_checkpoint,
                                         load_classifier, predict_images)
from util.weights import StateDictMismatchError, load_state_dict_compat
from tests.metrics.weights_helpers import DF_IDS, classifier_weights, pair_stems, write_images
from util.io import save_pickle
from metrics.attr_rec import (average_precisions, compute_attr_rec, load_attr_labels, mean_average_precision,
                              recall_at_k, resolve_attr_label_file, target_labels)
from metrics.fashion_is import compute_fashion_is
from metrics.inception_score import inception_score_from_probs


# ------------------------------------------------------------------------------------------------
# Scores
# ------------------------------------------------------------------------------------------------
def reference_recall(scores, labels, k):
    recalls = []
    for s, l in zip(scores.tolist(), labels.tolist()):
        ranked = sorted(range(len(s)), key=lambda a: -s[a])
        hits = sum(l[a] for a in ranked[:k])
        gt = sum(l)
        if gt == 0:
            hits = gt = 1
        recalls.append(hits / gt)
    return 100 * sum(recalls) / len(recalls)


def reference_ap(score_col, label_col):
    """The original's mean-AP recipe for one attribute, with loops."""
    order = sorted(range(len(score_col)), key=lambda i: -score_col[i])
    n_pos = sum(label_col)
    tp, prec, rec = 0, [], []
    for j, i in enumerate(order, start=1):
        tp += label_col[i]
        prec.append(tp / (j + 1e-8))
        rec.append(tp / (n_pos + 1e-8))
    prec = [0.0] + prec
    for i in range(len(prec) - 2, -1, -1):
        prec[i] = max(prec[i], prec[i + 1])
    rec1, rec2 = [0.0] + rec, rec + [1.0]
    ap = sum(p * (b - a) for p, a, b in zip(prec, rec1, rec2))
    return -1.0 if ap != ap else ap * 100


def test_recall_and_ap_match_loop_references():
    rng = np.random.default_rng(0)
    scores = rng.random((12, 30))
    labels = (rng.random((12, 30)) < 0.2).astype(np.int64)
    labels[3] = 0  # an image without attributes counts as recall 1
    for k in (3, 5, 10, 20):
        assert recall_at_k(scores, labels, k) == pytest.approx(reference_recall(scores, labels, k), abs=1e-9)
    ref = [reference_ap(scores[:, a].tolist(), labels[:, a].tolist()) for a in range(30)]
    np.testing.assert_allclose(average_precisions(scores, labels), ref, atol=1e-9)
    assert mean_average_precision(scores, labels) == pytest.approx(np.mean([a for a in ref if a >= 0]), abs=1e-9)


def test_recall_and_ap_hand_computed():
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.7]])
    labels = np.array([[1, 1, 0], [0, 0, 1]])
    # top-1: image 0 gets 1 of 2, image 1 gets 0 of 1; top-2: 1/2 and 1/1.
    assert recall_at_k(scores, labels, 1) == pytest.approx(25.0)
    assert recall_at_k(scores, labels, 2) == pytest.approx(75.0)
    # One attribute, ranking [+, -, +, -]: precisions 1, 1/2, 2/3, 1/2 -> with the leading 0 made
    # non-increasing: [1, 1, 2/3, 2/3, 1/2]; recall steps [1/2, 0, 1/2, 0, 0] -> AP = 1/2 + 1/3 = 5/6.
    ap = average_precisions(np.array([[0.9], [0.8], [0.7], [0.6]]), np.array([[1], [0], [1], [0]]))
    assert ap[0] == pytest.approx(100 * 5 / 6, abs=1e-5)


# ------------------------------------------------------------------------------------------------
# Labels and checkpoints
# ------------------------------------------------------------------------------------------------
def test_attr_label_file_fallback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match='DF_Pose.*deepfashion'):
        resolve_attr_label_file(None)
    fallback = tmp_path / 'datasets/deepfashion/Label/attr_label.pkl'
    save_pickle({'label': {}, 'entry': []}, fallback)
    assert resolve_attr_label_file('datasets/DF_Pose/Label/attr_label.pkl').resolve() == fallback
    with pytest.raises(FileNotFoundError, match='custom.pkl'):
        resolve_attr_label_file('custom.pkl')  # an explicit path has no fallback


def test_attr_label_file_cannot_run_code(tmp_path, code_running_pickle):
    path, marker = code_running_pickle(tmp_path / 'attr_label.pkl',
                                       lambda evil: {'label': {DF_IDS[0]: evil}, 'entry': ['a']})
    with pytest.raises(ValueError, match=r"attr_label\.pkl.*'posix\.system'"):
        load_attr_labels(path)
    assert not marker.exists()


@pytest.mark.parametrize('bad, match', [
    (np.array([1.0, np.nan]), r'values other than 0 and 1'),
    (np.array([1, 2]), r'values other than 0 and 1'),
    (np.array([1, 0, 1]), r'3 attributes, the first entry has 2'),
])
def test_attr_labels_must_be_0_1_vectors_of_one_length(tmp_path, bad, match):
    # NaN used to become a huge negative int64 silently; a ragged file failed later inside np.stack.
    path = save_pickle({'label': {DF_IDS[0]: np.array([0, 1]), DF_IDS[1]: bad}, 'entry': ['a', 'b']},
                       tmp_path / 'attr_label.pkl')
    with pytest.raises(ValueError, match=rf'attr_label\.pkl.*{DF_IDS[1]!r}.*{match}'):
        load_attr_labels(path)


def test_target_labels_by_image_or_item_id(tmp_path):
    stems = [f'{DF_IDS[2]}_{DF_IDS[3]}', f'{DF_IDS[0]}_{DF_IDS[1]}']
    paths = write_images(tmp_path, stems)
    by_image = {DF_IDS[3]: np.array([1, 0]), DF_IDS[1]: np.array([0, 1])}
    np.testing.assert_array_equal(target_labels(paths, by_image, 'x.pkl'), [[1, 0], [0, 1]])
    by_item = {'id00000530': np.array([1, 1]), 'id00002629': np.array([0, 0])}
    np.testing.assert_array_equal(target_labels(paths, by_item, 'x.pkl'), [[1, 1], [0, 0]])
    with pytest.raises(ValueError, match='label file x.pkl'):
        target_labels(paths, {DF_IDS[3]: np.array([1, 0])}, 'x.pkl')


def test_checkpoint_lookup_both_spellings(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        find_classifier_checkpoint('attr', 'default', tmp_path)
    assert 'Fashion_Attr/default/best.pth' in str(e.value) and 'Fasion_Attr/default/best.pth' in str(e.value)
    assert 'download_models.sh' in str(e.value)
    readme = tmp_path / 'Fasion_Attr' / 'default' / 'best.pth'
    readme.parent.mkdir(parents=True)
    readme.write_bytes(b'')
    assert find_classifier_checkpoint('attr', 'default', tmp_path) == readme
    fixed = tmp_path / 'Fashion_Attr' / 'default' / 'best.pth'
    fixed.parent.mkdir(parents=True)
    fixed.write_bytes(b'')
    assert find_classifier_checkpoint('attr', 'default', tmp_path) == fixed


def test_released_format_loads_strictly(tmp_path_factory):
    path = classifier_weights(tmp_path_factory, 'inception')
    state = torch.load(path, map_location='cpu', weights_only=True)
    assert state['fc.weight'].shape == (23, 2048) and state['AuxLogits.fc.weight'].shape == (1000, 768)
    assert not any(k.endswith('num_batches_tracked') for k in state)  # PyTorch 0.4.0 layout
    model = load_classifier('inception', path)
    assert not model.training and model.transform_input
    torch.testing.assert_close(model.Mixed_7c.branch_pool.conv.weight, state['Mixed_7c.branch_pool.conv.weight'])
    # DataParallel prefixes are accepted; anything else missing or extra is an error naming the file.
    fresh = build_classifier('inception')
    load_state_dict_compat(fresh, {f'module.{k}': v for k, v in state.items()}, strip_data_parallel_prefix=True,
                           source='dp.pth')
    torch.testing.assert_close(fresh.fc.bias, state['fc.bias'])
    broken = dict(state)
    del broken['Mixed_5b.branch1x1.conv.weight']
    broken['extra.weight'] = torch.zeros(1)
    with pytest.raises(StateDictMismatchError, match="(?s)broken.pth.*Mixed_5b.branch1x1.conv.weight.*extra.weight"):
        load_state_dict_compat(build_classifier('inception'), broken, source='broken.pth')
    with pytest.raises(StateDictMismatchError, match='shape mismatches'):
        load_state_dict_compat(build_classifier('inception', 10), state, source='ten.pth')


# ------------------------------------------------------------------------------------------------
# Folder metrics
# ------------------------------------------------------------------------------------------------
def test_fashion_is_equals_score_of_classifier_outputs(tmp_path, tmp_path_factory):
    stems = pair_stems(DF_IDS, 4)
    write_images(tmp_path, stems, size=(64, 32))
    model = load_classifier('inception', classifier_weights(tmp_path_factory, 'inception'))
    got = compute_fashion_is(tmp_path, model=model, rescale_size=80, crop_size=75, n_splits=2, batch_size=3)
    # Sorted file order, Resize -> CenterCrop -> [-1, 1], softmax, 2 contiguous splits.
    from PIL import Image
    tf = eval_transform(80, 75)
    x = torch.stack([tf(Image.open(tmp_path / f'{s}.jpg').convert('RGB')) for s in sorted(stems)])
    assert x.shape == (4, 3, 75, 75) and x.min() >= -1 and x.max() <= 1
    with torch.no_grad():
        probs = model(x).double().softmax(1).numpy()
    ref = inception_score_from_probs(probs, 2)
    assert got['fashion_is'] == pytest.approx(ref['inception_score'], rel=1e-6)
    assert got['fashion_is_std'] == pytest.approx(ref['inception_score_std'], rel=1e-5, abs=1e-9)
    assert got['n_images'] == 4


def test_attr_rec_on_folder(tmp_path, tmp_path_factory):
    stems = pair_stems(DF_IDS, 3)
    write_images(tmp_path / 'gen', stems, size=(64, 32))
    rng = np.random.default_rng(1)
    labels = {i: (rng.random(347) < 0.05).astype(np.int64) for i in DF_IDS}
    save_pickle({'label': labels, 'entry': [f'attr{a}' for a in range(347)]}, tmp_path / 'attr_label.pkl')
    model = load_classifier('attr', classifier_weights(tmp_path_factory, 'attr'))
    got = compute_attr_rec(tmp_path / 'gen', fn_label=tmp_path / 'attr_label.pkl', model=model, rescale_size=40,
                           crop_size=32)
    paths = sorted((tmp_path / 'gen').iterdir())
    scores = predict_images(model, paths, eval_transform(40, 32), activation='sigmoid')
    gt = np.stack([labels[s.split('_', 2)[2]] for s in sorted(stems)])
    assert got['rec-5'] == pytest.approx(recall_at_k(scores, gt, 5))
    assert got['mean_ap'] == pytest.approx(mean_average_precision(scores, gt))
    with pytest.raises(ValueError, match='--n_attr is 100'):
        compute_attr_rec(tmp_path / 'gen', fn_label=tmp_path / 'attr_label.pkl', model=model, n_attr=100)


def test_predict_images_rejects_unknown_activation():
    with pytest.raises(ValueError, match='activation'):
        predict_images(nn.Identity(), [], eval_transform(8, 8), activation='relu')
