"""Person keypoint detection for photos that come without keypoints, behind a small backend interface.

A backend is a :class:`KeypointDetector`: ``detect(image)`` takes an RGB ``uint8 [H, W, 3]`` image and
returns one :class:`Detection` per person (box, COCO-18 keypoints, scores). :func:`select_person` picks
one (the largest box by default) and :func:`build_keypoint_detector` builds a backend by name from
:data:`DETECTOR_BACKENDS`.

Backend ``'torchvision'``: torchvision's Keypoint R-CNN (ResNet-50 FPN, COCO person keypoints; no extra
dependency). Its weights ``keypointrcnn_resnet50_fpn_coco-fc266e95.pth`` are read from an explicit path
or from the torch hub cache ``<torch.hub.get_dir()>/checkpoints/``; they are never downloaded. The
network is built exactly as torchvision builds it for these weights: backbone with frozen BatchNorm
(eps 0 for these weights, 1e-5 for the older ``-9f466800`` file), loaded strictly with
``torch.load(weights_only=True)``. Its 17 COCO keypoints become COCO-18 through
:func:`util.keypoints.coco17_to_coco18` (neck = midpoint of the shoulders when both are found).

Adding a backend (for example DWPose / RTMPose through ``rtmlib`` and ``onnxruntime``, as an optional
extra): write a ``KeypointDetector`` subclass whose constructor imports the optional package (raising an
ImportError that says ``pip install rtmlib onnxruntime``), whose ``detect`` runs the person detector and
the pose model and converts each person's 17 COCO keypoints and scores with ``coco17_to_coco18`` after
thresholding, and register it in :data:`DETECTOR_BACKENDS` under a new name. Nothing else changes: the
pipeline only sees ``Detection`` objects.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torchvision.models.detection import KeypointRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops.misc import FrozenBatchNorm2d

from util.keypoints import NUM_JOINTS, coco17_to_coco18

PathLike = str | os.PathLike

TORCHVISION_WEIGHTS_FILE = 'keypointrcnn_resnet50_fpn_coco-fc266e95.pth'
TORCHVISION_WEIGHTS_URL = f'https://download.pytorch.org/models/{TORCHVISION_WEIGHTS_FILE}'
# torchvision zeroes the frozen-BatchNorm eps for the current COCO weights and keeps the default for the
# older ("legacy") file; the numbers differ slightly otherwise.
_FROZEN_BN_EPS = {TORCHVISION_WEIGHTS_FILE: 0.0, 'keypointrcnn_resnet50_fpn_coco-9f466800.pth': 1e-5}
# Person score above which a box counts as a person (the threshold of torchvision's keypoint example).
DEFAULT_PERSON_SCORE_THRESH = 0.75
# Keypoint R-CNN keypoint scores are heatmap logits, not probabilities; 2 is the threshold Detectron's
# keypoint visualisation uses.
DEFAULT_KEYPOINT_SCORE_THRESH = 2.0
COCO_NUM_KEYPOINTS = 17


class NoPersonFoundError(ValueError):
    """The detector found no person in an image; the message names the image."""


@dataclass(frozen=True, eq=False)
class Detection:
    """One detected person.

    box: ``float32 [4]`` ``(x0, y0, x1, y1)`` in pixel-edge coordinates (``0 <= x0 < x1 <= W``).
    score: person confidence of the backend (torchvision: probability in [0, 1]).
    keypoints: ``float32 [18, 2]`` COCO-18 ``(x, y)`` pixel coordinates, -1 for joints below the keypoint
        threshold.
    keypoint_scores: ``float32 [18]`` backend scores of the joints (torchvision: heatmap logits; the neck gets
        the smaller shoulder score), kept for missing joints too.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    keypoint_scores: np.ndarray

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = (float(v) for v in self.box)
        return max(x1 - x0, 0.0) * max(y1 - y0, 0.0)


