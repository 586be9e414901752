"""PoseTransferPipeline on tiny random-weight models: loading, the model input, framing, batches, sequences, the
detector path, intermediates and the errors for bad input.

The reproduction of the test script's outputs with a trained demo model is in tests/scripts/test_repose.py.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from data.data_loader import create_dataset
from data.synthetic import DemoConfig, generate_demo_dataset
from inference.media import ImageError
from inference.pipeline import (PANEL_COLUMNS, KeypointFile, ModelFolderError, PoseTransferPipeline, PreparedPair,
                                ReposeResult, check_inference_support, encode_pairs, load_inference_options,
                                resolve_epoch)
from models.keypoint_detector import Detection, KeypointDetector, NoPersonFoundError
from options.base_options import merge_train_options
from options.pose_transfer_options import TestPoseTransferOptions
from util.framing import Frame, bone_scale_ratio, frame_from_box, frame_from_keypoints, paste_back
from util.keypoints import KeypointError, read_keypoints, smooth_moving_average, valid_joints, write_openpose_json

from tests.inference.helpers import RandomKeypointRCNN, rotate_arms, skeleton, synthetic_photo, write_model_folder

DEMO_HW = (128, 64)


@pytest.fixture(scope='module')
def pipe(model_dir) -> PoseTransferPipeline:
    return PoseTransferPipeline.from_pretrained(model_dir, device='cpu')


@pytest.fixture(scope='module')
def photo():
    """A 480x640 photo with a person, its keypoints, and a target pose from another 'photo' (other size/place)."""
    pose = skeleton(300, 120, 2.0)
    return synthetic_photo(pose), pose, rotate_arms(skeleton(150, 40, 1.2), 60)


@pytest.fixture(scope='module')
def tiny_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp('inference_demo') / 'demo'
    generate_demo_dataset(root, DemoConfig(seed=2, image_size=DEMO_HW, n_train_identities=1, n_test_identities=1,
                                           images_per_identity=2, test_pairs_per_identity=2, n_test_small=1),
                          workers=1, verbose=False)
    return root


# ----------------------------------------------------------------------------------------------- loading
def test_from_pretrained_loads_the_folder_with_running_batchnorm(pipe, model_dir):
    assert pipe.image_size == DEMO_HW and pipe.which_epoch == 'best' and pipe.bn_mode == 'running'
    assert pipe.model_dir == model_dir and pipe.device == torch.device('cpu')
    assert pipe.framing.keypoint_fill == 0.76  # the demo preset, from the model's dataset
    assert not pipe.model.netG.training and not pipe.model.netPW.training and not pipe.model.netF.training
    saved = torch.load(model_dir / 'best_net_netPW.pth', weights_only=True)
    for key, value in pipe.model.netPW.state_dict().items():
        assert torch.equal(value, saved[key]), key
    batch_pipe = PoseTransferPipeline.from_pretrained(model_dir, device='cpu', bn_mode='batch')
    assert batch_pipe.model.netG.training  # the test script's original semantics


def test_options_are_the_test_scripts_merge(model_dir):
    """Same merged options as the test script's command line for this folder (bar the id prefix)."""
    ours = load_inference_options(model_dir, device='cpu', which_epoch='best', bn_mode='running')
    test_opt = TestPoseTransferOptions().parse(['--id', model_dir.name, '--checkpoints_dir', str(model_dir.parent),
                                                '--gpu_ids', '-1', '--which_epoch', 'best', '--bn_mode', 'running',
                                                '--num_workers', '0'], display=False, save=False)
    assert vars(ours) == vars(merge_train_options(test_opt))


def test_epoch_defaults_to_best_then_latest(tmp_path):
    folder = write_model_folder(tmp_path, labels=('latest', '3'))
    assert resolve_epoch(folder) == 'latest' and resolve_epoch(folder, 3) == '3'
    with pytest.raises(ModelFolderError, match=r"no generator weights 7_net_netG.pth; the folder has the epochs "
                                               r"\['3', 'latest'\]"):
        PoseTransferPipeline.from_pretrained(folder, device='cpu', which_epoch=7)


