"""The page's work without a browser (and without Gradio): the model catalog and galleries, upload checks, the
service's requests against the pipeline, its error messages, and the built-in walk cycle."""
from __future__ import annotations

import json
import shutil
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from inference.media import load_image
from inference.pipeline import PoseTransferPipeline
from util.keypoints import read_keypoints, write_openpose_json
from webapp.catalog import list_models, resolve_data_root
from webapp.service import (AppError, PoseSpace, ReposeService, SourceChoice, pose_from_table, pose_table,
                            walk_cycle)
from webapp.uploads import UploadError, check_image_upload, extract_keypoint_zip, sniff_image_format

from tests.webapp.helpers import SCRIPTS  # noqa: F401  (puts scripts/ on sys.path, as running a script does)

import app as app_script  # noqa: E402  (scripts/app.py)


@pytest.fixture(scope='module')
def service(web_model, tmp_path_factory):
    svc = ReposeService(web_model.parent, device='cpu', detector_weights=tmp_path_factory.mktemp('nodet') / 'no.pth',
                        work_dir=tmp_path_factory.mktemp('web_work'))
    yield svc
    svc.close()


@pytest.fixture(scope='module')
def upload_dir(tmp_path_factory, demo_root):
    folder = tmp_path_factory.mktemp('uploads')
    gallery_ids = json.loads((demo_root / 'Label' / 'pair_split.json').read_text())['test'][0]
    shutil.copyfile(demo_root / 'Img' / 'img' / f'{gallery_ids[0]}.jpg', folder / 'photo.jpg')
    return folder


# ---------------------------------------------------------------------------------------------- catalog
def test_models_and_gallery_of_the_checkpoints_folder(service, web_model, demo_root):
    entries = {e.name: e for e in list_models(web_model.parent)}
    assert set(entries) == {'PoseTransfer_web', 'PoseTransfer_web_4'}  # the flow module is no pose-transfer model
    entry = entries['PoseTransfer_web']
    assert entry.label == 'PoseTransfer_web (demo, 128x64)' and entry.epochs == ('1', 'best', 'latest')
    assert resolve_data_root(entry, web_model.parent) == demo_root
    gallery = service.gallery('PoseTransfer_web')
    split = json.loads((demo_root / 'Label' / 'pair_split.json').read_text())['test']
    first_ids = list(dict.fromkeys(i for pair in split for i in pair))
    assert list(gallery.ids) == first_ids[:len(gallery)] and len(gallery) == len(first_ids)
    labels = read_keypoints(demo_root / 'Label' / 'pose_label.pkl', entry_id=gallery.ids[1])
    np.testing.assert_array_equal(gallery.poses[1], labels)
    assert 'test images of' in service.gallery_note('PoseTransfer_web')
    assert list_models(web_model.parent / 'absent') == []


def test_folder_without_weights_is_listed_and_its_error_is_readable(web_model, tmp_path):
    ckpt = tmp_path / 'ckpt'
    shutil.copytree(web_model.parent / 'FlowReg_web', ckpt / 'FlowReg_web')
    (ckpt / 'PoseTransfer_empty').mkdir()
    shutil.copyfile(web_model / 'train_opt.json', ckpt / 'PoseTransfer_empty' / 'train_opt.json')
    svc = ReposeService(ckpt, device='cpu')
    try:
        assert [e.label for e in svc.models()] == ['PoseTransfer_empty (demo, 128x64, no weights)']
        with pytest.raises(AppError, match=r'PoseTransfer_empty: no generator weights best_net_netG.pth or '
                                            r'latest_net_netG.pth; the folder has no \*_net_netG.pth file'):
            svc.repose('PoseTransfer_empty', SourceChoice(dataset_index=0), np.zeros((18, 2)), PoseSpace('model'))
        with pytest.raises(AppError, match='not a pose-transfer experiment folder'):
            svc.model('FlowReg_web')
    finally:
        svc.close()
    empty = ReposeService(tmp_path / 'nothing')
    with pytest.raises(AppError, match=r'no pose-transfer model in .*nothing/: run the quick start'):
        empty.model(None)
    empty.close()


