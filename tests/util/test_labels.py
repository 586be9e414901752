"""Label files: pose / attribute pickles, their JSON / NPZ conversions, and which one the readers take."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from util.io import UnsafePickleError, load_json, save_pickle
from util.labels import convert_label_file, converted_label_path, label_file_exists, load_label_file


def _pose_labels(n: int = 5, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    labels = {}
    for k in range(n):
        kps = np.round(rng.uniform(0, 255, (18, 2)), 3)
        kps[rng.random(18) < 0.3] = -1
        rows = kps.tolist()
        rows[0] = [-1, -1]  # ints next to floats, as in the original lists
        labels[f'fashionWOMENDressesid0000{k:04d}_1front'] = rows
    labels['as_array_f32'] = np.asarray(kps, dtype=np.float32)
    return labels


def _attr_labels(n: int = 6, n_attr: int = 347, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ids = [f'id_{k:08d}' for k in range(n)]
    return {'label': {i: (rng.random(n_attr) < 0.05).astype(np.int64) for i in ids},
            'entry': [f'attr {a} \xe9' for a in range(n_attr)]}


def _same_content(a, b) -> None:
    assert type(a) is type(b) or (isinstance(a, (list, np.ndarray)) and isinstance(b, (list, np.ndarray)))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            _same_content(a[key], b[key])
    elif isinstance(a, (list, np.ndarray)) and np.asarray(a).dtype.kind in 'fiub':
        x, y = np.asarray(a), np.asarray(b)
        assert x.shape == y.shape and np.array_equal(x, y)
        for dtype in (np.float32, np.float64, np.int64):  # what the readers convert to
            if x.dtype.kind == 'f' and dtype is np.int64:
                continue
            assert np.array_equal(np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype))
    else:
        assert a == b


@pytest.mark.parametrize('protocol', [2, 5])
def test_pose_labels_convert_to_json_with_identical_arrays(tmp_path, protocol, capsys):
    labels = _pose_labels()
    pkl = tmp_path / 'Label' / 'pose_label.pkl'
    pkl.parent.mkdir()
    pkl.write_bytes(pickle.dumps(labels, protocol=protocol))
    out = convert_label_file(pkl)
    assert out == tmp_path / 'Label' / 'pose_label.json'
    raw = load_json(out)
    assert raw['format'] == 'pose_label' and raw['source'] == 'pose_label.pkl'
    assert set(raw['labels']) == set(labels)
    assert converted_label_path(pkl) == out
    capsys.readouterr()
    loaded = load_label_file(pkl)
    _same_content({k: np.asarray(v) for k, v in labels.items()}, {k: np.asarray(v) for k, v in loaded.items()})
    assert load_label_file(pkl) == loaded
    # Said once per file and process.
    err = capsys.readouterr().out
    assert err.count(str(out)) == 1 and 'converted from pose_label.pkl' in err


def test_attr_labels_convert_to_npz_with_identical_arrays(tmp_path):
    labels = _attr_labels()
    pkl = save_pickle(labels, tmp_path / 'attr_label.pkl')
    out = convert_label_file(pkl)
    assert out == tmp_path / 'attr_label.npz'
    with np.load(out, allow_pickle=False) as npz:
        assert npz['label'].shape == (6, 347) and npz['label'].dtype == np.int64
    loaded = load_label_file(pkl)
    assert list(loaded) == ['label', 'entry'] and loaded['entry'] == labels['entry']
    assert list(loaded['label']) == list(labels['label'])
    for key, vec in labels['label'].items():
        assert loaded['label'][key].dtype == vec.dtype and np.array_equal(loaded['label'][key], vec)


def _as_lists(labels: dict) -> dict:
    return {k: np.asarray(v).tolist() for k, v in labels.items()}


def test_reader_without_the_pickle_and_with_the_converted_path(tmp_path):
    pkl = save_pickle(_pose_labels(), tmp_path / 'pose_label.pkl')
    expected = _as_lists(load_label_file(pkl))
    out = convert_label_file(pkl)
    pkl.unlink()  # the pickles may be deleted once converted
    assert label_file_exists(pkl) and _as_lists(load_label_file(pkl)) == expected
    assert _as_lists(load_label_file(out)) == expected  # the converted file can be named directly
    out.unlink()
    assert not label_file_exists(pkl)
    with pytest.raises(FileNotFoundError, match='pose_label.pkl'):
        load_label_file(pkl)


def test_converted_file_of_another_pickle_is_refused(tmp_path):
    pkl = save_pickle(_pose_labels(seed=0), tmp_path / 'pose_label.pkl')
    out = convert_label_file(pkl)
    save_pickle(_pose_labels(seed=1), pkl)  # the pickle was replaced after the conversion
    with pytest.raises(ValueError, match=f'{out}.*different.*pose_label.pkl.*convert_labels.py'):
        load_label_file(pkl)
    assert convert_label_file(pkl) == out  # converting again fixes it
    assert load_label_file(pkl)['as_array_f32'] == _pose_labels(seed=1)['as_array_f32'].tolist()


def test_conversion_refuses_what_it_cannot_represent(tmp_path, code_running_pickle):
    bad = _pose_labels()
    bad['nan_id'] = [[float('nan'), 1.0]] * 18
    pkl = save_pickle(bad, tmp_path / 'nan.pkl')
    with pytest.raises(ValueError, match=r"nan\.pkl.*'nan_id'.*NaN or inf"):
        convert_label_file(pkl)
    assert not (tmp_path / 'nan.json').exists()
    other = save_pickle({'something': 'else'}, tmp_path / 'other.pkl')
    with pytest.raises(ValueError, match=r'other\.pkl.*neither a pose-label.*nor an attribute-label'):
        convert_label_file(other)
    evil, marker = code_running_pickle(tmp_path / 'evil.pkl', lambda e: {'a': e})
    with pytest.raises(UnsafePickleError, match='evil.pkl'):
        convert_label_file(evil)
    assert not marker.exists() and not (tmp_path / 'evil.json').exists()


def test_two_converted_files_are_ambiguous(tmp_path):
    pkl = save_pickle(_pose_labels(), tmp_path / 'pose_label.pkl')
    convert_label_file(pkl)
    (tmp_path / 'pose_label.npz').write_bytes(b'')
    with pytest.raises(ValueError, match='pose_label.json.*pose_label.npz'):
        load_label_file(pkl)