@pytest.mark.parametrize('damage, message', [
    ('no_folder', 'model folder not found'),
    ('no_options', 'has no train_opt.json'),
    ('no_weights', 'no \\*_net_netG.pth file'),
    ('no_netPW', 'best_net_netPW.pth not found'),
    ('no_flow', 'FlowReg_tiny'),
])
def test_model_folder_errors_name_what_is_missing(damage, message, model_dir, tmp_path):
    shutil.copytree(model_dir.parent, tmp_path, dirs_exist_ok=True)
    folder = tmp_path / model_dir.name
    if damage == 'no_folder':
        folder = tmp_path / 'PoseTransfer_absent'
    elif damage == 'no_options':
        (folder / 'train_opt.json').unlink()
    elif damage == 'no_weights':
        for f in folder.glob('*.pth'):
            f.unlink()
    elif damage == 'no_netPW':
        (folder / 'best_net_netPW.pth').unlink()
    else:
        shutil.rmtree(tmp_path / 'FlowReg_tiny')
    with pytest.raises(ModelFolderError, match=message) as err:
        PoseTransferPipeline.from_pretrained(folder, device='cpu')
    assert str(folder.name if damage != 'no_flow' else model_dir.name) in str(err.value)


def test_unavailable_cuda_is_a_clear_error(model_dir):
    if torch.cuda.is_available():
        pytest.skip('CUDA is available here')
    with pytest.raises(ValueError, match='CUDA is not available'):
        PoseTransferPipeline.from_pretrained(model_dir, device='cuda')


@pytest.mark.parametrize('change, message', [
    ({'G_appearance_type': 'img_1+seg_1'}, "'seg_1' \\(G_appearance_type\\), which needs a human-parsing"),
    ({'flow_on_the_fly': 0}, "'flow_out' \\(G_feat_warp\\), which needs the ground-truth flow"),
    ({'G_pose_type': 'joint_2+img_2'}, "'img_2' \\(G_pose_type\\), which needs the target photo"),
    ({'dataset_type': 'flow'}, "is a 'flow' experiment"),
])
def test_models_reading_ground_truth_are_refused(change, message):
    opt = TestPoseTransferOptions().parse(['--gpu_ids', '-1'], display=False, save=False)
    check_inference_support(opt)  # the defaults are fine
    for key, value in change.items():
        setattr(opt, key, value)
    with pytest.raises(ValueError, match=message):
        check_inference_support(opt)


def test_no_flow_model_without_flow_network_is_accepted():
    opt = TestPoseTransferOptions().parse(['--gpu_ids', '-1', '--flow_on_the_fly', '0', '--which_model_G', 'unet'],
                                          display=False, save=False)
    check_inference_support(opt)


# ------------------------------------------------------------------------------------------ model input
def test_model_input_is_built_like_the_dataset_item(pipe, tiny_demo):
    """img/joint/joint_c entries equal the dataset's item bit for bit; the ground truth a photo lacks is a
    placeholder (NaN, visibility 2 = no correspondence)."""
    opt = TestPoseTransferOptions().parse(['--gpu_ids', '-1', '--dataset_name', 'demo', '--data_root', str(tiny_demo)],
                                          display=False, save=False)
    dataset = create_dataset(opt, 'test')
    item = dataset[0]
    id_1, id_2 = dataset.pairs[0]
    labels = tiny_demo / 'Label' / 'pose_label.pkl'
    pair = pipe.prepare(tiny_demo / 'Img' / 'img' / f'{id_1}.jpg', KeypointFile(labels, id_2),
                        target_image=tiny_demo / 'Img' / 'img' / f'{id_2}.jpg',
                        source_keypoints=KeypointFile(labels, id_1), framing='identity')
    batch = encode_pairs([pair], pipe.opt)
    for key in ('img_1', 'img_2', 'joint_1', 'joint_2', 'joint_c_1', 'joint_c_2'):
        assert batch[key].dtype == item[key].dtype and torch.equal(batch[key][0], item[key]), key
    for key in ('seg_1', 'seg_2', 'seg_label_1', 'seg_label_2', 'flow_2to1'):
        assert batch[key].shape[1:] == item[key].shape and torch.isnan(batch[key]).all(), key
    assert batch['vis_2'].shape[1:] == item['vis_2'].shape and (batch['vis_2'] == 2).all()
    no_target = encode_pairs([pipe.prepare(tiny_demo / 'Img' / 'img' / f'{id_1}.jpg', KeypointFile(labels, id_2),
                                           source_keypoints=KeypointFile(labels, id_1), framing='identity')],
                             pipe.opt)
    assert torch.isnan(no_target['img_2']).all() and torch.equal(no_target['img_1'], batch['img_1'])


