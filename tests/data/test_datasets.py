"""Flow and pose-transfer datasets and loaders on the small synthetic dataset."""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import RandomSampler, SequentialSampler

from data.base_dataset import DataFileError, shift_image
from data.data_loader import DATASET_TYPES, create_dataset, make_dataloader
from data.flow_dataset import FlowDataset, shift_augment
from data.pose_transfer_dataset import PoseTransferDataset, affine_augment, affine_matrix, hue_jitter
from tests.data.helpers import make_opt
from util.flow_util import CorrFileError, read_corr, warp_acc_flow
from util.io import load_json, save_json

ITEM_KEYS = {'img_1', 'img_2', 'joint_c_1', 'joint_c_2', 'joint_1', 'joint_2', 'seg_label_1', 'seg_label_2',
             'seg_1', 'seg_2', 'flow_2to1', 'vis_2', 'id_1', 'id_2'}
H, W = 128, 64


def _warp_mae(item: dict) -> float:
    """Mean |warp(img_1, flow_2to1) - img_2| on vis-0 pixels, in [0, 255] units."""
    out = warp_acc_flow(item['img_1'][None], item['flow_2to1'][None])[0]
    m = item['vis_2'][0] == 0
    assert m.sum() > 50
    return float((out - item['img_2']).abs().mean(0)[m].mean() * 127.5)


def _joints_on_body(item: dict) -> float:
    """Fraction of valid target joints within 2 px of a body pixel of the target segmentation."""
    seg = cv2.dilate((item['seg_label_2'][0].numpy() > 0).astype(np.uint8), np.ones((5, 5), np.uint8))
    jc = item['joint_c_2'].numpy()
    valid = (jc >= 0).all(axis=1)
    xs = np.clip(np.round(jc[valid, 0]).astype(int), 0, W - 1)
    ys = np.clip(np.round(jc[valid, 1]).astype(int), 0, H - 1)
    return float(seg[ys, xs].mean())


@pytest.mark.parametrize('dataset_type', ['flow', 'pose_transfer'])
def test_item_matches_spec(demo_root: Path, dataset_type: str) -> None:
    opt = make_opt(demo_root, dataset_type)
    ds = create_dataset(opt, 'test')
    assert isinstance(ds, DATASET_TYPES[dataset_type])
    split = load_json(demo_root / opt.fn_split)['test']
    assert len(ds) == len(split)
    poses = pickle.loads((demo_root / opt.fn_pose).read_bytes())
    # A pair with visible pixels (front/back pairs have none).
    corr_dir = demo_root / '3d/hmr/corr'
    k = next(k for k, (a, b) in enumerate(split) if (read_corr(corr_dir / f'{b}_{a}.corr')[1] == 0).any())
    item = ds[k]
    assert set(item) == ITEM_KEYS
    id_1, id_2 = split[k]
    assert (item['id_1'], item['id_2']) == (id_1, id_2)
    shapes = {'img_1': (3, H, W), 'img_2': (3, H, W), 'joint_c_1': (18, 2), 'joint_c_2': (18, 2),
              'joint_1': (18, H, W), 'joint_2': (18, H, W), 'seg_label_1': (1, H, W), 'seg_label_2': (1, H, W),
              'seg_1': (7, H, W), 'seg_2': (7, H, W), 'flow_2to1': (2, H, W), 'vis_2': (1, H, W)}
    for key, shape in shapes.items():
        assert tuple(item[key].shape) == shape, key
        assert item[key].dtype == torch.float32, key
    for n, img_id in ((1, id_1), (2, id_2)):
        bgr = cv2.imread(str(demo_root / 'Img/img' / f'{img_id}.jpg'))
        np.testing.assert_allclose(item[f'img_{n}'].numpy(), (bgr[:, :, ::-1].transpose(2, 0, 1) / 255.0 - 0.5) / 0.5,
                                   atol=1e-6)
        jc = np.array(poses[img_id], dtype=np.float32)
        np.testing.assert_array_equal(item[f'joint_c_{n}'].numpy(), jc)
        ys, xs = np.mgrid[0:H, 0:W]
        for j in range(18):
            hm = item[f'joint_{n}'][j].numpy()
            if jc[j, 0] == -1 or jc[j, 1] == -1:
                assert hm.sum() == 0
            else:
                expected = ((xs - jc[j, 0]) ** 2 + (ys - jc[j, 1]) ** 2 <= opt.joint_radius ** 2)
                np.testing.assert_array_equal(hm, expected.astype(np.float32))
                assert hm.sum() > 0
        seg = cv2.imread(str(demo_root / 'Img/seg' / f'{img_id}.bmp'), cv2.IMREAD_GRAYSCALE)
        np.testing.assert_array_equal(item[f'seg_label_{n}'][0].numpy(), seg)
        onehot = item[f'seg_{n}'].numpy()
        np.testing.assert_array_equal(onehot.sum(0), 1)
        np.testing.assert_array_equal(onehot.argmax(0), seg)
    corr, raw = read_corr(demo_root / '3d/hmr/corr' / f'{id_2}_{id_1}.corr')
    raw = raw[:, :, 0]
    vis = np.where(raw < 2, cv2.medianBlur(raw, 5), raw)  # the original's smoothing
    np.testing.assert_array_equal(item['vis_2'][0].numpy(), vis)
    assert set(np.unique(vis).tolist()) <= {0, 1, 2} and (vis == 0).any()
    grid = np.stack([xs, ys])
    expected_flow = (corr.transpose(2, 0, 1) - grid) * (vis < 2)
    np.testing.assert_allclose(item['flow_2to1'].numpy(), expected_flow, atol=1e-5)
    assert (item['flow_2to1'].numpy()[:, vis == 2] == 0).all()
    # The item's flow reproduces the target on visible pixels.
    assert _warp_mae(item) < 12


