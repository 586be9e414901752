import ast
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from util.io import save_pickle
from util.keypoints import (COCO18_JOINT_NAMES, KEYPOINT_FORMATS, KeypointError, Person, body25_to_coco18,
                            check_keypoints, coco17_to_coco18, detect_format, list_keypoint_files, parse_people,
                            read_keypoint_sequence, read_keypoints, read_people, select_person,
                            smooth_keypoint_sequence, smooth_moving_average, smooth_one_euro, write_openpose_json)

# Joint orders written out independently of the module (OpenPose and COCO documentation).
OPENPOSE_COCO18 = ['Nose', 'Neck', 'RShoulder', 'RElbow', 'RWrist', 'LShoulder', 'LElbow', 'LWrist', 'RHip', 'RKnee',
                   'RAnkle', 'LHip', 'LKnee', 'LAnkle', 'REye', 'LEye', 'REar', 'LEar']
OPENPOSE_BODY25 = ['Nose', 'Neck', 'RShoulder', 'RElbow', 'RWrist', 'LShoulder', 'LElbow', 'LWrist', 'MidHip', 'RHip',
                   'RKnee', 'RAnkle', 'LHip', 'LKnee', 'LAnkle', 'REye', 'LEye', 'REar', 'LEar', 'LBigToe',
                   'LSmallToe', 'LHeel', 'RBigToe', 'RSmallToe', 'RHeel']
COCO17 = ['Nose', 'LEye', 'REye', 'LEar', 'REar', 'LShoulder', 'RShoulder', 'LElbow', 'RElbow', 'LWrist', 'RWrist',
          'LHip', 'RHip', 'LKnee', 'RKnee', 'LAnkle', 'RAnkle']


def _standing_pose(x0=100.0, y0=50.0, scale=1.0) -> np.ndarray:
    """A hand-made front-facing COCO-18 skeleton (person's right on the image left)."""
    pts = {'Nose': (0, 0), 'Neck': (0, 22), 'RShoulder': (-15, 22), 'RElbow': (-20, 45), 'RWrist': (-22, 68),
           'LShoulder': (15, 22), 'LElbow': (20, 45), 'LWrist': (22, 68), 'RHip': (-9, 70), 'RKnee': (-10, 105),
           'RAnkle': (-10, 140), 'LHip': (9, 70), 'LKnee': (10, 105), 'LAnkle': (10, 140), 'REye': (-4, -4),
           'LEye': (4, -4), 'REar': (-8, -2), 'LEar': (8, -2)}
    return np.array([[x0 + scale * pts[n][0], y0 + scale * pts[n][1]] for n in OPENPOSE_COCO18], dtype=np.float32)


def _openpose_flat(kps: np.ndarray, conf: np.ndarray | float = 0.9) -> list[float]:
    conf = np.broadcast_to(np.asarray(conf, dtype=np.float64), (len(kps),))
    xy = np.where(conf[:, None] > 0, kps, 0.0)
    return np.concatenate([xy, conf[:, None]], axis=1).ravel().tolist()


def _write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


# ----------------------------------------------------------------------------- tables and layering

def test_joint_names_match_the_pose_util_table():
    from util.pose_util import JOINT_NAMES
    assert COCO18_JOINT_NAMES == JOINT_NAMES


def test_util_modules_import_no_upper_floor_and_no_torch():
    root = Path(__file__).resolve().parents[2]
    for name in ('keypoints', 'framing'):
        tree = ast.parse((root / 'util' / f'{name}.py').read_text())
        modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        tops = {m.split('.')[0] for m in modules}
        assert not tops & {'models', 'data', 'options', 'metrics', 'training', 'torch', 'scripts'}, (name, tops)
    code = 'import sys, util.keypoints, util.framing; sys.exit("torch" in sys.modules)'
    assert subprocess.run([sys.executable, '-c', code], cwd=root).returncode == 0


# ----------------------------------------------------------------------------- joint-set conversions