def test_a_placeholder_read_by_the_model_is_caught(model_dir, photo):
    """If a model did read the ground-truth flow (here: its flow network taken away), the NaN placeholder
    reaches the output and the pipeline says so instead of returning garbage."""
    image, pose, target = photo
    broken = PoseTransferPipeline.from_pretrained(model_dir, device='cpu')
    broken.model.netF = None
    with pytest.raises(RuntimeError, match='NaN'):
        broken(image, target, source_keypoints=pose)


# ---------------------------------------------------------------------------------------------- results
def test_single_photo_result_and_intermediates(pipe, photo):
    image, pose, target = photo
    result = pipe(image, target, source_keypoints=pose, return_intermediates=True)
    assert isinstance(result, ReposeResult)
    h, w = DEMO_HW
    assert result.image.shape == (h, w, 3) and result.image.dtype == np.uint8
    assert result.final is result.image and result.pil().size == (w, h)
    inter = result.intermediates
    assert inter.flow.shape == (h, w, 2) and inter.flow.dtype == np.float32 and np.isfinite(inter.flow).all()
    assert inter.flow_rgb.shape == (h, w, 3) and inter.flow_rgb.dtype == np.uint8
    assert inter.visibility.shape == (h, w) and set(np.unique(inter.visibility)) <= {0, 1, 2}
    assert inter.warped_source.shape == (h, w, 3) and inter.generator_output.shape == (h, w, 3)
    mask = inter.pixel_warping_mask
    assert mask.shape == (h, w) and 0 <= mask.min() and mask.max() <= 1
    # The result is the pixel-warping blend of the warped source and the generator output.
    blend = (inter.warped_source.astype(np.float64) * mask[..., None]
             + inter.generator_output.astype(np.float64) * (1 - mask[..., None]))
    assert np.abs(blend - result.image).max() <= 2.5  # uint8 truncation of three images
    # Background of the warped source (visibility 2) is black.
    assert (inter.warped_source[inter.visibility == 2] == 0).all()
    panel = result.panel()
    assert panel.dtype == np.uint8 and panel.shape == (h + 4, len(PANEL_COLUMNS) * (w + 2) + 2, 3)
    np.testing.assert_array_equal(panel[2:2 + h, 2:2 + w], result.source)
    np.testing.assert_array_equal(panel[2:2 + h, -2 - w:-2], result.image)
    assert pipe(image, target, source_keypoints=pose).intermediates is None
    with pytest.raises(ValueError, match='return_intermediates=True'):
        pipe(image, target, source_keypoints=pose).panel()


def test_without_pixel_warping_the_intermediates_say_so(tmp_path, photo):
    folder = write_model_folder(tmp_path, 'PoseTransfer_nopw', pix_warp=False)
    image, pose, target = photo
    result = PoseTransferPipeline.from_pretrained(folder, device='cpu')(image, target, source_keypoints=pose,
                                                                       return_intermediates=True)
    assert result.intermediates.pixel_warping_mask is None and result.intermediates.generator_output is None
    assert result.intermediates.flow is not None


def test_running_batchnorm_results_do_not_depend_on_the_batch(pipe, model_dir, photo):
    image, pose, target = photo
    other = rotate_arms(target, -100)
    alone = pipe(image, target, source_keypoints=pose)
    together = pipe([image, image], [target, other], source_keypoints=[pose, pose])
    assert isinstance(together, list) and len(together) == 2
    assert np.abs(together[0].image.astype(int) - alone.image).max() <= 1
    assert np.abs(together[1].image.astype(int) - alone.image).mean() > 1  # another pose, another image
    batch = PoseTransferPipeline.from_pretrained(model_dir, device='cpu', bn_mode='batch')
    batch_alone = batch(image, target, source_keypoints=pose).image
    batch_together = batch([image, image], [target, other], source_keypoints=[pose, pose])[0].image
    assert np.abs(batch_alone.astype(int) - batch_together).mean() > 1  # batch statistics: depends on the batch


def test_batch_lists_must_match(pipe, photo):
    image, pose, target = photo
    with pytest.raises(ValueError, match='must be a list of 2 entries'):
        pipe([image, image], [target], source_keypoints=[pose, pose])


