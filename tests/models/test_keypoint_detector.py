"""Keypoint detector: weight loading (never downloading), the torchvision backend end to end with random
weights, output conversion to COCO-18 and the choice of the person."""
import numpy as np
import pytest
import torch
import torchvision
from torchvision.models.detection import KeypointRCNN_ResNet50_FPN_Weights, keypointrcnn_resnet50_fpn

from models.keypoint_detector import (DETECTOR_BACKENDS, TORCHVISION_WEIGHTS_FILE, TORCHVISION_WEIGHTS_URL, Detection,
                                      KeypointDetector, NoPersonFoundError, TorchvisionKeypointDetector,
                                      build_keypoint_detector, build_keypoint_rcnn, check_rgb_uint8, detect_person,
                                      find_keypoint_rcnn_weights, load_keypoint_rcnn, resolve_device, select_person)

# Small internal resize and few proposals keep a CPU forward pass well under a second.
FAST = dict(min_size=64, max_size=96, max_detections=3, num_proposals=30)


@pytest.fixture(scope='module')
def random_weights(tmp_path_factory):
    """A Keypoint R-CNN state_dict with random weights (``weights=None``), saved like a downloaded file.

    The BatchNorm buffers are randomised too (torchvision initialises them to the identity), so the
    frozen-BatchNorm eps and the buffers' loading actually change the outputs.
    """
    torch.manual_seed(0)
    model = keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    gen = torch.Generator().manual_seed(1)
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith(('running_mean', 'bn1.bias', 'bn2.bias', 'bn3.bias')):
            value.copy_(0.1 * torch.randn(value.shape, generator=gen))
        elif key.endswith('running_var'):
            value.copy_(0.5 + torch.rand(value.shape, generator=gen))
    path = tmp_path_factory.mktemp('detector') / TORCHVISION_WEIGHTS_FILE
    torch.save(state, path)
    yield path
    path.unlink()   # 240 MB; do not leave it in pytest's kept temporary folders


@pytest.fixture(scope='module')
def detector(random_weights):
    return TorchvisionKeypointDetector(random_weights, device='cpu', person_score_thresh=0.0,
                                       keypoint_score_thresh=float('-inf'), **FAST)


def _synthetic_photo(h=90, w=70) -> np.ndarray:
    """A light background with a dark upright figure (what the detector is meant for; weights are random)."""
    img = np.full((h, w, 3), 225, dtype=np.uint8)
    img[15:80, 28:42] = (40, 60, 90)
    img[5:17, 30:40] = (200, 160, 140)
    return img


# ----------------------------------------------------------------------------- weights: never downloaded