def test_pose_dataset_clips_flow_flow_dataset_does_not(demo_copy: Path) -> None:
    id_1, id_2 = load_json(demo_copy / 'Label/pair_split.json')['test'][0]
    path = demo_copy / '3d/hmr/corr' / f'{id_2}_{id_1}.corr'
    corr, vis = read_corr(path)
    corr = corr.copy()
    corr[vis[:, :, 0] < 2] = [1000.0, -1000.0]  # far outside image 1
    from util.flow_util import write_corr
    write_corr(path, corr, vis)
    pose = PoseTransferDataset(make_opt(demo_copy, 'pose_transfer'), 'test')[0]
    flow = FlowDataset(make_opt(demo_copy, 'flow', fn_split='Label/pair_split.json'), 'test')[0]['flow_2to1']
    human = pose['vis_2'][0] < 2
    assert pose['flow_2to1'][0][human].max() == W and pose['flow_2to1'][1][human].min() == -H
    assert flow[0][human].min() > W and flow[1][human].max() < -H


def test_shift_augment_hand_computed() -> None:
    img = np.random.default_rng(0).uniform(-1, 1, (H, W, 3)).astype(np.float32)
    seg = np.full((H, W), 3, np.uint8)
    flow = np.zeros((H, W, 2), np.float32)
    flow[..., 0], flow[..., 1] = 7.0, -4.0
    vis = np.zeros((H, W, 1), np.uint8)
    vis[:10] = 2
    flow[:10] = 0
    jc = np.array([[10, 20], [-1, -1], [62, 5], [1, 1], [63, 127]], np.float32)
    dx, dy = 3, -2
    img2, seg2, jc2, flow2, vis2 = shift_augment(img, seg, jc, flow, vis, dx, dy)
    np.testing.assert_array_equal(jc2, [[13, 18], [-1, -1], [-1, -1], [-1, -1], [-1, -1]])
    np.testing.assert_array_equal(img2[40, 20], img[42, 17])
    assert (img2[:, :3] == -1).all() and (img2[-2:] == -1).all()
    assert (vis2[:, :3] == 2).all() and (vis2[-2:] == 2).all() and (seg2[:, :3] == 0).all()
    # Moved pixel keeps pointing at the same source point: flow minus the shift.
    np.testing.assert_allclose(flow2[40, 20], [7 - dx, -4 - dy])
    assert (flow2[vis2[:, :, 0] == 2] == 0).all()
    # Rows 0-9 were background; shifted up by 2 they end at row 7.
    assert vis2[7, 20, 0] == 2 and vis2[8, 20, 0] == 0
    np.testing.assert_array_equal(shift_image(np.arange(6).reshape(2, 3), 1, 0, -7), [[-7, 0, 1], [-7, 3, 4]])