def test_body25_to_coco18_joint_by_joint():
    body25 = np.array([[10.0 * i + 1, 200.0 + i, 0.5 + i / 100] for i in range(25)])
    out = body25_to_coco18(body25)
    assert out.shape == (18, 3) and out.dtype == np.float32
    for k, name in enumerate(OPENPOSE_COCO18):
        np.testing.assert_allclose(out[k], body25[OPENPOSE_BODY25.index(name)], rtol=1e-6, err_msg=name)
    # Explicit spot checks of the indices that move.
    np.testing.assert_allclose(out[8, :2], [91, 209])    # RHip is BODY_25 joint 9 (8 is MidHip)
    np.testing.assert_allclose(out[13, :2], [141, 214])  # LAnkle is 14
    np.testing.assert_allclose(out[17, :2], [181, 218])  # LEar is 18
    assert body25_to_coco18(body25[:, :2]).shape == (18, 2)


def test_coco17_to_coco18_joint_by_joint_and_neck():
    coco = np.array([[10.0 * i + 1, 300.0 - i, 1.0 + i / 10] for i in range(17)])
    out = coco17_to_coco18(coco)
    for k, name in enumerate(OPENPOSE_COCO18):
        if name == 'Neck':
            continue
        np.testing.assert_allclose(out[k], coco[COCO17.index(name)], rtol=1e-6, err_msg=name)
    l_sh, r_sh = coco[COCO17.index('LShoulder')], coco[COCO17.index('RShoulder')]
    np.testing.assert_allclose(out[1, :2], (l_sh[:2] + r_sh[:2]) / 2)
    assert out[1, 2] == pytest.approx(min(l_sh[2], r_sh[2]))
    np.testing.assert_allclose(out[2, :2], [61, 294])    # RShoulder is COCO joint 6
    np.testing.assert_allclose(out[14, :2], [21, 298])   # REye is COCO joint 2


@pytest.mark.parametrize('missing', ['LShoulder', 'RShoulder'])
def test_coco17_neck_missing_unless_both_shoulders(missing):
    coco = np.array([[10.0 * i + 1, 50.0 + i] for i in range(17)])
    coco[COCO17.index(missing)] = -1
    out = coco17_to_coco18(coco)
    assert (out[1] == -1).all()
    scored = coco17_to_coco18(np.concatenate([coco, np.ones((17, 1))], axis=1))
    assert (scored[1, :2] == -1).all() and scored[1, 2] == 0


def test_conversion_shape_errors():
    with pytest.raises(KeypointError, match=r'\[25, 2\]'):
        body25_to_coco18(np.zeros((18, 2)))
    with pytest.raises(KeypointError, match=r'\[17, 2\]'):
        coco17_to_coco18(np.zeros((17, 4)))


# ----------------------------------------------------------------------------- OpenPose

def test_openpose_body18_selection_threshold_and_index(tmp_path):
    big = _standing_pose(200, 40, scale=2.0)
    small = _standing_pose(50, 60, scale=0.5)
    conf = np.full(18, 0.9)
    conf[4] = 0.03            # below the default threshold 0.05 -> missing
    conf[7] = 0.0             # OpenPose's "not found": 0, 0, 0
    path = _write_json(tmp_path / 'pose.json', {'version': 1.3, 'people': [
        {'pose_keypoints_2d': _openpose_flat(small)}, {'pose_keypoints_2d': _openpose_flat(big, conf)}]})
    assert detect_format(json.loads(path.read_text())) == 'openpose'
    kps = read_keypoints(path)  # default: the largest person, although it is second in the file
    assert kps.shape == (18, 2) and kps.dtype == np.float32
    np.testing.assert_allclose(kps[[0, 1, 10]], big[[0, 1, 10]])
    assert (kps[4] == -1).all() and (kps[7] == -1).all()
    np.testing.assert_allclose(read_keypoints(path, person_index=0), small)
    assert (read_keypoints(path, confidence_threshold=0.01)[4] != -1).all()
    people = read_people(path)
    assert len(people) == 2 and people[1].scores[4] == 0 and people[1].scores[0] == pytest.approx(0.9)
    with pytest.raises(KeypointError, match='person_index 5 out of range.*2 person'):
        read_keypoints(path, person_index=5)