def test_batches_of_any_size_keep_the_order(model_dir, photo):
    image, pose, target = photo
    small = PoseTransferPipeline.from_pretrained(model_dir, device='cpu', batch_size=2)
    targets = [rotate_arms(target, a) for a in (0, 40, 80)]
    results = small([image] * 3, targets, source_keypoints=[pose] * 3, name=['a', 'b', 'c'])
    assert [r.name for r in results] == ['a', 'b', 'c']
    for r, t in zip(results, targets):
        single = small(image, t, source_keypoints=pose)
        assert np.abs(r.image.astype(int) - single.image).max() <= 1


# ---------------------------------------------------------------------------------------------- framing
def test_auto_framing_places_the_person_like_the_training_data(pipe, photo):
    image, pose, target = photo
    result = pipe(image, target, source_keypoints=pose, paste_back=True)
    h, w = DEMO_HW
    src = result.source_keypoints
    assert valid_joints(src).all()
    # Keypoint box height 0.76 of the frame, centred horizontally (the demo preset).
    assert np.ptp(src[:, 1]) == pytest.approx(0.76 * h, rel=1e-4)
    assert 0.5 * (src[:, 0].min() + src[:, 0].max()) == pytest.approx(w / 2 - 0.5, abs=1e-3)
    np.testing.assert_allclose(result.frame.to_source(src), pose, atol=1e-3)
    # The target pose is framed by its own skeleton (its raised arms widen the frame).
    assert result.target_frame == frame_from_keypoints(target, DEMO_HW, 'demo')
    np.testing.assert_array_equal(result.target_keypoints, result.target_frame.to_output(target))
    # Paste-back: the photo's size, the result inside the frame box, the photo elsewhere.
    assert result.pasted.shape == image.shape and result.final is result.pasted
    np.testing.assert_array_equal(result.pasted, paste_back(result.image, result.frame, image))
    x0, y0, x1, y1 = result.frame.box
    np.testing.assert_array_equal(result.pasted[:, :int(x0) - 1], image[:, :int(x0) - 1])
    np.testing.assert_array_equal(result.pasted[:, int(np.ceil(x1)) + 1:], image[:, int(np.ceil(x1)) + 1:])


def test_target_scale_source_keeps_the_source_body_size(pipe, photo):
    image, pose, target = photo
    result = pipe(image, target, source_keypoints=pose, target_scale='source')
    assert bone_scale_ratio(result.source_keypoints, result.target_keypoints) == pytest.approx(1.0, rel=1e-4)
    torso = [1, 2, 5, 8, 11]
    np.testing.assert_allclose(result.target_keypoints[torso].mean(0), result.source_keypoints[torso].mean(0),
                               atol=1e-3)


def test_identity_framing_needs_images_of_the_model_size(pipe, photo):
    image, pose, target = photo
    with pytest.raises(ValueError, match=r'framing="identity" needs an image of the model size \(128, 64\)'):
        pipe(image, target, source_keypoints=pose, framing='identity')
    small = np.ascontiguousarray(image[:128, :64])
    inside = skeleton(32, 10, 0.7)
    result = pipe(small, inside, source_keypoints=inside, framing='identity')
    assert result.frame == Frame.identity(DEMO_HW)
    np.testing.assert_array_equal(result.source, small)
    np.testing.assert_array_equal(result.target_keypoints, inside)
    with pytest.raises(KeypointError, match='lies outside the 128x64'):
        pipe(small, skeleton(32, 10, 1.0), source_keypoints=inside, framing='identity')


def test_explicit_frame(pipe, photo):
    image, pose, target = photo
    frame = Frame((200.0, 40.0, 400.0, 440.0), DEMO_HW)
    result = pipe(image, target, source_keypoints=pose, framing=frame)
    assert result.frame is frame
    with pytest.raises(ValueError, match='outputs'):
        pipe(image, target, source_keypoints=pose, framing=Frame((0, 0, 10, 10), (10, 10)))