def test_flow_shift_augmentation_keeps_flow_consistent(demo_root: Path) -> None:
    base = FlowDataset(make_opt(demo_root, 'flow'), 'train')
    aug = FlowDataset(make_opt(demo_root, 'flow', is_train=True, aug_shiftx_range=6, aug_shifty_range=6), 'train')
    assert not base.augment and aug.augment
    assert not FlowDataset(make_opt(demo_root, 'flow', is_train=True), 'test').augment
    changed = 0
    for k in range(6):
        np.random.seed(k)
        a, b = base[k], aug[k]
        changed += int(not torch.equal(a['img_2'], b['img_2']))
        assert torch.equal(a['img_1'], b['img_1']) and torch.equal(a['joint_c_1'], b['joint_c_1'])
        assert _warp_mae(b) < _warp_mae(a) + 1.0  # integer shift: no resampling added
        assert _joints_on_body(b) >= 0.85
    assert changed >= 4


@pytest.mark.parametrize('hw_order', ['as_written', 'intended'])
def test_pose_affine_augmentation_keeps_flow_consistent(demo_root: Path, hw_order: str) -> None:
    base = PoseTransferDataset(make_opt(demo_root, 'pose_transfer'), 'train')
    aug = PoseTransferDataset(make_opt(demo_root, 'pose_transfer', is_train=True, use_augmentation=1,
                                       aug_affine_hw_order=hw_order), 'train')
    assert aug.augment and not base.augment
    for k in range(6):
        np.random.seed(100 + k)
        a, b = base[k], aug[k]
        assert not torch.equal(a['img_2'], b['img_2'])
        assert torch.equal(a['img_1'], b['img_1'])
        assert _warp_mae(b) < 12.0  # bilinear resampling of image and corr adds a little (a broken flow: > 20)
        assert _joints_on_body(b) >= 0.85
        assert set(torch.unique(b['vis_2']).tolist()) <= {0.0, 1.0, 2.0}
        np.testing.assert_array_equal(b['seg_2'].sum(0).numpy(), 1)


def test_affine_matrix_and_joints_hand_computed() -> None:
    np.testing.assert_allclose(affine_matrix(1.1, 2, -1, (128, 64), 'as_written'), [[1.1, 0, -4.4], [0, 1.1, -4.2]])
    np.testing.assert_allclose(affine_matrix(1.1, 2, -1, (128, 64), 'intended'), [[1.1, 0, -1.2], [0, 1.1, -7.4]])
    np.testing.assert_allclose(affine_matrix(0.9, 0, 0, (64, 64), 'as_written'),
                               affine_matrix(0.9, 0, 0, (64, 64), 'intended'))
    with pytest.raises(ValueError, match='as_written'):
        affine_matrix(1.0, 0, 0, (8, 8), 'hw')
    m = np.array([[2.0, 0, -10], [0, 2.0, 5]])
    jc = np.array([[10, 20], [-1, -1], [40, 3], [63.5, 10], [64, 10]], np.float32)
    img = np.zeros((H, W, 3), np.float32)
    img[20, 10] = 1.0
    out = affine_augment(img, np.zeros((H, W), np.uint8), jc, np.zeros((H, W, 2), np.float32),
                         np.zeros((H, W, 1), np.uint8), m)
    img2, seg2, jc2, corr2, vis2 = out
    # (40, 3) -> (70, 11) leaves the image; (64, 10) was outside before; (63.5, 10) -> (117, 25) leaves.
    np.testing.assert_allclose(jc2, [[10, 45], [-1, -1], [-1, -1], [-1, -1], [-1, -1]])
    assert img2[45, 10, 0] == 1.0  # the pixel moved with its joint
    assert vis2.shape == (H, W, 1) and seg2.shape == (H, W) and corr2.shape == (H, W, 2)


def test_hue_jitter_same_shift_on_both_images() -> None:
    rng = np.random.default_rng(1)
    img = rng.uniform(-1, 1, (16, 8, 3)).astype(np.float32)
    j1, j2 = hue_jitter(img, img, 0.15)
    np.testing.assert_array_equal(j1, j2)
    assert np.abs(j1 - img).mean() > 0.05 and j1.min() >= -1 and j1.max() <= 1
    z1, _ = hue_jitter(img, img, 0.0)
    err = np.abs(z1 - img)
    assert err.mean() < 2 * 2 / 255 and err.max() < 0.05  # only the 8-bit (and 8-bit HSV) round trip