def test_openpose_body25_and_old_key(tmp_path):
    pose = _standing_pose()
    name_to_xy = dict(zip(OPENPOSE_COCO18, pose))
    body25 = np.array([name_to_xy.get(n, (7.0, 7.0)) for n in OPENPOSE_BODY25], dtype=np.float32)
    path = _write_json(tmp_path / 'b25.json', {'people': [{'pose_keypoints': _openpose_flat(body25)}]})
    np.testing.assert_allclose(read_keypoints(path, format='openpose'), pose)


@pytest.mark.parametrize('n_values', [45, 51, 60])
def test_openpose_wrong_joint_count_names_the_file(tmp_path, n_values):
    path = _write_json(tmp_path / 'mpi.json', {'people': [{'pose_keypoints_2d': [1.0] * n_values}]})
    with pytest.raises(KeypointError, match=rf'mpi\.json.*{n_values} values.*54.*75'):
        read_keypoints(path)


def test_openpose_no_person(tmp_path):
    path = _write_json(tmp_path / 'empty.json', {'people': []})
    with pytest.raises(KeypointError, match=r'empty\.json: no person found'):
        read_keypoints(path)


# ----------------------------------------------------------------------------- COCO

def _coco_flat(pose18: np.ndarray, v: int = 2, drop=()) -> list[float]:
    by_name = dict(zip(OPENPOSE_COCO18, pose18))
    rows = []
    for name in COCO17:
        if name in drop:
            rows += [0, 0, 0]
        else:
            rows += [float(by_name[name][0]), float(by_name[name][1]), v]
    return rows


def test_coco_annotation_file_with_entry_id(tmp_path):
    pose_a, pose_b = _standing_pose(100, 50), _standing_pose(300, 80, 1.5)
    data = {'images': [{'id': 7, 'file_name': 'train/a.jpg'}, {'id': 9, 'file_name': 'b.jpg'}],
            'annotations': [{'image_id': 7, 'keypoints': _coco_flat(pose_a), 'num_keypoints': 17},
                            {'image_id': 9, 'keypoints': _coco_flat(pose_b, drop=('LShoulder',))}]}
    path = _write_json(tmp_path / 'coco.json', data)
    a = read_keypoints(path, entry_id='a.jpg')
    np.testing.assert_allclose(a, pose_a, atol=1e-4)  # the neck of the hand-made pose is the shoulder midpoint
    assert read_keypoints(path, entry_id=7).tolist() == a.tolist()
    b = read_keypoints(path, entry_id='b')
    assert (b[1] == -1).all() and (b[5] == -1).all()   # no left shoulder -> no neck
    np.testing.assert_allclose(b[2], pose_b[2])
    with pytest.raises(KeypointError, match='annotations of 2 images; pass entry_id'):
        read_keypoints(path)
    with pytest.raises(KeypointError, match="no annotation for image 'zzz'"):
        read_keypoints(path, entry_id='zzz')


def test_coco_single_dict_results_list_and_visibility(tmp_path):
    pose = _standing_pose()
    single = _write_json(tmp_path / 'one.json', {'keypoints': _coco_flat(pose, v=1)})
    np.testing.assert_allclose(read_keypoints(single), pose, atol=1e-4)   # v = 1 (occluded) counts as present
    results = _write_json(tmp_path / 'res.json', [{'image_id': 1, 'keypoints': _coco_flat(pose), 'score': 0.9},
                                                  {'image_id': 1, 'keypoints': _coco_flat(pose * 0.2)}])
    np.testing.assert_allclose(read_keypoints(results), pose, atol=1e-4)
    bad = _write_json(tmp_path / 'bad.json', {'keypoints': [1.0] * 54})
    with pytest.raises(KeypointError, match=r'bad\.json.*54 keypoint values.*51'):
        read_keypoints(bad)


