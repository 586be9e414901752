import codecs
import collections
import errno
import json
import pathlib
import pickle
import struct
import subprocess

import numpy as np
import pytest

import util.io

from util.io import UnsafePickleError, atomic_target, load_json, load_pickle, save_json, save_pickle

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


class _CallsGlobal:
    """Unpickles to ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_pickle_that_runs_code_is_refused(tmp_path, code_running_pickle):
    path, marker = code_running_pickle(tmp_path / 'Label' / 'pose_label.pkl', lambda evil: {'img_a': evil})
    with pytest.raises(UnsafePickleError, match=rf"{path}.*'posix\.system'") as info:
        load_pickle(path)
    assert isinstance(info.value, ValueError)  # callers that handle "unreadable file" handle this too
    assert not marker.exists()


@pytest.mark.parametrize('protocol', [0, 2, 5])
@pytest.mark.parametrize('payload,refused', [
    # Protocols < 3 write Python 2 names (__builtin__.eval, commands.call); the message gives the Python 3 name.
    (_CallsGlobal(eval, '1 + 1'), r'builtins\.eval'),
    (_CallsGlobal(getattr, 'x', 'upper'), r'builtins\.getattr'),
    (_CallsGlobal(subprocess.call, ['true']), r'subprocess\.call'),
    (_CallsGlobal(pathlib.Path, '/tmp'), r'pathlib\.'),
    (_CallsGlobal(collections.OrderedDict), r'collections\.OrderedDict'),
])
def test_only_plain_data_globals_are_admitted(tmp_path, payload, refused, protocol):
    path = tmp_path / 'labels.pkl'
    path.write_bytes(pickle.dumps({'a': [payload]}, protocol=protocol))
    with pytest.raises(UnsafePickleError, match=rf"labels\.pkl.*'{refused}"):
        load_pickle(path)


def test_object_array_cannot_smuggle_code(tmp_path, code_running_pickle):
    # An object-dtype array stores its elements as pickled objects: they go through the same check.
    path, marker = code_running_pickle(tmp_path / 'attr_label.pkl',
                                       lambda evil: {'label': {'a': np.array([evil, 1], dtype=object)}})
    with pytest.raises(UnsafePickleError, match='posix.system'):
        load_pickle(path)
    assert not marker.exists()


def test_codecs_encode_only_for_latin1(tmp_path):
    # Protocol-2 pickles carry bytes as `_codecs.encode(text, 'latin1')`; other codecs are not needed.
    path = tmp_path / 'codec.pkl'
    path.write_bytes(pickle.dumps(_CallsGlobal(codecs.encode, 'abc', 'rot13'), protocol=2))
    with pytest.raises(UnsafePickleError, match=r"codec\.pkl.*_codecs\.encode.*'rot13'"):
        load_pickle(path)


NUMPY_CONTENT = {
    'f32': np.arange(6, dtype=np.float32).reshape(2, 3), 'f64': np.linspace(-1, 1, 5),
    'i64': np.arange(-3, 3, dtype=np.int64), 'u8': np.arange(256, dtype=np.uint8), 'bool': np.array([True, False]),
    'fortran': np.asfortranarray(np.arange(12.0).reshape(3, 4)), 'zero_d': np.array(2.5), 'empty': np.zeros((0, 2)),
    'scalars': [np.float64(1.5), np.float32(-2.25), np.int64(7), np.uint8(3), np.bool_(True)],
    'plain': {'list': [[1.0, -1], [2, 3.5]], 'tuple': (1, 'x'), 'set': {1, 2}, 'frozenset': frozenset('ab'),
              'none': None, 'bytes': b'\x00\xff', 'complex': 1 + 2j, 'big': 2 ** 70, 'text': '\xe9t\xe9'},
}


@pytest.mark.parametrize('protocol', [2, 4, 5])
def test_numpy_and_plain_content_round_trips(tmp_path, protocol):
    # Protocol 5 of numpy 2 stores arrays through numpy._core.numeric._frombuffer; protocol 2 through
    # numpy._core.multiarray._reconstruct and _codecs.encode.
    path = tmp_path / 'content.pkl'
    path.write_bytes(pickle.dumps(NUMPY_CONTENT, protocol=protocol))
    out = load_pickle(path)
    for key in ('f32', 'f64', 'i64', 'u8', 'bool', 'fortran', 'zero_d', 'empty'):
        assert out[key].dtype == NUMPY_CONTENT[key].dtype and np.array_equal(out[key], NUMPY_CONTENT[key]), key
    assert [type(v) for v in out['scalars']] == [type(v) for v in NUMPY_CONTENT['scalars']]
    assert out['scalars'] == NUMPY_CONTENT['scalars'] and out['plain'] == NUMPY_CONTENT['plain']


def test_numpy1_module_names_load(tmp_path):
    # numpy 1 wrote numpy.core.*; numpy 2 writes numpy._core.*. Files of both load.
    data = pickle.dumps({'a': np.arange(3.0), 's': np.float32(0.5)}, protocol=2)
    assert b'numpy._core' in data
    path = tmp_path / 'np1.pkl'
    path.write_bytes(data.replace(b'numpy._core', b'numpy.core'))
    out = load_pickle(path)
    assert out['a'].tolist() == [0.0, 1.0, 2.0] and out['s'] == np.float32(0.5)


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


@pytest.mark.parametrize('capacity', [0, 5])
def test_full_disk_error_names_the_target(tmp_path, disk_fills_up, capacity):
    path = tmp_path / 'train_opt.json'
    path.write_text('old')
    disk_fills_up(util.io, capacity)
    with pytest.raises(OSError, match=rf'{path}.*No space left on device') as info:
        save_json({'key': list(range(100))}, path)
    assert info.value.errno == errno.ENOSPC
    assert path.read_text() == 'old'
    assert _leftovers(tmp_path, {'train_opt.json'}) == []