def test_color_jitter_in_dataset(demo_root: Path) -> None:
    opt = make_opt(demo_root, 'pose_transfer', is_train=True, use_augmentation=1, aug_color_jit=1,
                   aug_shiftx_range=0, aug_shifty_range=0, aug_scale_range=1.0)
    np.random.seed(3)
    item = PoseTransferDataset(opt, 'train')[0]
    base = PoseTransferDataset(make_opt(demo_root, 'pose_transfer'), 'train')[0]
    assert not torch.allclose(item['img_1'], base['img_1'], atol=0.05)
    torch.testing.assert_close(item['flow_2to1'], base['flow_2to1'])


@pytest.mark.parametrize('name,hint', [('deepfashion', 'bash scripts/download_deepfashion.sh'),
                                       ('market', 'bash scripts/download_market1501.sh'),
                                       ('demo', 'python scripts/make_demo_dataset.py')])
def test_missing_root_names_the_script(tmp_path: Path, name: str, hint: str) -> None:
    opt = make_opt(tmp_path / 'nowhere', 'flow', dataset_name=name)
    with pytest.raises(FileNotFoundError, match=hint.replace('.', r'\.')):
        create_dataset(opt, 'train')


def test_incomplete_demo_dataset(demo_copy: Path) -> None:
    (demo_copy / 'manifest.json').unlink()
    with pytest.raises(FileNotFoundError, match='make_demo_dataset.py --out .* --force'):
        create_dataset(make_opt(demo_copy), 'train')


def test_missing_image_names_file(demo_copy: Path) -> None:
    ds = create_dataset(make_opt(demo_copy), 'train')
    path = demo_copy / 'Img/img' / f'{ds.pairs[0][1]}.jpg'
    path.unlink()
    with pytest.raises(FileNotFoundError, match=str(path)):
        ds[0]


def test_truncated_image_and_seg_name_file(demo_copy: Path) -> None:
    ds = create_dataset(make_opt(demo_copy), 'train')
    img = demo_copy / 'Img/img' / f'{ds.pairs[0][0]}.jpg'
    good = img.read_bytes()
    img.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataFileError, match=f'{img}.*truncated'):
        ds[0]
    img.write_bytes(good)
    seg = demo_copy / 'Img/seg' / f'{ds.pairs[1][1]}.bmp'
    seg.write_bytes(seg.read_bytes()[:-100])
    with pytest.raises(DataFileError, match=f'{seg}.*truncated'):
        ds[1]


def test_empty_image_and_seg_files_say_so(demo_copy: Path) -> None:
    ds = create_dataset(make_opt(demo_copy), 'train')
    id_1, id_2 = ds.pairs[0]
    seg = demo_copy / 'Img/seg' / f'{id_2}.bmp'
    seg.write_bytes(b'')
    with pytest.raises(DataFileError, match=rf'segmentation {seg} is empty \(0 bytes\)'):
        ds[0]
    img = demo_copy / 'Img/img' / f'{id_1}.jpg'
    img.write_bytes(b'')
    with pytest.raises(DataFileError, match=rf'image {img} is empty \(0 bytes\)'):
        ds[0]