# ----------------------------------------------------------------------------- plain list / pose labels

def test_plain_list_with_missing_and_confidence(tmp_path):
    pose = _standing_pose()
    rows = pose.tolist()
    rows[3] = [-1, -1]
    path = _write_json(tmp_path / 'list.json', rows)
    kps = read_keypoints(path)
    assert (kps[3] == -1).all()
    np.testing.assert_allclose(np.delete(kps, 3, 0), np.delete(pose, 3, 0))
    rows_conf = [[x, y, 0.01 if j == 5 else 1.0] for j, (x, y) in enumerate(pose.tolist())]
    with_conf = _write_json(tmp_path / 'conf.json', rows_conf)
    assert (read_keypoints(with_conf)[5] == -1).all()
    np.save(tmp_path / 'pose.npy', pose)
    np.testing.assert_allclose(read_keypoints(tmp_path / 'pose.npy'), pose)


def test_pose_label_pickle_of_the_dataset_format(tmp_path):
    pose = _standing_pose()
    labels = {'img_a': pose.tolist(), 'img_b': np.asarray(pose * 0.5)}   # lists (as written) or arrays
    path = save_pickle(labels, tmp_path / 'pose_label.pkl')
    np.testing.assert_allclose(read_keypoints(path, entry_id='img_a'), pose)
    np.testing.assert_allclose(read_keypoints(path, entry_id='img_b'), pose * 0.5)
    # Python 2 style protocol-2 pickle of float64 arrays, as the released label files are.
    old = tmp_path / 'old.pkl'
    old.write_bytes(pickle.dumps({'img_c': np.asarray(pose, dtype=np.float64)}, protocol=2))
    np.testing.assert_allclose(read_keypoints(old), pose)
    with pytest.raises(KeypointError, match=r"2 entries; pass entry_id.*'img_a'"):
        read_keypoints(path)
    with pytest.raises(KeypointError, match="no entry 'x'"):
        read_keypoints(path, entry_id='x')
    one = _write_json(tmp_path / 'labels.json', {'only': pose.tolist()})
    assert detect_format(json.loads(one.read_text())) == 'pose_label'
    np.testing.assert_allclose(read_keypoints(one), pose)


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path('/tmp/keypoints_pickle_was_executed'),))


def test_pickle_cannot_run_code(tmp_path):
    marker = Path('/tmp/keypoints_pickle_was_executed')
    marker.unlink(missing_ok=True)
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps({'a': _Evil()}))
    with pytest.raises(KeypointError, match=r'evil\.pkl.*not allowed'):
        read_keypoints(path)
    assert not marker.exists()


# ----------------------------------------------------------------------------- validation errors

def test_unknown_format_and_forced_format(tmp_path):
    path = _write_json(tmp_path / 'weird.json', {'foo': 1})
    with pytest.raises(KeypointError, match=r'weird\.json: unknown keypoint format'):
        read_keypoints(path)
    listing = _write_json(tmp_path / 'l.json', _standing_pose().tolist())
    with pytest.raises(KeypointError, match='not OpenPose JSON'):
        read_keypoints(listing, format='openpose')
    with pytest.raises(KeypointError, match="unknown keypoint format 'yaml'"):
        read_keypoints(listing, format='yaml')
    (tmp_path / 'p.txt').write_text('1 2')
    with pytest.raises(KeypointError, match="unknown keypoint file type '.txt'"):
        read_keypoints(tmp_path / 'p.txt')
    with pytest.raises(FileNotFoundError, match='nothere.json'):
        read_keypoints(tmp_path / 'nothere.json')
    assert set(KEYPOINT_FORMATS) == {'openpose', 'coco', 'list', 'pose_label'}


