"""data.dataset_check: every file of every split is read once and all problems are reported together."""
from __future__ import annotations

import numpy as np
import pytest

from data.data_loader import create_dataset
from data.dataset_check import (DatasetCheckError, DatasetLayout, check_dataset, check_dataset_for_options,
                                require_clean_dataset)
from tests.data.helpers import make_opt
from tests.helpers import PLANTED_CATEGORIES, plant_defects
from util.flow_util import read_corr, write_corr
from util.io import load_pickle, save_pickle

# Both stages' split and pose files of the demo preset.
DEMO_LAYOUT = DatasetLayout(img_dir='Img/img/', seg_dir='Img/seg/', corr_dir='3d/hmr/corr/',
                            splits=(('Label/pair_split_clean.json', 'Label/pose_label_adapt.pkl'),
                                    ('Label/pair_split.json', 'Label/pose_label.pkl')),
                            image_size=(128, 64))


def expected_counts(strict_seg: bool = False) -> tuple[dict[str, int], dict[str, int]]:
    errors, warnings = {}, {}
    for name, (category, is_error) in PLANTED_CATEGORIES.items():
        is_error = is_error or (strict_seg and category.startswith('segmentation: labels'))
        (errors if is_error else warnings)[category] = 1
    return errors, warnings


def test_clean_demo_dataset_passes_and_every_file_is_counted(demo_root):
    report = check_dataset(demo_root, 'demo', DEMO_LAYOUT)
    assert report.ok and report.counts == {}, report.format()
    n_images = len(list((demo_root / 'Img/img').glob('*.jpg')))
    n_corr = len(list((demo_root / '3d/hmr/corr').glob('*.corr')))
    assert report.checked['images'] == report.checked['segmentations'] == n_images
    assert report.checked['correspondence files'] == n_corr  # every corr file belongs to a pair of some split
    assert report.format().endswith('dataset OK')


def test_all_planted_defects_are_reported_at_once(demo_copy):
    planted = plant_defects(demo_copy)
    report = check_dataset(demo_copy, 'demo', DEMO_LAYOUT, max_examples=50)
    errors, warnings = expected_counts()
    assert report.errors == errors
    assert report.warnings == warnings
    assert not report.ok
    text = report.format()
    for name, where in planted.items():
        category = PLANTED_CATEGORIES[name][0]
        block = text.split(f': {category}: 1\n', 1)[1].split('\n', 1)[0]
        assert where in block, f'{name}: {where} not named under {category!r}:\n{text}'
    assert text.splitlines()[-1] == f'{len(errors)} error(s) in {len(errors)} categories, {len(warnings)} warning(s)'


def test_strict_seg_makes_out_of_range_labels_errors(demo_copy):
    plant_defects(demo_copy)
    errors, warnings = expected_counts(strict_seg=True)
    report = check_dataset(demo_copy, 'demo', DEMO_LAYOUT, strict_seg=True)
    assert (report.errors, report.warnings) == (errors, warnings)


def test_process_pool_gives_the_same_report(demo_copy):
    plant_defects(demo_copy)
    serial = check_dataset(demo_copy, 'demo', DEMO_LAYOUT, max_examples=50)
    parallel = check_dataset(demo_copy, 'demo', DEMO_LAYOUT, max_examples=50, num_workers=2)
    assert parallel.counts == serial.counts
    assert {c: sorted(e) for c, e in parallel.examples.items()} == {c: sorted(e) for c, e in serial.examples.items()}


@pytest.mark.filterwarnings('ignore:.*outside 0..6:UserWarning')  # the planted seg labels: a warning, not an error
def test_every_file_error_is_refused_by_the_datasets_readers(demo_copy):
    # The check uses the datasets' readers: a file it calls an error stops a training that reaches it.
    planted = plant_defects(demo_copy)
    ds = create_dataset(make_opt(demo_copy, 'pose_transfer', fn_pose='Label/pose_label_adapt.pkl'), 'train')
    refused = set()

    def read(reader, *args):
        try:
            reader(*args)
        except (ValueError, FileNotFoundError) as e:
            refused.update(where for where in planted.values() if where in str(e))

    for img_id in sorted({i for pair in ds.pairs for i in pair}):
        read(ds.read_image, img_id)
        read(ds.read_seg, img_id)
    for id_1, id_2 in ds.pairs:
        read(ds.read_corr, id_1, id_2)
    file_errors = {where for name, where in planted.items()
                   if PLANTED_CATEGORIES[name][1] and where.startswith(str(demo_copy))}
    assert refused == file_errors