def test_image_of_another_format_or_not_an_image(demo_copy: Path) -> None:
    ds = create_dataset(make_opt(demo_copy), 'train')
    id_1 = ds.pairs[0][0]
    img = demo_copy / 'Img/img' / f'{id_1}.jpg'
    pixels = cv2.imdecode(np.frombuffer(img.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    expected = ds[0]['img_1']
    # OpenCV (and the original's cv2.imread) decode by content: a PNG named .jpg is read, not called truncated.
    img.write_bytes(cv2.imencode('.png', pixels)[1].tobytes())
    assert torch.equal(ds[0]['img_1'], expected)
    img.write_bytes(b'404 Not Found: the download failed\n' * 20)
    with pytest.raises(DataFileError, match=rf"image {img} cannot be decoded: not an image.*b'404 Not Found") as info:
        ds[0]
    assert 'truncated' not in str(info.value)
    img.write_bytes(cv2.imencode('.png', pixels)[1].tobytes())
    seg = demo_copy / 'Img/seg' / f'{id_1}.bmp'
    seg.write_text('<html>quota exceeded</html>')
    with pytest.raises(DataFileError, match=rf"segmentation {seg} cannot be decoded: not an image.*b'<html>"):
        ds[0]


@pytest.mark.parametrize('dataset_type', ['flow', 'pose_transfer'])
def test_seg_labels_outside_the_classes(demo_copy: Path, dataset_type: str) -> None:
    ds = create_dataset(make_opt(demo_copy, dataset_type), 'test')
    id_1, id_2 = ds.pairs[0]
    path = demo_copy / 'Img/seg' / f'{id_2}.bmp'
    seg = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    seg[10:12, 20:25] = 9    # 10 pixels
    seg[40, 30] = 255
    cv2.imwrite(str(path), seg)
    # The original's one-hot map has all-zero rows there; the file is reported once, with the count.
    with pytest.warns(UserWarning, match=rf'{path}: 11 pixel\(s\) with labels \[9, 255\] outside 0..6'):
        item = ds[0]
    one_hot = item['seg_2'].numpy()
    assert one_hot[:, 10:12, 20:25].sum() == 0 and one_hot[:, 40, 30].sum() == 0
    assert (one_hot.sum(axis=0) == 1).sum() == H * W - 11
    assert item['seg_label_2'][0, 10, 20] == 9
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        ds[0]  # same file: no second warning
    strict = create_dataset(make_opt(demo_copy, dataset_type, strict_seg=1), 'test')
    assert strict.strict_seg
    with pytest.raises(DataFileError, match=rf'{path}: 11 pixel\(s\) with labels \[9, 255\].*--strict_seg 1'):
        strict[0]


def test_truncated_corr_names_file(demo_copy: Path) -> None:
    ds = create_dataset(make_opt(demo_copy, 'pose_transfer'), 'train')
    id_1, id_2 = ds.pairs[0]
    path = demo_copy / '3d/hmr/corr' / f'{id_2}_{id_1}.corr'
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(CorrFileError, match=f'{path}.*truncated'):
        ds[0]


@pytest.mark.parametrize('dataset_type', ['flow', 'pose_transfer'])
def test_non_finite_correspondence_names_file_and_pair(demo_copy: Path, dataset_type: str) -> None:
    ds = create_dataset(make_opt(demo_copy, dataset_type), 'train')
    id_1, id_2 = ds.pairs[0]
    path = demo_copy / '3d/hmr/corr' / f'{id_2}_{id_1}.corr'
    corr, vis = read_corr(path)
    corr = corr.copy()
    corr[5, 7, 0] = np.nan
    corr[9, 2, 1] = np.inf
    write_corr_unchecked(path, corr, vis)
    with pytest.raises(CorrFileError, match=rf"{path}.*2 non-finite.*{id_1}.*{id_2}"):
        ds[0]


@pytest.mark.parametrize('bad_value', [np.nan, np.inf])
def test_non_finite_keypoints_name_file_and_id(demo_copy: Path, bad_value: float) -> None:
    fn = demo_copy / 'Label/pose_label.pkl'
    poses = pickle.loads(fn.read_bytes())
    ds = create_dataset(make_opt(demo_copy, 'pose_transfer'), 'train')
    bad = ds.pairs[0][1]
    poses[bad][3] = [12.0, bad_value]
    fn.write_bytes(pickle.dumps(poses))
    ds = create_dataset(make_opt(demo_copy, 'pose_transfer'), 'train')
    with pytest.raises(DataFileError, match=rf"{fn}.*{bad}.*NaN or inf at joint\(s\) \[3\]"):
        ds[0]


def write_corr_unchecked(path: Path, corr: np.ndarray, vis: np.ndarray) -> None:
    """Write a .corr file byte by byte (write_corr refuses non-finite values)."""
    h, w = corr.shape[:2]
    path.write_bytes(np.array([w, h], '<i4').tobytes() + corr.astype('<f4').tobytes() + vis.astype('u1').tobytes())


def test_wrong_shape_pose_entry_names_id(demo_copy: Path) -> None:
    fn = demo_copy / 'Label/pose_label.pkl'
    poses = pickle.loads(fn.read_bytes())
    ds = create_dataset(make_opt(demo_copy, 'pose_transfer'), 'train')
    bad = ds.pairs[0][0]
    poses[bad] = poses[bad][:17]
    fn.write_bytes(pickle.dumps(poses))
    ds = create_dataset(make_opt(demo_copy, 'pose_transfer'), 'train')
    with pytest.raises(DataFileError, match=f"{bad}.*shape \\(17, 2\\)"):
        ds[0]


@pytest.mark.parametrize('dataset_type', ['flow', 'pose_transfer'])
def test_pose_file_cannot_run_code(demo_copy: Path, code_running_pickle, dataset_type: str) -> None:
    opt = make_opt(demo_copy, dataset_type)
    real = pickle.loads((demo_copy / opt.fn_pose).read_bytes())
    path, marker = code_running_pickle(demo_copy / opt.fn_pose, lambda evil: {**real, 'extra': evil})
    with pytest.raises(ValueError, match=rf"{path}.*'posix\.system'"):
        create_dataset(opt, 'train')
    assert not marker.exists()


def test_split_id_absent_from_pose_file(demo_copy: Path) -> None:
    fn = demo_copy / 'Label/pair_split_clean.json'
    split = load_json(fn)
    split['train'].append(['synthid99999999_00front', split['train'][0][0]])
    save_json(split, fn)
    with pytest.raises(DataFileError, match='synthid99999999_00front'):
        create_dataset(make_opt(demo_copy), 'train')
    create_dataset(make_opt(demo_copy), 'test')  # other splits are unaffected
    with pytest.raises(KeyError, match="'test', 'train'"):
        create_dataset(make_opt(demo_copy), 'val')


def test_wrong_image_size(demo_root: Path) -> None:
    ds = create_dataset(make_opt(demo_root, 'pose_transfer', image_size=[64, 32]), 'test')
    with pytest.raises(DataFileError, match='is 128x64 .* opt.image_size is 64x32'):
        ds[0]


def test_corr_fallback_counts_substitutions(demo_copy: Path) -> None:
    for dataset_type in ('flow', 'pose_transfer'):
        ds = create_dataset(make_opt(demo_copy, dataset_type, allow_corr_fallback=1), 'test')
        id_1, id_2 = ds.pairs[0]
        path = demo_copy / '3d/hmr/corr' / f'{id_2}_{id_1}.corr'
        if path.exists():
            path.unlink()
        with pytest.warns(UserWarning, match=f'{path}.*allow_corr_fallback'):
            item = ds[0]
        assert ds.corr_fallback_count == 1
        assert (item['flow_2to1'] == 0).all() and (item['vis_2'] == 2).all()
        ds[1]  # a readable file is not counted
        with pytest.warns(UserWarning):
            ds[0]
        assert ds.corr_fallback_count == 2
        with pytest.raises(CorrFileError, match=str(path)):
            create_dataset(make_opt(demo_copy, dataset_type), 'test')[0]


def test_loader_settings_debug_and_set_len(demo_root: Path) -> None:
    opt = make_opt(demo_root, 'flow', is_train=True, batch_size=5, aug_shiftx_range=0, aug_shifty_range=0)
    train_set = create_dataset(opt, 'train')
    loader = make_dataloader(train_set, opt.batch_size, shuffle=True, drop_last=True, seed=3)
    assert isinstance(loader.sampler, RandomSampler) and loader.drop_last and loader.batch_size == 5
    assert loader.num_workers == 0 and not loader.pin_memory
    # The seed fixes the order; two loaders with the same seed agree.
    first = [b['id_1'] for b in make_dataloader(train_set, 5, shuffle=True, seed=3)]
    assert first == [b['id_1'] for b in make_dataloader(train_set, 5, shuffle=True, seed=3)]
    test_opt = make_opt(demo_root, 'pose_transfer', batch_size=5)
    test = make_dataloader(create_dataset(test_opt, 'test'), test_opt.batch_size)
    assert isinstance(test.sampler, SequentialSampler) and not test.drop_last
    batches = list(test)
    n_test = len(load_json(demo_root / 'Label/pair_split.json')['test'])
    assert sum(len(b['id_1']) for b in batches) == n_test  # last partial batch kept
    assert isinstance(batches[0]['id_1'], list) and all(isinstance(s, str) for s in batches[0]['id_2'])
    assert batches[0]['img_1'].shape == (5, 3, H, W)
    with pytest.raises(ValueError, match="'flow', 'pose_transfer'"):
        create_dataset(make_opt(demo_root, 'segmentation'), 'train')
    full = create_dataset(opt, 'train')
    assert len(full) == 48
    assert len(create_dataset(make_opt(demo_root, 'flow', debug=True), 'train')) == 32
    full.set_len(7)
    assert len(full) == 7 and full[6]['id_1'] == full.pairs_all[6][0]
    full.set_len(0)
    assert len(full) == 48


def test_with_project_option_classes(demo_root: Path) -> None:
    from options.flow_regression_options import TrainFlowRegressionOptions
    from options.pose_transfer_options import TrainPoseTransferOptions
    common = ['--dataset_name', 'demo', '--data_root', str(demo_root), '--gpu_ids', '-1', '--num_workers', '0']
    for cls, expected in ((TrainFlowRegressionOptions, FlowDataset), (TrainPoseTransferOptions, PoseTransferDataset)):
        opt = cls().parse(common, display=False, save=False)
        ds = create_dataset(opt, 'test')
        assert isinstance(ds, expected) and set(ds[0]) == ITEM_KEYS
        assert tuple(ds[0]['img_1'].shape) == (3, H, W)


def test_loader_workers_keep_freed_memory_and_give_the_same_items(demo_root: Path) -> None:
    opt = make_opt(demo_root, 'pose_transfer', batch_size=4)
    test_set = create_dataset(opt, 'test')
    subset = torch.utils.data.Subset(test_set, range(8))
    in_process = list(make_dataloader(subset, 4))
    loader = make_dataloader(subset, 4, num_workers=1)
    assert loader.worker_init_fn is not None and not loader.pin_memory  # pinned only when training on CUDA
    with_workers = list(loader)
    for a, b in zip(in_process, with_workers, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], torch.Tensor):
                assert torch.equal(a[key], b[key]), key
            else:
                assert a[key] == b[key], key


@pytest.mark.parametrize('joint_mode', ['binary', 'gaussian'])
@pytest.mark.parametrize('augment', [False, True])
@pytest.mark.parametrize('dataset_type', ['flow', 'pose_transfer'])
def test_maps_on_device_batches_equal_the_loader_maps(demo_root: Path, dataset_type: str, augment: bool,
                                                      joint_mode: str) -> None:
    """--maps_on_device: the items lack the derived maps; drawn on the batch they equal the loader's."""
    from data.base_dataset import DEVICE_MAP_KEYS, draw_device_maps
    kw = dict(is_train=augment, use_augmentation=int(augment), joint_mode=joint_mode,
              joint_radius=4 if joint_mode == 'binary' else 2.5)
    full_ds = create_dataset(make_opt(demo_root, dataset_type, **kw), 'train')
    compact_ds = create_dataset(make_opt(demo_root, dataset_type, maps_on_device=1, **kw), 'train')
    batches = []
    for ds in (full_ds, compact_ds):
        np.random.seed(5)  # the same augmentation draws for both
        batches.append(torch.utils.data.default_collate([ds[i] for i in range(0, 40, 5)]))
    full, compact = batches
    assert set(compact) == ITEM_KEYS - set(DEVICE_MAP_KEYS)
    assert all(torch.equal(full[k], compact[k]) for k in compact if torch.is_tensor(compact[k]))
    if dataset_type == 'flow' or augment:  # fractional keypoints (the adapted labels; the affine augmentation)
        assert (compact['joint_c_2'] != compact['joint_c_2'].round()).any()
    draw_device_maps(compact, full_ds.opt.joint_mode, full_ds.opt.joint_radius, full_ds.opt.seg_nc)
    for key in DEVICE_MAP_KEYS:
        assert compact[key].dtype == full[key].dtype and compact[key].shape == full[key].shape
        if joint_mode == 'binary' or key.startswith('seg'):
            assert torch.equal(compact[key], full[key]), key
        else:  # float64 exp of torch and numpy may differ in the last bit: at most one float32 ulp
            assert torch.allclose(compact[key], full[key], rtol=2 ** -23, atol=0), key
    assert full['joint_2'].sum() > 0 and full['seg_2'][:, 1:].sum() > 0
    with pytest.raises(ValueError, match='already holds'):
        draw_device_maps(compact, 'binary', 4, 7)