class KeypointDetector(ABC):
    """Interface of a keypoint detector backend."""

    name: ClassVar[str]

    @abstractmethod
    def detect(self, image: np.ndarray, image_name: str = '<image>') -> list[Detection]:
        """All persons in ``image`` (RGB ``uint8 [H, W, 3]``), in the backend's order (highest score first).

        ``image_name`` is used in error messages."""


def check_rgb_uint8(image: Any, image_name: str = '<image>') -> np.ndarray:
    """The image as a contiguous ``uint8 [H, W, 3]`` array; ValueError naming ``image_name`` otherwise."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f'{image.dtype} {image.shape}' if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f'{image_name}: the keypoint detector needs an RGB uint8 image [H, W, 3], got {desc}')
    if min(image.shape[:2]) < 1:
        raise ValueError(f'{image_name}: empty image of shape {image.shape}')
    return np.ascontiguousarray(image)


def resolve_device(device: str | torch.device = 'cpu') -> torch.device:
    """``'auto'`` -> CUDA when available else CPU; ``'cpu'``, ``'cuda'``, ``'cuda:1'`` or a device as given."""
    if isinstance(device, str) and device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f'invalid device {device!r}; use cpu, cuda, cuda:N or auto') from e
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'device {device!r} requested but CUDA is not available; use --device cpu or auto')
    return dev


# --------------------------------------------------------------------------------------------------
# torchvision Keypoint R-CNN
# --------------------------------------------------------------------------------------------------
def keypoint_rcnn_weights_path() -> Path:
    """Where the weights are looked for in the torch hub cache."""
    return Path(torch.hub.get_dir()) / 'checkpoints' / TORCHVISION_WEIGHTS_FILE


def find_keypoint_rcnn_weights(weights: PathLike | None = None) -> Path:
    """``weights`` if given, else the torch hub cache file. Never downloads.

    Raises:
        FileNotFoundError: naming the file, its URL and where to put it.
    """
    cached = keypoint_rcnn_weights_path()
    path = Path(weights) if weights is not None else cached
    if not path.is_file():
        raise FileNotFoundError(
            f'keypoint detector weights not found at {path}. Download {TORCHVISION_WEIGHTS_FILE} from '
            f'{TORCHVISION_WEIGHTS_URL} (on a machine with internet access) and put it at {cached} (the torch hub '
            f'cache), or pass its path with --detector_weights; or give the keypoints yourself (--source_pose)')
    return path


def build_keypoint_rcnn(*, min_size: int = 800, max_size: int = 1333,
                        box_score_thresh: float = DEFAULT_PERSON_SCORE_THRESH, max_detections: int = 100,
                        num_proposals: int = 1000, frozen_bn_eps: float = 0.0) -> KeypointRCNN:
    """Keypoint R-CNN ResNet-50 FPN (2 classes, 17 keypoints) as torchvision builds it for its COCO weights.

    Weights are torchvision's random initialisation (frozen BatchNorm layers are the identity). The
    module is in eval mode with gradients off.

    Args:
        min_size, max_size: the network's internal resize (shorter side to ``min_size``, longer side at
            most ``max_size``); torchvision evaluates with 800 / 1333.
        box_score_thresh: proposals with a lower person score are dropped inside the network.
        max_detections: most persons returned per image (torchvision: 100).
        num_proposals: region proposals kept before and after the RPN's non-maximum suppression
            (torchvision: 1000); fewer is faster.
        frozen_bn_eps: eps of the frozen BatchNorm layers (0 for the current COCO weights).
    """
    backbone = resnet_fpn_backbone(backbone_name='resnet50', weights=None, norm_layer=FrozenBatchNorm2d,
                                   trainable_layers=0)
    model = KeypointRCNN(backbone, num_classes=2, num_keypoints=COCO_NUM_KEYPOINTS, min_size=min_size,
                         max_size=max_size, box_score_thresh=box_score_thresh,
                         box_detections_per_img=max_detections, rpn_pre_nms_top_n_test=num_proposals,
                         rpn_post_nms_top_n_test=num_proposals)
    for module in model.modules():
        if isinstance(module, FrozenBatchNorm2d):
            module.eps = frozen_bn_eps
    model.requires_grad_(False)
    return model.eval()


def load_keypoint_rcnn(weights: PathLike | None = None, *, device: str | torch.device = 'cpu',
                       min_size: int = 800, max_size: int = 1333,
                       box_score_thresh: float = DEFAULT_PERSON_SCORE_THRESH, max_detections: int = 100,
                       num_proposals: int = 1000, frozen_bn_eps: float | None = None) -> KeypointRCNN:
    """Keypoint R-CNN with the weights of ``weights`` (or the hub cache), on ``device``, in eval mode.

    Args:
        weights, device: as :class:`TorchvisionKeypointDetector`.
        min_size, max_size, box_score_thresh, max_detections, num_proposals: see :func:`build_keypoint_rcnn`.
        frozen_bn_eps: ``None`` picks torchvision's value for the known file names (0 otherwise).

    Raises:
        FileNotFoundError: no weights file (see :func:`find_keypoint_rcnn_weights`).
        ValueError: the file is not a Keypoint R-CNN ResNet-50 FPN state_dict (names the file).
    """
    path = find_keypoint_rcnn_weights(weights)
    try:
        state_dict = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # re-raised with the file name; torch.load raises many types for a bad file
        raise ValueError(f'cannot read keypoint detector weights {path}: {type(e).__name__}: {e}') from e
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError(f'{path} is not a state_dict of tensors (expected {TORCHVISION_WEIGHTS_FILE} from '
                         f'{TORCHVISION_WEIGHTS_URL})')
    eps = _FROZEN_BN_EPS.get(path.name, 0.0) if frozen_bn_eps is None else frozen_bn_eps
    model = build_keypoint_rcnn(min_size=min_size, max_size=max_size, box_score_thresh=box_score_thresh,
                                max_detections=max_detections, num_proposals=num_proposals, frozen_bn_eps=eps)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        raise ValueError(f'{path} is not a torchvision Keypoint R-CNN ResNet-50 FPN state_dict (expected '
                         f'{TORCHVISION_WEIGHTS_FILE} from {TORCHVISION_WEIGHTS_URL}): {e}') from e
    return model.to(resolve_device(device))


class TorchvisionKeypointDetector(KeypointDetector):
    """torchvision Keypoint R-CNN backend (see the module docstring).

    Args:
        weights: the ``.pth`` file; ``None`` = ``<torch.hub.get_dir()>/checkpoints/`` + the file name.
        device: ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'auto'``.
        person_score_thresh: boxes with a lower person score are not returned.
        keypoint_score_thresh: joints with a lower score (heatmap logit) are missing (-1).
        min_size, max_size: the network's internal resize (smaller = faster, less accurate).
        max_detections, num_proposals: see :func:`build_keypoint_rcnn` (smaller = faster).
    """

    name = 'torchvision'

    def __init__(self, weights: PathLike | None = None, *, device: str | torch.device = 'cpu',
                 person_score_thresh: float = DEFAULT_PERSON_SCORE_THRESH,
                 keypoint_score_thresh: float = DEFAULT_KEYPOINT_SCORE_THRESH, min_size: int = 800,
                 max_size: int = 1333, max_detections: int = 100, num_proposals: int = 1000) -> None:
        self.device = resolve_device(device)
        self.person_score_thresh = float(person_score_thresh)
        self.keypoint_score_thresh = float(keypoint_score_thresh)
        self.model = load_keypoint_rcnn(weights, device=self.device, min_size=min_size, max_size=max_size,
                                        box_score_thresh=self.person_score_thresh, max_detections=max_detections,
                                        num_proposals=num_proposals)

    def detect(self, image: np.ndarray, image_name: str = '<image>') -> list[Detection]:
        image = check_rgb_uint8(image, image_name)
        tensor = torch.from_numpy(image).permute(2, 0, 1).to(self.device, torch.float32).div_(255.0)
        with torch.inference_mode():
            raw = self.model([tensor])[0]
        return self.detections_from_output(raw, image.shape[:2])

    def detections_from_output(self, raw: dict[str, torch.Tensor], image_hw: tuple[int, int]) -> list[Detection]:
        """torchvision's output dict (``boxes [N, 4]``, ``scores [N]``, ``labels [N]``, ``keypoints [N, 17, 3]``,
        ``keypoints_scores [N, 17]``) -> detections of persons above the person threshold, in output order."""
        boxes = raw['boxes'].detach().float().cpu().numpy().reshape(-1, 4)
        scores = raw['scores'].detach().float().cpu().numpy().reshape(-1)
        labels = raw['labels'].detach().cpu().numpy().reshape(-1)
        kps = raw['keypoints'].detach().float().cpu().numpy().reshape(-1, COCO_NUM_KEYPOINTS, 3)
        kp_scores = raw['keypoints_scores'].detach().float().cpu().numpy().reshape(-1, COCO_NUM_KEYPOINTS)
        height, width = image_hw
        detections = []
        for i in np.flatnonzero((labels == 1) & (scores >= self.person_score_thresh)):
            # The heatmap decoding returns COCO's pixel-index convention (the one the dataset labels use);
            # its peak can lie up to half a heatmap cell outside the box, so clip to the image.
            xy = np.clip(kps[i, :, :2], 0, [width, height])
            present = kp_scores[i] >= self.keypoint_score_thresh
            xy = np.where(present[:, None], xy, -1.0)
            mapped = coco17_to_coco18(np.concatenate([xy, kp_scores[i][:, None]], axis=1))
            detections.append(Detection(box=boxes[i].astype(np.float32), score=float(scores[i]),
                                        keypoints=mapped[:, :2].copy(), keypoint_scores=mapped[:, 2].copy()))
        return detections


DETECTOR_BACKENDS: dict[str, type[KeypointDetector]] = {'torchvision': TorchvisionKeypointDetector}


def build_keypoint_detector(backend: str = 'torchvision', **kwargs: Any) -> KeypointDetector:
    """The detector backend ``backend`` of :data:`DETECTOR_BACKENDS`, built with ``kwargs``."""
    if backend not in DETECTOR_BACKENDS:
        raise ValueError(f'unknown keypoint detector backend {backend!r}; valid backends are '
                         f'{sorted(DETECTOR_BACKENDS)}')
    return DETECTOR_BACKENDS[backend](**kwargs)


# --------------------------------------------------------------------------------------------------
# Choosing the person
# --------------------------------------------------------------------------------------------------
def sort_by_area(detections: Sequence[Detection]) -> list[Detection]:
    """Detections by decreasing box area (ties keep the backend's order); ``person_index`` counts in this order."""
    return sorted(detections, key=lambda d: -d.area)


def select_person(detections: Sequence[Detection], person_index: int | None = None, *,
                  image_name: str = '<image>') -> Detection:
    """The person to use: ``person_index`` in order of decreasing box area, the largest by default.

    Raises:
        NoPersonFoundError: no detection ("no person found in <image>").
        ValueError: ``person_index`` out of range (names the image and the number of persons).
    """
    if not detections:
        raise NoPersonFoundError(f'no person found in {image_name}; give its keypoints with --source_pose / '
                                 f'--target_pose, or use a photo where the person is clearly visible')
    ordered = sort_by_area(detections)
    index = 0 if person_index is None else person_index
    if not 0 <= index < len(ordered):
        raise ValueError(f'person_index {person_index} out of range: {len(ordered)} person(s) found in {image_name} '
                         f'(0 = largest)')
    person = ordered[index]
    if person.keypoints.shape != (NUM_JOINTS, 2):
        raise ValueError(f'{image_name}: detection keypoints must be [{NUM_JOINTS}, 2], got {person.keypoints.shape}')
    return person


def detect_person(detector: KeypointDetector, image: np.ndarray, *, person_index: int | None = None,
                  image_name: str = '<image>') -> Detection:
    """Run ``detector`` on ``image`` and :func:`select_person` the result."""
    return select_person(detector.detect(check_rgb_uint8(image, image_name), image_name), person_index,
                         image_name=image_name)