# ---------------------------------------------------------------------------------------------- requests
def test_dataset_source_and_pose_run_like_the_test_script(service, web_model):
    gallery = service.gallery('PoseTransfer_web')
    out = service.repose('PoseTransfer_web', SourceChoice(dataset_index=0), gallery.poses[3], PoseSpace('model'))
    pipe = PoseTransferPipeline.from_pretrained(web_model, device='cpu')
    expected = pipe(gallery.images[0], gallery.poses[3], source_keypoints=gallery.poses[0], framing='identity',
                    return_intermediates=True)
    np.testing.assert_array_equal(out.image, expected.image)
    np.testing.assert_array_equal(load_image(out.path), expected.image)  # the download is the lossless PNG
    assert out.framing == 'identity' and out.summary.startswith('Done in ')
    labels = [p.label.split(' (')[0] for p in out.panels]
    assert labels == ['source', 'source pose', 'target pose', 'flow', 'visibility', 'warped source',
                      'generator output', 'pixel-warping mask', 'result']
    np.testing.assert_array_equal(out.panels[-1].image, out.image)
    np.testing.assert_array_equal(out.panels[5].image, expected.intermediates.warped_source)


def test_uploaded_photo_with_keypoints_is_framed_automatically(service, web_model, upload_dir, demo_root):
    gallery = service.gallery('PoseTransfer_web')
    kp_file = write_openpose_json(upload_dir / 'photo.json', gallery.poses[0])
    source = SourceChoice(image=upload_dir / 'photo.jpg', keypoints=kp_file)
    out = service.repose('PoseTransfer_web', source, gallery.poses[2], PoseSpace('model'))
    pipe = PoseTransferPipeline.from_pretrained(web_model, device='cpu')
    expected = pipe(upload_dir / 'photo.jpg', gallery.poses[2], source_keypoints=kp_file)
    assert out.framing == 'auto'
    np.testing.assert_array_equal(out.image, expected.image)


def test_sequence_walk_cycle_and_zip(service, upload_dir, tmp_path):
    gallery = service.gallery('PoseTransfer_web')
    poses = walk_cycle(gallery.poses[1], n_frames=4)
    out = service.sequence('PoseTransfer_web', SourceChoice(dataset_index=0), poses, PoseSpace('model'), fps=5)
    assert out.n_frames == 4 and out.path.suffix == '.gif'
    with Image.open(out.path) as gif:
        assert gif.n_frames == 4 and gif.size == (64, 128)
    # A walk that leaves the model frame (the dataset's poses reach the frame's edges) is framed automatically.
    wide = walk_cycle(gallery.poses[1], n_frames=4, swing_degrees=80)
    assert (wide[..., 0] > 64).any() or (wide[..., 1] > 128).any()
    out = service.sequence('PoseTransfer_web', SourceChoice(dataset_index=0), wide, PoseSpace('model'), fps=5)
    assert out.n_frames == 4
    archive = tmp_path / 'dance.zip'
    with zipfile.ZipFile(archive, 'w') as z:
        for t in (10, 2, 1):  # natural order: 1, 2, 10
            z.writestr(f'frames/f_{t}.json', json.dumps({'people': [{'pose_keypoints_2d': np.concatenate(
                [poses[t % 4], np.ones((18, 1))], 1).ravel().tolist()}]}))
        z.writestr('__MACOSX/frames/._f_1.json', 'junk')
    seq = service.read_sequence_zip(archive)
    np.testing.assert_allclose(seq, poses[[1, 2, 2]], atol=1e-3)