def test_wrong_joint_count_in_list(tmp_path):
    path = _write_json(tmp_path / 'seventeen.json', _standing_pose()[:17].tolist())
    with pytest.raises(KeypointError, match=r'seventeen\.json.*\(17, 2\).*COCO-17'):
        read_keypoints(path)


def test_nan_negative_out_of_image_and_too_few(tmp_path):
    pose = _standing_pose()
    nan_path = tmp_path / 'nan.json'
    nan_path.write_text(json.dumps([[float('nan'), 1.0]] + pose[1:].tolist()))   # json writes NaN
    with pytest.raises(KeypointError, match=r'nan\.json.*NaN'):
        read_keypoints(nan_path)
    neg = pose.copy()
    neg[2] = [-5, 30]
    with pytest.raises(KeypointError, match=r'neg\.json.*joint 2 \(right_shoulder\).*>= 0'):
        read_keypoints(_write_json(tmp_path / 'neg.json', neg.tolist()))
    half = pose.copy()
    half[2] = [-1, 30]
    with pytest.raises(KeypointError, match='missing joint is \\[-1, -1\\]'):
        read_keypoints(_write_json(tmp_path / 'half.json', half.tolist()))
    ok = _write_json(tmp_path / 'ok.json', pose.tolist())
    read_keypoints(ok, image_size=(200, 123))   # x max = 122, y max = 190: inside (x <= W, y <= H)
    with pytest.raises(KeypointError, match=r'ok\.json: joint 10 \(right_ankle\).*outside the 180x200'):
        read_keypoints(ok, image_size=(180, 200))
    few = np.full((18, 2), -1.0)
    few[:3] = pose[:3]
    with pytest.raises(KeypointError, match=r'few\.json: only 3 joint\(s\).*at least 4'):
        read_keypoints(_write_json(tmp_path / 'few.json', few.tolist()))
    assert read_keypoints(tmp_path / 'few.json', min_joints=3).shape == (18, 2)


def test_check_keypoints_shape():
    with pytest.raises(KeypointError, match=r'arr: keypoints have shape \(18, 3\)'):
        check_keypoints(np.zeros((18, 3)), source='arr')


def test_select_person_ties_and_empty():
    pose = _standing_pose()
    fewer = pose.copy()
    fewer[3] = -1   # the elbow does not change the extent
    people = [Person(fewer, np.ones(18, np.float32)), Person(pose, np.ones(18, np.float32))]
    assert select_person(people) is people[1]   # same extent -> more joints
    empty = Person(np.full((18, 2), -1, np.float32), np.zeros(18, np.float32))
    with pytest.raises(KeypointError, match='no person found'):
        select_person([empty], source='x.json')


# ----------------------------------------------------------------------------- writing

def test_write_openpose_json_round_trip(tmp_path):
    pose = _standing_pose(123.25, 45.5)
    pose[6] = -1
    path = write_openpose_json(tmp_path / 'out' / 'pose.json', pose)
    data = json.loads(path.read_text())
    assert len(data['people']) == 1 and len(data['people'][0]['pose_keypoints_2d']) == 54
    assert data['people'][0]['pose_keypoints_2d'][18:21] == [0, 0, 0]
    np.testing.assert_allclose(read_keypoints(path), pose)
    half = np.where(pose >= 0, pose * 0.5, -1)
    two = write_openpose_json(tmp_path / 'two.json', np.stack([pose, half]), scores=np.full((2, 18), 0.7))
    people = read_people(two)
    assert len(people) == 2 and people[1].scores[0] == pytest.approx(0.7) and people[1].scores[6] == 0
    assert not list((tmp_path / 'out').glob('.*tmp*'))


# ----------------------------------------------------------------------------- sequences