# ---------------------------------------------------------------------------------------------- sequences
def test_sequence_is_framed_once_and_smoothed(pipe, photo, tmp_path):
    image, pose, target = photo
    rng = np.random.default_rng(0)
    walk = np.stack([rotate_arms(target, 10 * t) + [4.0 * t, 0] for t in range(6)]).astype(np.float32)
    jitter = (walk + rng.normal(0, 1.5, walk.shape)).astype(np.float32)
    for t, kps in enumerate(jitter):
        write_openpose_json(tmp_path / f'frame{t}.json', kps)  # natural order: frame2 before frame10
    results = pipe.repose_sequence(image, tmp_path, source_keypoints=pose, smooth='moving_average',
                                   smooth_params={'window': 3}, return_intermediates=True)
    assert len(results) == 6 and [r.name for r in results] == [f'<source image>_{t:06d}' for t in range(6)]
    frames = {r.target_frame for r in results}
    assert len(frames) == 1  # one frame for the whole sequence: the motion is kept
    frame = frames.pop()
    expected = frame.to_output(smooth_moving_average(np.round(jitter, 3), 3))
    np.testing.assert_allclose(np.stack([r.target_keypoints for r in results]), expected, atol=1e-3)
    # Without the jitter: the sideways walk survives the framing (4 px per frame, scaled).
    array_results = pipe.repose_sequence(image, walk, source_keypoints=pose)
    assert len(array_results) == 6 and all(r.image.shape == (128, 64, 3) for r in array_results)
    shift = np.diff(np.stack([r.target_keypoints[1, 0] for r in array_results]))
    np.testing.assert_allclose(shift, 4.0 * array_results[0].target_frame.scale[0], rtol=1e-4)


# ---------------------------------------------------------------------------------------------- detection
class FixedDetector(KeypointDetector):
    """Returns the given detections (largest box first after sorting); counts calls."""

    name = 'fixed'

    def __init__(self, detections):
        self.detections = detections
        self.calls = 0

    def detect(self, image, image_name='<image>'):
        self.calls += 1
        return list(self.detections)


def _detection(pose, box):
    return Detection(box=np.array(box, np.float32), score=0.9, keypoints=pose.astype(np.float32),
                     keypoint_scores=np.full(18, 5.0, np.float32))


def test_detector_is_used_only_without_keypoints(model_dir, photo):
    image, pose, target = photo
    small_person = skeleton(100, 100, 0.5)
    detector = FixedDetector([_detection(small_person, (90, 95, 112, 172)), _detection(pose, (250, 100, 350, 420))])
    pipe = PoseTransferPipeline.from_pretrained(model_dir, device='cpu', detector=detector)
    result = pipe(image, target)
    assert detector.calls == 1
    np.testing.assert_allclose(result.frame.to_source(result.source_keypoints), pose, atol=1e-3)  # largest box
    second = pipe(image, target, person_index=1)
    np.testing.assert_allclose(second.frame.to_source(second.source_keypoints), small_person, atol=1e-3)
    pipe(image, target, source_keypoints=pose)
    assert detector.calls == 2
    # A target photo: its person's keypoints are detected too.
    from_photo = pipe(image, target_image=image, source_keypoints=pose)
    assert detector.calls == 3
    np.testing.assert_allclose(from_photo.target_keypoints, from_photo.source_keypoints, atol=1e-3)
    with pytest.raises(NoPersonFoundError, match='no person found in <source image>'):
        PoseTransferPipeline.from_pretrained(model_dir, device='cpu', detector=FixedDetector([]))(image, target)


def test_box_framing_frames_the_detected_box(model_dir, photo):
    """framing='box': the source frame is the training-data framing of the detected person's box, the keypoints
    are the detected ones, and the target pose is framed by its own skeleton as with 'auto'."""
    image, pose, target = photo
    box = (250.0, 100.0, 350.0, 420.0)
    pipe = PoseTransferPipeline.from_pretrained(model_dir, device='cpu', detector=FixedDetector([_detection(pose, box)]))
    result = pipe(image, target, framing='box')
    expected = frame_from_box(box, DEMO_HW, pipe.framing)
    np.testing.assert_allclose(result.frame.box, expected.box, atol=1e-6)
    np.testing.assert_allclose(result.source_keypoints, expected.to_output(pose), atol=1e-4)
    np.testing.assert_allclose(result.target_keypoints, pipe(image, target).target_keypoints, atol=1e-4)
    assert not np.allclose(result.frame.box, pipe(image, target).frame.box, atol=1)  # not the keypoint framing
    with pytest.raises(ValueError, match='framing="box" frames the person by the box'):
        pipe(image, target, source_keypoints=pose, framing='box')


def test_without_a_detector_keypoints_are_required(pipe, photo):
    image, pose, target = photo
    with pytest.raises(ValueError, match="no keypoints were given and the pipeline has no keypoint detector"):
        pipe(image, target)