@pytest.fixture
def no_download(monkeypatch, tmp_path):
    """An empty torch hub cache, and any download attempt fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError('the detector tried to download weights')
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file', refuse)
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', refuse)
    return tmp_path / 'hub'


def test_missing_weights_message_names_file_url_and_place(no_download):
    expected = no_download / 'checkpoints' / TORCHVISION_WEIGHTS_FILE
    with pytest.raises(FileNotFoundError) as err:
        TorchvisionKeypointDetector()
    msg = str(err.value)
    assert TORCHVISION_WEIGHTS_FILE in msg and TORCHVISION_WEIGHTS_URL in msg and str(expected) in msg
    assert '--detector_weights' in msg
    with pytest.raises(FileNotFoundError, match='elsewhere.pth'):
        find_keypoint_rcnn_weights(no_download / 'elsewhere.pth')


def test_weights_url_is_torchvisions():
    assert KeypointRCNN_ResNet50_FPN_Weights.COCO_V1.url == TORCHVISION_WEIGHTS_URL
    assert TORCHVISION_WEIGHTS_URL.endswith('/keypointrcnn_resnet50_fpn_coco-fc266e95.pth')


def test_weights_found_in_the_hub_cache(no_download, random_weights):
    cached = no_download / 'checkpoints' / TORCHVISION_WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    cached.symlink_to(random_weights)
    assert find_keypoint_rcnn_weights() == cached


def test_bad_weight_files_name_the_file(tmp_path):
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='garbage.pth'):
        load_keypoint_rcnn(garbage, **FAST)
    other = tmp_path / 'other.pth'
    torch.save({'fc.weight': torch.zeros(2, 3)}, other)   # some other network's (small) state_dict
    with pytest.raises(ValueError, match=r'(?s)other\.pth is not a torchvision Keypoint R-CNN.*Unexpected.*fc\.weight'):
        load_keypoint_rcnn(other, **FAST)
    evil = tmp_path / 'evil.pth'
    torch.save({'x': torchvision.ops.misc.FrozenBatchNorm2d(3)}, evil)   # a module object: refused by weights_only
    with pytest.raises(ValueError, match='evil.pth'):
        load_keypoint_rcnn(evil, **FAST)


# ----------------------------------------------------------------------------- the network

def test_architecture_matches_torchvision(random_weights):
    mine = set(build_keypoint_rcnn(**FAST).state_dict())
    theirs = set(keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict())
    # torchvision's BatchNorm2d build (weights=None) only adds num_batches_tracked; the COCO file has none.
    assert mine == {k for k in theirs if not k.endswith('num_batches_tracked')}


def test_same_outputs_as_torchvisions_own_loading(monkeypatch, random_weights, detector):
    """torchvision builds the COCO model with frozen BatchNorm, eps 0; our loader must give identical outputs."""
    state = torch.load(random_weights, map_location='cpu', weights_only=True)
    monkeypatch.setattr(torchvision.models._api.WeightsEnum, 'get_state_dict', lambda self, *a, **k: dict(state))
    reference = keypointrcnn_resnet50_fpn(weights=KeypointRCNN_ResNet50_FPN_Weights.COCO_V1, box_score_thresh=0.0,
                                          min_size=64, max_size=96, box_detections_per_img=3,
                                          rpn_pre_nms_top_n_test=30, rpn_post_nms_top_n_test=30).eval()
    image = torch.from_numpy(_synthetic_photo()).permute(2, 0, 1).float() / 255
    with torch.inference_mode():
        expected = reference([image])[0]
        got = detector.model([image])[0]
    assert expected['boxes'].shape[0] > 0
    for key in ('boxes', 'scores', 'keypoints', 'keypoints_scores'):
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)


def test_detect_end_to_end_with_random_weights(detector):
    image = _synthetic_photo()
    detections = detector.detect(image, 'photo.jpg')
    assert 1 <= len(detections) <= 3
    for det in detections:
        assert det.box.shape == (4,) and det.box.dtype == np.float32
        assert 0 <= det.box[0] < det.box[2] <= 70 and 0 <= det.box[1] < det.box[3] <= 90
        assert det.keypoints.shape == (18, 2) and det.keypoint_scores.shape == (18,)
        assert ((det.keypoints >= 0) & (det.keypoints <= [70, 90])).all()   # no threshold: every joint present
        np.testing.assert_allclose(det.keypoints[1], (det.keypoints[2] + det.keypoints[5]) / 2, atol=1e-4)
    again = detector.detect(image)
    assert [d.box.tolist() for d in again] == [d.box.tolist() for d in detections]
    person = detect_person(detector, image, image_name='photo.jpg')
    assert person.area == max(d.area for d in detections)


def test_default_thresholds_can_find_nobody(random_weights):
    strict = TorchvisionKeypointDetector(random_weights, person_score_thresh=0.999, **FAST)
    image = _synthetic_photo()
    assert strict.detect(image) == []
    with pytest.raises(NoPersonFoundError, match='no person found in me.jpg'):
        detect_person(strict, image, image_name='me.jpg')


# ----------------------------------------------------------------------------- output conversion

def _raw_output(kps17: np.ndarray, kp_scores: np.ndarray, boxes, scores, labels) -> dict:
    n = len(boxes)
    kps = np.concatenate([kps17, np.ones(kps17.shape[:2] + (1,))], axis=2)
    return {'boxes': torch.tensor(boxes, dtype=torch.float32), 'scores': torch.tensor(scores),
            'labels': torch.tensor(labels), 'keypoints': torch.tensor(kps, dtype=torch.float32).reshape(n, 17, 3),
            'keypoints_scores': torch.tensor(kp_scores, dtype=torch.float32).reshape(n, 17)}


def test_output_conversion_to_coco18(detector, monkeypatch):
    monkeypatch.setattr(detector, 'person_score_thresh', 0.5)
    monkeypatch.setattr(detector, 'keypoint_score_thresh', 2.0)
    kps17 = np.stack([np.array([[10.0 + i, 20.0 + 2 * i] for i in range(17)])] * 3)
    kp_scores = np.full((3, 17), 5.0)
    kp_scores[0, 9] = 1.0     # left wrist below the keypoint threshold
    kp_scores[0, 6] = -3.0    # right shoulder below: no neck
    kps17[0, 16] = [80.0, 95.0]   # right ankle past the 70x90 image: clipped
    raw = _raw_output(kps17, kp_scores, boxes=[[1, 2, 30, 60], [5, 5, 20, 20], [0, 0, 9, 9]],
                      scores=[0.9, 0.3, 0.95], labels=[1, 1, 2])
    dets = detector.detections_from_output(raw, (90, 70))
    assert len(dets) == 1   # the second is below the person threshold, the third is not a person
    det = dets[0]
    assert det.score == pytest.approx(0.9)
    coco = kps17[0]
    np.testing.assert_allclose(det.keypoints[0], coco[0])     # nose
    np.testing.assert_allclose(det.keypoints[5], coco[5])     # left shoulder = COCO 5
    np.testing.assert_allclose(det.keypoints[3], coco[8])     # right elbow = COCO 8
    np.testing.assert_allclose(det.keypoints[14], coco[2])    # right eye = COCO 2
    np.testing.assert_allclose(det.keypoints[10], [70, 90])   # clipped ankle
    assert (det.keypoints[7] == -1).all() and det.keypoint_scores[7] == 1.0   # left wrist: missing, score kept
    assert (det.keypoints[2] == -1).all() and (det.keypoints[1] == -1).all()   # right shoulder and the neck
    kp_scores[0, 6] = 4.0
    det = detector.detections_from_output(_raw_output(kps17, kp_scores, [[1, 2, 30, 60]] * 3, [0.9] * 3, [1] * 3),
                                          (90, 70))[0]
    np.testing.assert_allclose(det.keypoints[1], (coco[5] + coco[6]) / 2)
    assert det.keypoint_scores[1] == pytest.approx(4.0)


# ----------------------------------------------------------------------------- person choice and plumbing

def _detection(box, score=0.9) -> Detection:
    return Detection(box=np.asarray(box, np.float32), score=score, keypoints=np.zeros((18, 2), np.float32),
                     keypoint_scores=np.zeros(18, np.float32))


def test_select_person():
    small, big, mid = _detection([0, 0, 10, 10], 0.99), _detection([0, 0, 50, 80], 0.8), _detection([5, 5, 30, 40])
    dets = [small, big, mid]
    assert select_person(dets) is big
    assert select_person(dets, 1) is mid and select_person(dets, 2) is small
    with pytest.raises(ValueError, match='person_index 3 out of range: 3 person.*crowd.jpg'):
        select_person(dets, 3, image_name='crowd.jpg')
    with pytest.raises(NoPersonFoundError, match='no person found in empty.png'):
        select_person([], image_name='empty.png')


def test_registry_devices_and_image_checks(random_weights):
    assert DETECTOR_BACKENDS['torchvision'] is TorchvisionKeypointDetector
    assert issubclass(TorchvisionKeypointDetector, KeypointDetector)
    with pytest.raises(ValueError, match="unknown keypoint detector backend 'dwpose'.*torchvision"):
        build_keypoint_detector('dwpose')
    det = build_keypoint_detector('torchvision', weights=random_weights, device='auto', **FAST)
    assert isinstance(det, TorchvisionKeypointDetector)
    assert resolve_device('auto') == torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'):
            resolve_device('cuda')
    with pytest.raises(ValueError, match='invalid device'):
        resolve_device('tpu-ish')
    with pytest.raises(ValueError, match=r'me.png: the keypoint detector needs an RGB uint8 image'):
        check_rgb_uint8(np.zeros((10, 10, 3), np.float32), 'me.png')
    with pytest.raises(ValueError, match='RGB uint8'):
        check_rgb_uint8(np.zeros((10, 10), np.uint8))