def test_sequence_natural_order_and_tracking(tmp_path):
    base = _standing_pose(100, 40)
    other = _standing_pose(300, 40, 2.0)   # a bigger person elsewhere
    folder = tmp_path / 'dance'
    folder.mkdir()
    for t in (1, 2, 10):
        moved = base + [3.0 * t, 0.0]
        people = [moved, other] if t != 2 else [other, moved]   # file order changes in frame 2
        _write_json(folder / f'frame{t}_keypoints.json',
                    {'people': [{'pose_keypoints_2d': _openpose_flat(p)} for p in people]})
    assert [p.name for p in list_keypoint_files(folder)] == [
        'frame1_keypoints.json', 'frame2_keypoints.json', 'frame10_keypoints.json']
    seq = read_keypoint_sequence(folder, person_index=0)   # the first person of every file
    np.testing.assert_allclose(seq[1], other)
    tracked = read_keypoint_sequence(folder)    # largest person first, then followed
    assert tracked.shape == (3, 18, 2)
    np.testing.assert_allclose(tracked[:, 0], [other[0]] * 3)
    files = list_keypoint_files(folder)
    first = read_keypoint_sequence([files[0]], person_index=0)
    np.testing.assert_allclose(first[0], base + [3.0, 0.0])


def test_moving_average():
    rng = np.random.default_rng(0)
    t = np.arange(30, dtype=np.float64)
    linear = np.stack([np.stack([10 + 2 * t, 50 + 0.5 * t], axis=1)] * 18, axis=1)   # [T, 18, 2]
    smoothed = smooth_moving_average(linear, window=5)
    np.testing.assert_allclose(smoothed[2:-2], linear[2:-2], atol=1e-4)   # linear motion kept away from the ends
    noisy = linear + rng.normal(0, 2.0, linear.shape)
    assert np.abs(smooth_moving_average(noisy, 7) - linear)[3:-3].std() < 0.6 * np.abs(noisy - linear).std()
    gap = linear.copy()
    gap[10, 4] = -1
    out = smooth_moving_average(gap, window=3)
    assert (out[10, 4] == -1).all()                       # stays missing
    np.testing.assert_allclose(out[11, 4], (linear[11, 4] + linear[12, 4]) / 2, atol=1e-4)   # gap excluded
    np.testing.assert_allclose(smooth_moving_average(noisy, 1), noisy, atol=1e-4)
    with pytest.raises(ValueError, match='odd integer'):
        smooth_moving_average(linear, window=4)


def test_one_euro():
    rng = np.random.default_rng(1)
    const = np.tile(np.array([[40.0, 60.0]]), (50, 18, 1))
    np.testing.assert_allclose(smooth_one_euro(const), const, atol=1e-4)
    noisy = const + rng.normal(0, 1.5, const.shape)
    err_in = np.abs(noisy - const)[10:].mean()
    err_out = np.abs(smooth_one_euro(noisy, fps=30, min_cutoff=0.5, beta=0.0) - const)[10:].mean()
    assert err_out < 0.5 * err_in
    gap = noisy.copy()
    gap[20:23, 0] = -1
    out = smooth_one_euro(gap)
    assert (out[20:23, 0] == -1).all()
    np.testing.assert_allclose(out[23, 0], gap[23, 0], atol=1e-4)   # the filter restarts after a gap
    np.testing.assert_allclose(smooth_keypoint_sequence(noisy, 'one_euro', fps=30), smooth_one_euro(noisy, fps=30))
    with pytest.raises(ValueError, match="unknown smoothing method 'kalman'"):
        smooth_keypoint_sequence(noisy, 'kalman')
    with pytest.raises(KeypointError, match=r'\[T, K, 2\]'):
        smooth_one_euro(np.zeros((5, 18)))


def test_parse_people_from_python_objects():
    pose = _standing_pose()
    people = parse_people({'people': [{'pose_keypoints_2d': _openpose_flat(pose)}]}, source='mem')
    np.testing.assert_allclose(people[0].keypoints, pose)
    with pytest.raises(KeypointError, match='mem: unknown keypoint format'):
        parse_people(42, source='mem')