def test_requests_run_one_at_a_time(service):
    active, peak = [0], [0]

    def work():
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        threading.Event().wait(0.05)
        active[0] -= 1

    threads = [threading.Thread(target=service.run, args=(work,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1


# ---------------------------------------------------------------------------------------------- errors
def test_non_image_uploads_are_refused_before_decoding(service, tmp_path):
    fake = tmp_path / 'holiday.png'
    fake.write_text('not a picture')
    with pytest.raises(AppError, match=r'^holiday.png is not an image: its first bytes are not those of a JPEG'):
        service.check_source_upload(fake)
    truncated = tmp_path / 'broken.png'
    truncated.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 40)
    with pytest.raises(UploadError, match=r'broken.png looks like a PNG file but its header cannot be read'):
        check_image_upload(truncated)
    assert sniff_image_format(b'RIFF\0\0\0\0WEBPVP8 ') == 'WebP' and sniff_image_format(b'GIF89a') is None


def test_uploads_are_size_limited(tmp_path, web_model, upload_dir):
    small = ReposeService(web_model.parent, device='cpu', max_upload_bytes=1000)
    try:
        with pytest.raises(AppError, match=r'photo.jpg is 0.0 MB; uploads are limited to 0 MB'):
            small.check_source_upload(upload_dir / 'photo.jpg')
    finally:
        small.close()
    big = tmp_path / 'big.png'
    Image.new('RGB', (9000, 5000)).save(big)
    with pytest.raises(UploadError, match=r'big.png is 9000x5000 pixels; at most 40 megapixels'):
        check_image_upload(big)


def test_missing_detector_weights_and_bad_keypoint_files_read_as_messages(service, upload_dir, tmp_path):
    with pytest.raises(AppError, match=r'keypoint detector weights not found at .*no.pth') as info:
        service.detect_pose('PoseTransfer_web', upload_dir / 'photo.jpg')
    assert 'Traceback' not in str(info.value)
    bad = tmp_path / 'pose.json'
    bad.write_text('{"people": [')
    with pytest.raises(AppError, match=r'^pose.json is not valid JSON'):
        service.check_keypoint_file(bad)
    few = tmp_path / 'few.json'
    few.write_text(json.dumps([[10, 10], [12, 20]] + [[-1, -1]] * 16))
    with pytest.raises(AppError, match=r'only 2 joint\(s\) present'):
        service.check_keypoint_file(few)


def test_unexpected_errors_are_reported_without_a_trace(service):
    with pytest.raises(AppError, match=r'^internal error \(ZeroDivisionError\); the server log has the details$'):
        service.run(lambda: 1 / 0)
    assert service.run(lambda: 42) == 42  # the lock was released


def test_zip_members_are_written_flat_inside_the_folder(tmp_path):
    archive = tmp_path / 'evil.zip'
    with zipfile.ZipFile(archive, 'w') as z:
        z.writestr('../../outside.json', '[]')
        z.writestr('/abs/frame.json', '[]')
    written = extract_keypoint_zip(archive, tmp_path / 'out')
    assert sorted(p.name for p in written) == ['frame.json', 'outside.json']
    assert all(p.parent == tmp_path / 'out' for p in written) and not (tmp_path.parent / 'outside.json').exists()
    not_zip = tmp_path / 'x.zip'
    not_zip.write_text('no')
    with pytest.raises(UploadError, match='x.zip is not a ZIP archive'):
        extract_keypoint_zip(not_zip, tmp_path / 'out2')


# ---------------------------------------------------------------------------------------------- poses
def test_pose_table_round_trip_and_validation():
    pose = np.array([[10.5 + j, 20.25 + 3 * j] for j in range(18)], np.float32)
    pose[4] = -1
    rows = pose_table(pose)
    assert rows[0] == ['nose', 10.5, 20.25] and rows[4][1:] == [-1.0, -1.0]
    np.testing.assert_array_equal(pose_from_table(rows), pose)
    rows[3][1] = 'abc'
    with pytest.raises(AppError, match=r"joint 3 \(right_elbow\): x and y must be numbers"):
        pose_from_table(rows)
    with pytest.raises(AppError, match='needs 18 joints'):
        pose_from_table(rows[:5])
    rows = pose_table(pose)
    rows[2][1] = -5.0
    with pytest.raises(AppError, match=r'joint 2 \(right_shoulder\) has coordinates \[-5.0'):
        pose_from_table(rows)


def test_walk_cycle_swings_limbs_and_keeps_their_lengths(service):
    base = service.gallery('PoseTransfer_web').poses[0].copy()
    base[17] = -1  # a missing joint stays missing
    cycle = walk_cycle(base, n_frames=8)
    assert cycle.shape == (8, 18, 2) and (cycle[:, 17] == -1).all()
    np.testing.assert_allclose(cycle[0], base, atol=1e-4)  # sin(0) = 0: the stance
    for frame in cycle:
        for a, b in ((2, 3), (5, 6), (8, 9), (11, 12)):  # upper arms and thighs rotate rigidly
            assert np.linalg.norm(frame[b] - frame[a]) == pytest.approx(np.linalg.norm(base[b] - base[a]), abs=1e-3)
        np.testing.assert_array_equal(frame[[0, 1, 2, 5, 8, 11]], base[[0, 1, 2, 5, 8, 11]])
    # left and right legs swing in opposite directions
    quarter = cycle[2]
    assert np.sign(quarter[9, 0] - base[9, 0]) == -np.sign(quarter[12, 0] - base[12, 0]) != 0


# ---------------------------------------------------------------------------------------------- command line
def test_command_line_binds_to_loopback_and_warns_about_exposing():
    parser = app_script.build_parser()
    args = parser.parse_args([])
    assert args.host == '127.0.0.1' and not args.share and args.port == 7860 and args.max_upload_mb == 20
    text = ' '.join(parser.format_help().split())
    assert text.count('WARNING') == 2 and 'exposes the page to the network' in text
