import json
import pickle
import struct

import numpy as np
import pytest

from util.io import atomic_target, load_json, load_pickle, save_json, save_pickle

# A pickle as Python 2 writes it (protocol 2): `str` values are SHORT_BINSTRING opcodes, so the
# non-ASCII name and the raw float64 buffer of the numpy array only load with encoding='latin1'.
# Python 2 object: {'name': '\xe9t\xe9', 'joints': numpy.array([1.5, -1.0])}
PY2_PICKLE = (
    b'\x80\x02}q\x00('
    b'U\x04name' b'U\x03\xe9t\xe9'
    b'U\x06joints'
    b'cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85U\x01b\x87R'
    b'(K\x01K\x02\x85cnumpy\ndtype\nU\x02f8K\x00K\x01\x87R'
    b'(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89U\x10'
    + struct.pack('<2d', 1.5, -1.0) + b'tb'
    b'u.'
)


def _leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_json_round_trip_format_and_parent_dirs(tmp_path):
    path = tmp_path / 'a' / 'b' / 'opt.json'
    obj = {'b': [1, 2], 'a': 'x', 'c': None, 'd': 0.5}
    save_json(obj, path)
    assert load_json(path) == obj
    # indent 0, ': ' after keys, no space after commas, key order kept.
    assert path.read_text() == '{\n"b": [\n1,\n2\n],\n"a": "x",\n"c": null,\n"d": 0.5\n}\n'
    assert _leftovers(path.parent, {'opt.json'}) == []


def test_json_overwrite_is_complete(tmp_path):
    path = tmp_path / 'opt.json'
    save_json({'long': list(range(100))}, path)
    save_json({'short': 1}, path)
    assert json.loads(path.read_text()) == {'short': 1}


def test_json_missing_and_invalid(tmp_path):
    missing = tmp_path / 'nope.json'
    with pytest.raises(FileNotFoundError, match='nope.json'):
        load_json(missing)
    bad = tmp_path / 'bad.json'
    bad.write_text('{"a": ')
    with pytest.raises(ValueError, match='bad.json'):
        load_json(bad)


def test_pickle_round_trip(tmp_path):
    path = tmp_path / 'sub' / 'x.pkl'
    obj = {'id_1': [[1.0, 2.0], [-1, -1]], 'arr': np.arange(6, dtype=np.float32).reshape(2, 3)}
    save_pickle(obj, path)
    out = load_pickle(path)
    assert out['id_1'] == obj['id_1']
    assert out['arr'].dtype == np.float32 and np.array_equal(out['arr'], obj['arr'])
    assert _leftovers(path.parent, {'x.pkl'}) == []


def test_load_python2_pickle(tmp_path):
    path = tmp_path / 'pose_label.pkl'
    path.write_bytes(PY2_PICKLE)
    # The default ASCII decoding fails on this file: the test really exercises latin1.
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(PY2_PICKLE)
    out = load_pickle(path)
    assert out['name'] == '\xe9t\xe9'
    assert out['joints'].dtype == np.float64
    assert out['joints'].tolist() == [1.5, -1.0]


def test_pickle_missing_and_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError, match='gone.pkl'):
        load_pickle(tmp_path / 'gone.pkl')
    bad = tmp_path / 'bad.pkl'
    bad.write_bytes(PY2_PICKLE[:40])
    with pytest.raises(ValueError, match='bad.pkl'):
        load_pickle(bad)


def test_atomic_target_failure_keeps_old_file(tmp_path):
    path = tmp_path / 'grid.jpg'
    path.write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with atomic_target(path) as tmp:
            assert tmp.suffix == '.jpg' and tmp.parent == tmp_path
            tmp.write_bytes(b'partial')
            raise RuntimeError('interrupted')
    assert path.read_bytes() == b'old'
    assert _leftovers(tmp_path, {'grid.jpg'}) == []