def test_range_and_nan_checks_of_keypoints_and_correspondences(demo_copy):
    poses = load_pickle(demo_copy / 'Label/pose_label.pkl')
    first = sorted(poses)[0]
    poses[first] = np.asarray(poses[first], np.float64)
    poses[first][2] = [np.inf, 1.0]
    poses[first][5] = [1e39, 1.0]  # finite in float64, inf in the datasets' float32
    poses[first][7] = [-1.0, -1.0]  # a missing joint: allowed
    save_pickle(poses, demo_copy / 'Label/pose_label.pkl')
    corr_path = sorted((demo_copy / '3d/hmr/corr').glob('*.corr'))[0]
    corr, vis = read_corr(corr_path)
    corr, vis = corr.copy(), vis.copy()
    vis[0, 0] = 0
    corr[0, 0] = [500.0, 3.0]  # a visible pixel mapping far outside the 64-pixel-wide source
    write_corr(corr_path, corr, vis)
    report = check_dataset(demo_copy, 'demo', DEMO_LAYOUT)
    assert report.errors == {'keypoints: NaN or inf': 1}
    assert 'joint(s) [2, 5]' in report.examples['keypoints: NaN or inf'][0]
    assert report.warnings == {'correspondence: visible points outside the source image': 1}
    assert str(corr_path) in report.examples['correspondence: visible points outside the source image'][0]


def test_missing_and_broken_label_files_are_reported(demo_copy, code_running_pickle):
    (demo_copy / 'Label/pair_split_clean.json').write_text('{"train": [["a", "b"], ["c"]]')
    _, marker = code_running_pickle(demo_copy / 'Label/pose_label.pkl', wrap=lambda p: {'x': p})
    (demo_copy / 'Label/pose_label_adapt.pkl').unlink()
    report = check_dataset(demo_copy, 'demo', DEMO_LAYOUT)
    assert report.errors == {'split file: unreadable': 1, 'pose file: unreadable': 1, 'pose file: missing': 1}
    assert 'refused to unpickle' in report.examples['pose file: unreadable'][0]
    assert not marker.exists()


def test_missing_root_and_incomplete_demo(tmp_path, demo_copy):
    report = check_dataset(tmp_path / 'nowhere', 'deepfashion', DEMO_LAYOUT)
    assert report.errors == {'dataset: missing': 1}
    assert 'download_deepfashion.sh' in report.examples['dataset: missing'][0]
    (demo_copy / 'manifest.json').unlink()
    assert check_dataset(demo_copy, 'demo', DEMO_LAYOUT).errors == {'dataset: incomplete demo': 1}


def test_options_check_covers_the_run_and_respects_corr_fallback(demo_copy):
    planted = plant_defects(demo_copy)
    opt = make_opt(demo_copy, 'flow')  # pair_split_clean.json with pose_label_adapt.pkl: no pose defects
    with pytest.raises(DatasetCheckError, match=rf'{demo_copy}.*8 error\(s\) in 8 categories') as info:
        require_clean_dataset(opt)
    assert set(info.value.report.errors) == {c for n, (c, e) in PLANTED_CATEGORIES.items()
                                             if e and planted[n].startswith(str(demo_copy))}
    # allow_corr_fallback: the datasets substitute zero flow, so broken correspondence files are warnings.
    report = check_dataset_for_options(make_opt(demo_copy, 'flow', allow_corr_fallback=1))
    assert not any(c.startswith('correspondence') for c in report.errors)
    assert {c for c in report.warnings if c.startswith('correspondence')} == {
        'correspondence: non-finite', 'correspondence: truncated', 'correspondence: missing'}


def test_options_check_passes_on_clean_data(demo_root, capsys):
    report = require_clean_dataset(make_opt(demo_root, 'pose_transfer'))
    assert report.ok
    assert capsys.readouterr().out.rstrip().endswith('dataset OK')


def test_wrong_image_size_option_is_reported_for_every_file(demo_root):
    report = check_dataset_for_options(make_opt(demo_root, 'flow', image_size=[256, 256]))
    assert set(report.errors) == {'image: wrong size', 'segmentation: wrong size', 'correspondence: wrong size'}
    assert report.errors['image: wrong size'] == report.checked['images']