def test_random_keypoint_rcnn_end_to_end(model_dir, photo):
    """The real torchvision network (random weights) -> COCO-17 -> COCO-18 -> framing -> model."""
    image, pose, target = photo
    pipe = PoseTransferPipeline.from_pretrained(model_dir, device='cpu', detector=RandomKeypointRCNN())
    result = pipe(image, target, return_intermediates=True)
    assert result.image.shape == (128, 64, 3)
    assert valid_joints(result.source_keypoints).sum() >= 4
    assert np.isfinite(result.intermediates.flow).all()


# ---------------------------------------------------------------------------------------------- bad input
@pytest.fixture
def bad_inputs(tmp_path, photo):
    image, pose, target = photo
    files = {}
    files['text.jpg'] = tmp_path / 'text.jpg'
    files['text.jpg'].write_text('not an image')
    files['empty.png'] = tmp_path / 'empty.png'
    files['empty.png'].write_bytes(b'')
    files['unknown.json'] = tmp_path / 'unknown.json'
    files['unknown.json'].write_text(json.dumps({'skeleton': [1, 2, 3]}))
    files['joints17.json'] = tmp_path / 'joints17.json'
    files['joints17.json'].write_text(json.dumps(pose[:17].tolist()))
    files['nan.json'] = tmp_path / 'nan.json'
    files['nan.json'].write_text(json.dumps([[float(x), float(y)] for x, y in pose]).replace('300.0', 'NaN', 1))
    negative = pose.copy()
    negative[3] = (-5, 10)
    files['negative.json'] = tmp_path / 'negative.json'
    files['negative.json'].write_text(json.dumps(negative.tolist()))
    outside = pose.copy()
    outside[4] = (900, 100)
    files['outside.json'] = tmp_path / 'outside.json'
    files['outside.json'].write_text(json.dumps(outside.tolist()))
    few = np.full((18, 2), -1.0)
    few[:3] = pose[:3]
    files['few.json'] = tmp_path / 'few.json'
    files['few.json'].write_text(json.dumps(few.tolist()))
    files['pose.json'] = tmp_path / 'pose.json'
    files['pose.json'].write_text(json.dumps(pose.tolist()))
    return files


@pytest.mark.parametrize('source, source_pose, error, message', [
    ('text.jpg', 'pose.json', ImageError, r'text.jpg is not a readable image'),
    ('empty.png', 'pose.json', ImageError, r'empty.png is empty \(0 bytes\)'),
    ('absent.jpg', 'pose.json', FileNotFoundError, r'image file not found: .*absent.jpg'),
    ('small', 'pose.json', ImageError, r'<source image>: the image is 20x30 .* at least 32 pixels'),
    ('photo', 'unknown.json', KeypointError, r'unknown.json: unknown keypoint format'),
    ('photo', 'joints17.json', KeypointError, r'joints17.json: keypoint list has shape \(17, 2\).*COCO-17'),
    ('photo', 'nan.json', KeypointError, r'nan.json: keypoint list contains NaN'),
    ('photo', 'negative.json', KeypointError, r'negative.json: .*joint 3 \(right_elbow\).*must be >= 0'),
    ('photo', 'outside.json', KeypointError, r'outside.json: joint 4 \(right_wrist\).*outside the 480x640'),
    ('photo', 'few.json', KeypointError, r'few.json: only 3 joint\(s\) present, at least 4'),
])
def test_bad_input_errors_name_the_file(pipe, photo, bad_inputs, tmp_path, source, source_pose, error, message):
    image, pose, target = photo
    src = {'photo': image, 'small': image[:20, :30].copy()}.get(source, tmp_path / source)
    with pytest.raises(error, match=message):
        pipe(src, target, source_keypoints=bad_inputs[source_pose])


def test_bad_target_keypoints_name_the_file(pipe, photo, bad_inputs):
    image, pose, target = photo
    with pytest.raises(KeypointError, match='few.json: only 3 joint'):
        pipe(image, bad_inputs['few.json'], source_keypoints=pose)
    with pytest.raises(ValueError, match='give the target pose'):
        pipe(image, source_keypoints=pose)
    with pytest.raises(ValueError, match='unknown target_scale'):
        pipe(image, target, source_keypoints=pose, target_scale='photo')
    assert read_keypoints(bad_inputs['pose.json']).shape == (18, 2)


def test_prepared_pairs_can_be_generated_later(pipe, photo):
    image, pose, target = photo
    pair = pipe.prepare(image, target, source_keypoints=pose, name='later')
    assert isinstance(pair, PreparedPair) and pair.photo is not None and pair.target is None
    (result,) = pipe.generate([pair])
    assert result.name == 'later' and result.pair is pair
