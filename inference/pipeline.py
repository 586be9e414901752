"""Run a trained pose-transfer model on any photo: :class:`PoseTransferPipeline`.

    pipe = PoseTransferPipeline.from_pretrained('checkpoints/PoseTransfer_0.5', device='auto')
    result = pipe('me.jpg', 'pose.json')                      # or target_image='someone.jpg'
    result.pil().save('out.png')
    result = pipe('me.jpg', 'pose.json', return_intermediates=True)
    result.intermediates.flow, result.intermediates.visibility, result.panel()

What a call does, in order:

1. **Inputs.** Photos are paths, PIL images or RGB ``uint8 [H, W, 3]`` arrays (see :mod:`inference.media`).
   Keypoints are COCO-18 ``[18, 2]`` arrays (``-1`` for a missing joint) or keypoint files in any format
   :func:`util.keypoints.read_keypoints` reads (OpenPose BODY_18/BODY_25, COCO-17, plain lists, the datasets'
   pose labels). A photo without keypoints goes through the keypoint detector (built on first use, see
   :mod:`models.keypoint_detector`). Every pose is validated (NaN, negative or out-of-image coordinates, too
   few joints) with errors naming the file.
2. **Framing** (``framing='auto'``): the source is cropped around its keypoints the way the training images
   frame people (:func:`util.framing.frame_from_keypoints`, preset from the model's dataset), and the target
   pose is brought into the same output frame by its own skeleton (``target_scale='target'``) or with the
   source's body size and position (``'source'``), :func:`util.framing.normalize_target_pose`.
   ``framing='box'`` frames the source by the detector's person box instead of its keypoints (useful when
   few joints are found, e.g. a person partly hidden; the target pose is framed as with ``'auto'``).
   ``framing='identity'`` takes images already at the model's size and keypoints already in its frame (the
   datasets' own images and labels); a :class:`util.framing.Frame` gives the source crop explicitly.
3. **Model input**, built like the dataset items: images through :func:`data.base_dataset.normalize_image`,
   keypoint heatmaps through :func:`util.pose_util.kp_to_map` with the model's ``joint_mode``/``joint_radius``,
   ``joint_c`` the keypoints. The dataset's ground truth that the model's ``set_input`` requires but that a
   photo does not have is filled with placeholders the forward pass of a supported model never reads:
   ``flow_2to1``, ``seg_1``/``seg_2``, ``seg_label_1``/``seg_label_2`` (and ``img_2`` when no target image is
   given) are NaN, so any use would show as NaN in the output, which is checked; ``vis_2`` is 2 everywhere,
   the datasets' label for "no correspondence". A model whose networks read ground truth (segmentation or
   ground-truth flow in its tensor-type options, or ``--flow_on_the_fly 0`` with flow-warped features) is
   refused when it is loaded (:func:`check_inference_support`).
4. **Forward pass** of the model in batches of ``batch_size``. ``bn_mode='running'`` (default) runs netG/netPW
   in eval mode: BatchNorm uses its running statistics, so a result does not depend on what it is batched
   with. ``'batch'`` keeps the test script's original semantics (statistics of each batch).
5. **Result** (:class:`ReposeResult`): the image as ``uint8`` (``(x + 1) * 127.5``, truncated, like the test
   script's saved outputs), on request pasted back into the source photo, and with ``return_intermediates``
   the flow, its colour image, the visibility, the warped source, the pixel-warping mask and the generator
   output before pixel warping.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from data.base_dataset import normalize_image, to_chw
from inference.media import MIN_IMAGE_SIDE, as_rgb_image
from metrics.ssim import to_uint8
from models import create_model
from models.factory import tensor_type_items
from models.keypoint_detector import KeypointDetector, build_keypoint_detector, detect_person, resolve_device
from models.pose_transfer_model import BN_MODES, PoseTransferModel
from options.base_options import Options, merge_train_options
from options.pose_transfer_options import TestPoseTransferOptions
from util.flow_util import flow_to_rgb
from util.framing import (TARGET_REFERENCES, Frame, FramingParams, crop_to_frame, frame_from_box,
                          frame_from_keypoints, framing_params, normalize_target_pose, paste_back)
from util.keypoints import (DEFAULT_CONFIDENCE_THRESHOLD, DEFAULT_MIN_JOINTS, NUM_JOINTS, KeypointError,
                            check_keypoints, read_keypoint_sequence, read_keypoints, smooth_keypoint_sequence,
                            valid_joints)
from util.pose_util import draw_pose, kp_to_map
from util.visualizer import render_panel
from util.weights import network_path

PathLike = str | os.PathLike

FRAMING_MODES = ('auto', 'identity', 'box')
# Framing preset of each training dataset (the model's --dataset_name).
DATASET_FRAMING = {'deepfashion': 'deepfashion', 'market': 'market', 'demo': 'demo'}
# Label of the weights used when which_epoch is None, in order of preference.
DEFAULT_EPOCHS = ('best', 'latest')
# Visibility label of the datasets for "no correspondence" (background); see util.seg_util.
NO_CORRESPONDENCE = 2
# Tensor-type items the pipeline provides from a photo and its keypoints.
PHOTO_ITEMS = frozenset({'img_1', 'joint_1', 'joint_2'})
# Items the model computes from the flow network's output.
FLOW_ITEMS = frozenset({'flow_out', 'vis_out', 'mask_out', 'vismap_out', 'img_warp'})
# Why an item cannot be had for a new photo.
_GROUND_TRUTH = {'seg': 'a human-parsing segmentation', 'flow_tar': 'the ground-truth flow',
                 'vis_tar': 'the ground-truth visibility', 'mask_tar': 'the ground-truth visibility',
                 'vismap_tar': 'the ground-truth visibility', 'img_2': 'the target photo itself',
                 'img_tar': 'the target photo itself'}
PANEL_COLUMNS = ('source', 'source pose', 'target pose', 'flow', 'visibility', 'warped source', 'result')


class ModelFolderError(FileNotFoundError):
    """A model folder lacks its options or weights; the message names the folder and what is missing."""


# --------------------------------------------------------------------------------------------------
# Model loading
# --------------------------------------------------------------------------------------------------
def available_epochs(model_dir: PathLike) -> list[str]:
    """Labels ``L`` of the ``L_net_netG.pth`` files in ``model_dir``, sorted."""
    return sorted(p.name[:-len('_net_netG.pth')] for p in Path(model_dir).glob('*_net_netG.pth'))


def resolve_epoch(model_dir: PathLike, which_epoch: str | int | None = None) -> str:
    """``which_epoch`` as a label whose generator file exists; ``None`` -> ``best``, else ``latest``.

    Raises:
        ModelFolderError: no such weights, naming the folder and the labels it has.
    """
    model_dir = Path(model_dir)
    labels = [str(which_epoch)] if which_epoch is not None else list(DEFAULT_EPOCHS)
    for label in labels:
        if network_path(model_dir, label, 'netG').is_file():
            return label
    found = available_epochs(model_dir)
    wanted = ' or '.join(f'{label}_net_netG.pth' for label in labels)
    raise ModelFolderError(f'{model_dir}: no generator weights {wanted}; '
                           + (f'the folder has the epochs {found} (pass which_epoch / --which_epoch)' if found else
                              'the folder has no *_net_netG.pth file: train the model first, or download the '
                              'released models (bash scripts/download_models.sh)'))


def load_inference_options(model_dir: PathLike, *, device: str | torch.device = 'auto',
                           which_epoch: str | int | None = None, bn_mode: str = 'running') -> Options:
    """The test options of the experiment folder ``model_dir``, merged with its ``train_opt.json``.

    The same merge the test script does (:func:`options.base_options.merge_train_options` on
    :class:`TestPoseTransferOptions`), with ``checkpoints_dir`` the folder's parent and ``id`` its name (no prefix
    is added), so the frozen flow network (``pretrained_flow_id``) is looked up next to the model folder, as the
    test script looks it up in ``--checkpoints_dir``.

    Raises:
        ModelFolderError: no folder, no ``train_opt.json`` or no weights of the epoch.
        ValueError: an unknown ``bn_mode`` or device.
    """
    model_dir = Path(model_dir)
    if bn_mode not in BN_MODES:
        raise ValueError(f'unknown bn_mode {bn_mode!r}; valid modes are {BN_MODES}')
    if not model_dir.is_dir():
        raise ModelFolderError(f'model folder not found: {model_dir}; give the experiment folder of a trained '
                               f'pose-transfer model (e.g. checkpoints/PoseTransfer_0.5)')
    if not (model_dir / 'train_opt.json').is_file():
        raise ModelFolderError(f'{model_dir} has no train_opt.json: it is not the experiment folder of a trained '
                               f'pose-transfer model (expected train_opt.json and <epoch>_net_netG.pth)')
    label = resolve_epoch(model_dir, which_epoch)
    dev = resolve_device(device)
    gpu_ids = '-1' if dev.type == 'cpu' else str(dev.index or 0)
    test_opt = TestPoseTransferOptions().parse(
        ['--checkpoints_dir', str(model_dir.parent), '--gpu_ids', gpu_ids, '--which_epoch', label, '--bn_mode', bn_mode,
         '--num_workers', '0'], display=False, save=False)
    test_opt.id = model_dir.name
    return merge_train_options(test_opt)


def check_inference_support(opt: Options) -> None:
    """Refuse a model whose networks read something a photo does not have (see the module docstring).

    Raises:
        ValueError: naming the option, the item and what it needs.
    """
    if opt.dataset_type != 'pose_transfer':
        raise ValueError(f'{opt.expr_dir} is a {opt.dataset_type!r} experiment; the pipeline needs a pose-transfer '
                         f'model (PoseTransfer_*), which names its flow module in pretrained_flow_id')
    if opt.joint_nc != NUM_JOINTS:
        raise ValueError(f'{opt.expr_dir}: the model takes {opt.joint_nc} joints; the pipeline reads COCO-18 poses '
                         f'({NUM_JOINTS} joints)')
    needed: dict[str, str] = {}
    for option in ('G_pose_type', 'G_appearance_type'):
        needed.update({item: option for item in tensor_type_items(getattr(opt, option))})
    if opt.which_model_G == 'dual_unet' and opt.G_feat_warp:
        needed.update({'flow_out': 'G_feat_warp', 'vis_out': 'G_feat_warp'})
    if opt.G_pix_warp:
        needed.update({item: 'G_pix_warp_input_type' for item in tensor_type_items(opt.G_pix_warp_input_type)})
        needed.update({'img_warp': 'G_pix_warp'})
    if opt.flow_on_the_fly:
        needed.update({item: 'F_input_type' for item in tensor_type_items(opt.F_input_type)})
    available = PHOTO_ITEMS | {'img_out_G'} | (FLOW_ITEMS if opt.flow_on_the_fly else frozenset())
    for item, option in needed.items():
        if item in available:
            continue
        if item in FLOW_ITEMS:
            why = 'the ground-truth flow of the dataset (it was trained with --flow_on_the_fly 0)'
        else:
            base = item.rsplit('_', 1)[0] if item.startswith('seg') else item
            why = _GROUND_TRUTH.get(base, 'an input the pipeline does not build')
        raise ValueError(f'{opt.expr_dir}: the model reads {item!r} ({option}), which needs {why}; it cannot run '
                         f'on new photos')


# --------------------------------------------------------------------------------------------------
# Prepared inputs and results
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeypointFile:
    """A keypoint file with the entry to take from it, for files holding many images' poses.

    path: any file :func:`util.keypoints.read_keypoints` reads.
    entry_id: the image in a multi-image file (the datasets' pose-label id, a COCO ``image_id`` or file name).
    format: force one of :data:`util.keypoints.KEYPOINT_FORMATS` (default: detected).
    """

    path: PathLike
    entry_id: Any = None
    format: str | None = None


def _keypoint_source_name(keypoints: Any, default: str) -> str:
    if isinstance(keypoints, KeypointFile):
        return str(keypoints.path) + (f' (entry {keypoints.entry_id!r})' if keypoints.entry_id is not None else '')
    return str(keypoints) if isinstance(keypoints, (str, os.PathLike)) else default


@dataclass(frozen=True, eq=False)
class PreparedPair:
    """One source/target pair framed for the model (what :meth:`PoseTransferPipeline.prepare` returns).

    name: names the pair in results and errors (the source file by default).
    source: ``uint8 [H, W, 3]`` framed source photo (the model's size).
    source_keypoints, target_keypoints: ``float32 [18, 2]`` in the model frame, -1 for missing joints.
    frame: source photo -> model frame; target_frame: target pose coordinates -> model frame.
    photo: the whole source photo ``uint8 [H0, W0, 3]`` (for paste-back).
    target: ``uint8 [H, W, 3]`` framed target photo when one was given, else None.
    """

    name: str
    source: np.ndarray
    source_keypoints: np.ndarray
    target_keypoints: np.ndarray
    frame: Frame
    target_frame: Frame
    photo: np.ndarray
    target: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Intermediates:
    """What the model computed on the way (model frame, ``H x W``).

    flow: ``float32 [H, W, 2]`` pixel offsets ``(dx, dy)`` from each output pixel to where it is taken from in
        the source, zero outside the predicted person (None when the model has no flow network).
    flow_rgb: ``uint8 [H, W, 3]`` colour coding of the flow (hue = direction, brightness = length).
    visibility: ``uint8 [H, W]`` labels: 0 visible in the source, 1 person but hidden in the source,
        2 background.
    warped_source: ``uint8 [H, W, 3]`` the source warped by the flow (black background).
    pixel_warping_mask: ``float32 [H, W]`` in [0, 1], weight of the warped source in the result (None without
        pixel warping).
    generator_output: ``uint8 [H, W, 3]`` the generator's image before pixel warping (None without it).
    """

    flow: np.ndarray | None
    flow_rgb: np.ndarray | None
    visibility: np.ndarray | None
    warped_source: np.ndarray | None
    pixel_warping_mask: np.ndarray | None
    generator_output: np.ndarray | None


@dataclass(frozen=True, eq=False)
class ReposeResult:
    """The person of the source photo in the target pose.

    image: ``uint8 [H, W, 3]`` RGB result in the model frame.
    pasted: ``uint8 [H0, W0, 3]`` the result pasted back into the source photo (``paste_back=True``), else None.
    intermediates: :class:`Intermediates` (``return_intermediates=True``), else None.
    pair: the :class:`PreparedPair` it was made from; its ``name``, ``source``, ``source_keypoints``,
    ``target_keypoints``, ``frame`` and ``target_frame`` are also properties of the result.
    """

    image: np.ndarray
    pair: PreparedPair
    pasted: np.ndarray | None = None
    intermediates: Intermediates | None = None

    @property
    def name(self) -> str:
        return self.pair.name

    @property
    def source(self) -> np.ndarray:
        return self.pair.source

    @property
    def source_keypoints(self) -> np.ndarray:
        return self.pair.source_keypoints

    @property
    def target_keypoints(self) -> np.ndarray:
        return self.pair.target_keypoints

    @property
    def frame(self) -> Frame:
        return self.pair.frame

    @property
    def target_frame(self) -> Frame:
        return self.pair.target_frame

    @property
    def final(self) -> np.ndarray:
        """The pasted-back photo when there is one, else the image."""
        return self.pasted if self.pasted is not None else self.image

    def pil(self) -> Image.Image:
        """:attr:`final` as a PIL image."""
        return Image.fromarray(self.final)

    def panel(self) -> np.ndarray:
        """``uint8`` strip of :data:`PANEL_COLUMNS` (flow and visibility left out when the model has no flow
        network), 2-pixel white gaps; needs ``return_intermediates=True``."""
        if self.intermediates is None:
            raise ValueError(f'{self.name}: the panel needs the intermediates; call the pipeline with '
                             f'return_intermediates=True (--panel)')
        inter = self.intermediates
        height, width = self.image.shape[:2]

        def unit(image_uint8: np.ndarray) -> torch.Tensor:  # uint8 [H, W, 3] -> [1, 3, H, W] in [-1, 1]
            return torch.from_numpy(image_uint8).permute(2, 0, 1)[None].float().div(127.5).sub(1)

        columns = [render_panel(unit(self.source), 'rgb'),
                   unit(draw_pose(self.source_keypoints, (height, width))),
                   unit(draw_pose(self.target_keypoints, (height, width)))]
        if inter.flow is not None:
            columns.append(render_panel(torch.from_numpy(inter.flow).permute(2, 0, 1)[None], 'flow'))
            columns.append(render_panel(torch.from_numpy(inter.visibility)[None, None].float(), 'vis'))
            columns.append(render_panel(unit(inter.warped_source), 'rgb'))
        columns.append(render_panel(unit(self.image), 'rgb'))
        strip = make_grid(torch.cat(columns).add(1).div(2), nrow=len(columns), padding=2, pad_value=1.0)
        return strip.mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


# --------------------------------------------------------------------------------------------------
# Model input
# --------------------------------------------------------------------------------------------------
def encode_pairs(pairs: Sequence[PreparedPair], opt: Options) -> dict[str, Any]:
    """The model's input batch for ``pairs``, built like collated dataset items (see the module docstring).

    Returns:
        ``img_1``/``img_2`` ``[N, 3, H, W]`` in [-1, 1]; ``joint_1``/``joint_2`` ``[N, 18, H, W]`` heatmaps;
        ``joint_c_1``/``joint_c_2`` ``[N, 18, 2]``; placeholders ``seg_1``/``seg_2`` ``[N, seg_nc, H, W]``,
        ``seg_label_1``/``seg_label_2`` ``[N, 1, H, W]``, ``flow_2to1`` ``[N, 2, H, W]`` (NaN) and ``vis_2``
        ``[N, 1, H, W]`` (2); ``id_1``/``id_2`` lists of names.
    """
    height, width = (int(v) for v in opt.image_size)

    def heatmaps(kps: np.ndarray) -> torch.Tensor:
        # The dataset's encoding (BaseDataset.heatmaps): kp_to_map takes (W, H).
        return torch.from_numpy(kp_to_map((width, height), kps, mode=opt.joint_mode, radius=opt.joint_radius,
                                          channels_first=True))

    def stack(values: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(values)

    n = len(pairs)
    nan = float('nan')
    img_2 = [to_chw(normalize_image(p.target)) if p.target is not None else
             torch.full((3, height, width), nan) for p in pairs]
    return {
        'img_1': stack([to_chw(normalize_image(p.source)) for p in pairs]),
        'img_2': stack(img_2),
        'joint_c_1': stack([torch.from_numpy(np.ascontiguousarray(p.source_keypoints, dtype=np.float32))
                            for p in pairs]),
        'joint_c_2': stack([torch.from_numpy(np.ascontiguousarray(p.target_keypoints, dtype=np.float32))
                            for p in pairs]),
        'joint_1': stack([heatmaps(p.source_keypoints) for p in pairs]),
        'joint_2': stack([heatmaps(p.target_keypoints) for p in pairs]),
        'seg_1': torch.full((n, opt.seg_nc, height, width), nan),
        'seg_2': torch.full((n, opt.seg_nc, height, width), nan),
        'seg_label_1': torch.full((n, 1, height, width), nan),
        'seg_label_2': torch.full((n, 1, height, width), nan),
        'flow_2to1': torch.full((n, 2, height, width), nan),
        'vis_2': torch.full((n, 1, height, width), float(NO_CORRESPONDENCE)),
        'id_1': [p.name for p in pairs],
        'id_2': [f'{p.name}:target' for p in pairs],
    }


def _uint8_images(images: torch.Tensor) -> np.ndarray:
    """``[N, 3, H, W]`` in [-1, 1] -> ``uint8 [N, H, W, 3]`` (the test script's conversion)."""
    return to_uint8(images).cpu().numpy()


# --------------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------------
class PoseTransferPipeline:
    """A trained pose-transfer model with framing, keypoint reading/detection and batching around it.

    Build it with :meth:`from_pretrained`. Attributes: ``model`` (the :class:`PoseTransferModel`), ``opt`` (its
    merged options), ``device``, ``image_size`` ``(H, W)``, ``framing`` (the :class:`FramingParams`),
    ``batch_size``, ``model_dir``, ``which_epoch``, ``bn_mode``.
    """

    def __init__(self, model: PoseTransferModel, opt: Options, *, detector: None | str | KeypointDetector = None,
                 detector_weights: PathLike | None = None, detector_options: dict[str, Any] | None = None,
                 framing_preset: str | FramingParams | None = None, batch_size: int = 8,
                 confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD, min_image_side: int = MIN_IMAGE_SIDE):
        check_inference_support(opt)
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.model = model
        self.opt = opt
        self.device = model.device
        self.image_size = (int(opt.image_size[0]), int(opt.image_size[1]))
        preset = framing_preset if framing_preset is not None else DATASET_FRAMING.get(opt.dataset_name, 'deepfashion')
        self.framing = framing_params(preset)
        self.batch_size = int(batch_size)
        self.confidence_threshold = float(confidence_threshold)
        self.min_image_side = int(min_image_side)
        self.model_dir = Path(opt.expr_dir)
        self.which_epoch = opt.which_epoch
        self.bn_mode = opt.bn_mode
        if detector is not None and not isinstance(detector, (str, KeypointDetector)):
            raise TypeError(f'detector must be None, a backend name or a KeypointDetector, got {type(detector)}')
        self._detector = detector
        self._detector_weights = detector_weights
        self._detector_options = dict(detector_options or {})

    @classmethod
    def from_pretrained(cls, model_dir: PathLike, device: str | torch.device = 'auto',
                        which_epoch: str | int | None = None, bn_mode: str = 'running',
                        detector: None | str | KeypointDetector = None, detector_weights: PathLike | None = None,
                        **kwargs: Any) -> 'PoseTransferPipeline':
        """Load the experiment folder ``model_dir`` (see :func:`load_inference_options`).

        Args:
            model_dir: e.g. ``checkpoints/PoseTransfer_0.5``; its flow module folder must sit beside it.
            device: ``'auto'`` (CUDA when available), ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
            which_epoch: weights label; ``None`` takes ``best``, else ``latest``.
            bn_mode: ``'running'`` (eval-mode BatchNorm) or ``'batch'`` (the test script's original semantics).
            detector: keypoint detector for photos given without keypoints: ``None`` (keypoints must be given),
                a backend name (``'torchvision'``, built on first use) or a :class:`KeypointDetector`.
            detector_weights: the backend's weights file (default: the torch hub cache; never downloaded).
            kwargs: ``detector_options`` (extra backend arguments, e.g. ``person_score_thresh``),
                ``framing_preset`` (default: the model's dataset), ``batch_size``, ``confidence_threshold``,
                ``min_image_side``.
        """
        opt = load_inference_options(model_dir, device=device, which_epoch=which_epoch, bn_mode=bn_mode)
        check_inference_support(opt)
        try:
            model = create_model(opt)
        except FileNotFoundError as e:
            raise ModelFolderError(f'loading {model_dir}: {e}') from e
        return cls(model, opt, detector=detector, detector_weights=detector_weights, **kwargs)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(model_dir={str(self.model_dir)!r}, epoch={self.which_epoch!r}, '
                f'image_size={self.image_size}, device={self.device}, bn_mode={self.bn_mode!r})')

    # ------------------------------------------------------------------------------------------ keypoints
    @property
    def detector(self) -> KeypointDetector:
        """The keypoint detector, built on first use."""
        if self._detector is None:
            raise ValueError('no keypoints were given and the pipeline has no keypoint detector: pass the keypoints '
                             '(source_keypoints / target_keypoints, --source_pose / --target_pose) or build the '
                             "pipeline with detector='torchvision'")
        if isinstance(self._detector, str):
            self._detector = build_keypoint_detector(self._detector, weights=self._detector_weights,
                                                     device=self.device, **self._detector_options)
        return self._detector

    def _keypoints(self, keypoints: Any, *, image: np.ndarray | None, image_name: str, what: str,
                   person_index: int | None, confidence_threshold: float) -> np.ndarray:
        """COCO-18 ``[18, 2]`` keypoints of ``image`` (or of no image) from an array, a file, or the detector."""
        image_size = image.shape[:2] if image is not None else None
        if keypoints is None:
            if image is None:
                raise ValueError(f'no {what} given: pass keypoints or an image to detect them in')
            detection = detect_person(self.detector, image, person_index=person_index, image_name=image_name)
            return check_keypoints(detection.keypoints, source=f'the keypoints detected in {image_name}',
                                   image_size=image_size, min_joints=DEFAULT_MIN_JOINTS)
        if isinstance(keypoints, (str, os.PathLike)):
            keypoints = KeypointFile(keypoints)
        if isinstance(keypoints, KeypointFile):
            return read_keypoints(keypoints.path, format=keypoints.format, entry_id=keypoints.entry_id,
                                  person_index=person_index, confidence_threshold=confidence_threshold,
                                  image_size=image_size, min_joints=DEFAULT_MIN_JOINTS)
        return check_keypoints(keypoints, source=f'{what} of {image_name}' if image is not None else what,
                               image_size=image_size, min_joints=DEFAULT_MIN_JOINTS)

    def _source_pose(self, keypoints: Any, photo: np.ndarray, name: str, framing: str | Frame,
                     person_index: int | None, confidence_threshold: float) -> tuple[np.ndarray, str | Frame]:
        """The source's keypoints and the framing to use: ``framing='box'`` becomes the :class:`Frame` of the
        detected person's box."""
        if not (isinstance(framing, str) and framing == 'box'):
            return self._keypoints(keypoints, image=photo, image_name=name, what='source keypoints',
                                   person_index=person_index, confidence_threshold=confidence_threshold), framing
        if keypoints is not None:
            raise ValueError(f'{name}: framing="box" frames the person by the box the keypoint detector finds; give '
                             f'no source keypoints (--source_pose) with it, or use framing="auto"')
        detection = detect_person(self.detector, photo, person_index=person_index, image_name=name)
        kps = check_keypoints(detection.keypoints, source=f'the keypoints detected in {name}',
                              image_size=photo.shape[:2], min_joints=DEFAULT_MIN_JOINTS)
        return kps, frame_from_box(detection.box, self.image_size, self.framing)

    # ------------------------------------------------------------------------------------------ framing
    def _source_frame(self, image: np.ndarray, keypoints: np.ndarray, framing: str | Frame, name: str) -> Frame:
        if isinstance(framing, Frame):
            if framing.out_size != self.image_size:
                raise ValueError(f'{name}: the frame outputs {framing.out_size} but the model takes {self.image_size}')
            return framing
        if framing not in FRAMING_MODES:
            raise ValueError(f'unknown framing {framing!r}; valid modes are {FRAMING_MODES} (or a Frame)')
        if framing == 'identity':
            if image.shape[:2] != self.image_size:
                raise ValueError(f'{name}: framing="identity" needs an image of the model size {self.image_size} '
                                 f'(HxW), got {image.shape[:2]}; use framing="auto"')
            return Frame.identity(self.image_size)
        return frame_from_keypoints(keypoints, self.image_size, self.framing, source=name)

    def _framed_source(self, image: np.ndarray, keypoints: np.ndarray, framing: str | Frame,
                       name: str) -> tuple[Frame, np.ndarray, np.ndarray]:
        frame = self._source_frame(image, keypoints, framing, name)
        framed_kps = frame.to_output(keypoints)
        kept = int(valid_joints(framed_kps).sum())
        if kept < DEFAULT_MIN_JOINTS:
            raise KeypointError(f'{name}: only {kept} joint(s) of the source lie inside the frame; at least '
                                f'{DEFAULT_MIN_JOINTS} are needed')
        return frame, crop_to_frame(image, frame), framed_kps

    def _framed_target(self, keypoints: np.ndarray, framing: str | Frame, target_scale: str,
                       source_keypoints: np.ndarray, name: str) -> tuple[np.ndarray, Frame]:
        if target_scale not in TARGET_REFERENCES:
            raise ValueError(f'unknown target_scale {target_scale!r}; valid values are {TARGET_REFERENCES}')
        if isinstance(framing, str) and framing == 'identity':
            for pose in keypoints.reshape(-1, NUM_JOINTS, 2):
                check_keypoints(pose, source=name, image_size=self.image_size, min_joints=DEFAULT_MIN_JOINTS)
            return keypoints.astype(np.float32), Frame.identity(self.image_size)
        out, frame = normalize_target_pose(keypoints, self.image_size, reference=target_scale,
                                           source_keypoints=source_keypoints, params=self.framing, source=name)
        for t, pose in enumerate(out.reshape(-1, NUM_JOINTS, 2)):
            kept = int(valid_joints(pose).sum())
            if kept < DEFAULT_MIN_JOINTS:
                where = f' (frame {t})' if out.ndim == 3 else ''
                raise KeypointError(f'{name}{where}: only {kept} joint(s) of the target pose lie inside the model '
                                    f'frame; at least {DEFAULT_MIN_JOINTS} are needed (try target_scale="target")')
        return out, frame

    # ------------------------------------------------------------------------------------------ preparing
    def prepare(self, source_image: Any, target_keypoints: Any = None, *, target_image: Any = None,
                source_keypoints: Any = None, framing: str | Frame = 'auto', target_scale: str = 'target',
                person_index: int | None = None, confidence_threshold: float | None = None,
                name: str | None = None) -> PreparedPair:
        """Read, validate and frame one pair (no model involved); arguments as :meth:`__call__`."""
        conf = self.confidence_threshold if confidence_threshold is None else float(confidence_threshold)
        photo, source_name = as_rgb_image(source_image, name or '<source image>', min_side=self.min_image_side)
        src_kps, framing = self._source_pose(source_keypoints, photo, source_name, framing, person_index, conf)
        frame, source, framed_src_kps = self._framed_source(photo, src_kps, framing, source_name)
        target = None
        if target_image is not None:
            target_photo, target_name = as_rgb_image(target_image, '<target image>', min_side=self.min_image_side)
            tgt_kps = self._keypoints(target_keypoints, image=target_photo, image_name=target_name,
                                      what='target keypoints', person_index=person_index, confidence_threshold=conf)
        elif target_keypoints is not None:
            target_photo, target_name = None, _keypoint_source_name(target_keypoints, 'target keypoints')
            tgt_kps = self._keypoints(target_keypoints, image=None, image_name=target_name, what='target keypoints',
                                      person_index=person_index, confidence_threshold=conf)
        else:
            raise ValueError(f'{source_name}: give the target pose (target_keypoints, a keypoint array or file) or a '
                             f'target_image to take it from')
        if target_photo is not None and isinstance(framing, str) and framing == 'identity' \
                and target_photo.shape[:2] != self.image_size:
            raise ValueError(f'{target_name}: framing="identity" needs an image of the model size {self.image_size} '
                             f'(HxW), got {target_photo.shape[:2]}')
        framed_tgt_kps, target_frame = self._framed_target(tgt_kps, framing, target_scale, framed_src_kps, target_name)
        if target_photo is not None:
            target = crop_to_frame(target_photo, target_frame)
        return PreparedPair(name=name or Path(source_name).stem, source=source, source_keypoints=framed_src_kps,
                            target_keypoints=framed_tgt_kps, frame=frame, target_frame=target_frame, photo=photo,
                            target=target)

    def prepare_sequence(self, source_image: Any, target_sequence: Any, *, source_keypoints: Any = None,
                         framing: str | Frame = 'auto', target_scale: str = 'target', smooth: str | None = None,
                         smooth_params: dict[str, Any] | None = None, person_index: int | None = None,
                         confidence_threshold: float | None = None, name: str | None = None) -> list[PreparedPair]:
        """One source and a sequence of target poses, all framed with one target frame (the motion is kept).

        Args:
            target_sequence: ``[T, 18, 2]`` poses, a folder of keypoint files (``*.json`` in natural order) or a
                list of keypoint files (one person followed through the frames, see
                :func:`util.keypoints.read_keypoint_sequence`).
            smooth: ``None``, ``'moving_average'`` or ``'one_euro'`` temporal smoothing of the target poses
                before framing (:func:`util.keypoints.smooth_keypoint_sequence`, ``smooth_params`` e.g.
                ``{'window': 5}`` or ``{'fps': 25}``).
            other arguments: as :meth:`__call__`.
        """
        conf = self.confidence_threshold if confidence_threshold is None else float(confidence_threshold)
        photo, source_name = as_rgb_image(source_image, name or '<source image>', min_side=self.min_image_side)
        src_kps, framing = self._source_pose(source_keypoints, photo, source_name, framing, person_index, conf)
        frame, source, framed_src_kps = self._framed_source(photo, src_kps, framing, source_name)
        if isinstance(target_sequence, (str, os.PathLike)) or (
                isinstance(target_sequence, (list, tuple)) and target_sequence
                and all(isinstance(p, (str, os.PathLike)) for p in target_sequence)):
            seq_name = str(target_sequence) if isinstance(target_sequence, (str, os.PathLike)) else 'target sequence'
            seq = read_keypoint_sequence(target_sequence, person_index=person_index, confidence_threshold=conf,
                                         min_joints=DEFAULT_MIN_JOINTS)
        else:
            seq_name = 'target sequence'
            seq = np.asarray(target_sequence, dtype=np.float64)
            if seq.ndim != 3 or seq.shape[1:] != (NUM_JOINTS, 2) or len(seq) == 0:
                raise KeypointError(f'{seq_name}: expected poses [T, {NUM_JOINTS}, 2], got shape {seq.shape}')
            seq = np.stack([check_keypoints(p, source=f'{seq_name} frame {t}', min_joints=DEFAULT_MIN_JOINTS)
                            for t, p in enumerate(seq)])
        if smooth is not None:
            seq = smooth_keypoint_sequence(seq, smooth, **(smooth_params or {}))
        framed, target_frame = self._framed_target(seq, framing, target_scale, framed_src_kps, seq_name)
        base = name or Path(source_name).stem
        return [PreparedPair(name=f'{base}_{t:06d}', source=source, source_keypoints=framed_src_kps,
                             target_keypoints=pose, frame=frame, target_frame=target_frame, photo=photo)
                for t, pose in enumerate(framed)]

    # ------------------------------------------------------------------------------------------ running
    def generate(self, pairs: Sequence[PreparedPair], *, return_intermediates: bool = False,
                 paste_back: bool = False) -> list[ReposeResult]:
        """Run the model on prepared pairs in batches of ``batch_size``; results in input order."""
        results: list[ReposeResult] = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = list(pairs[start:start + self.batch_size])
            self.model.set_input(encode_pairs(chunk, self.opt))
            self.model.test()
            results += self._results(chunk, self.model.output, return_intermediates, paste_back)
        return results

    def _results(self, chunk: list[PreparedPair], out: dict[str, torch.Tensor], return_intermediates: bool,
                 paste_back: bool) -> list[ReposeResult]:
        if not torch.isfinite(out['img_out']).all():
            raise RuntimeError(f'{self.model_dir}: the model output contains NaN or inf; the model read a '
                               f'placeholder of the dataset ground truth or its weights are broken')
        images = _uint8_images(out['img_out'])
        inter: list[Intermediates | None] = [None] * len(chunk)
        if return_intermediates:
            has_flow = bool(self.opt.flow_on_the_fly)
            flows = out['flow_out'].permute(0, 2, 3, 1).cpu().numpy().astype(np.float32) if has_flow else None
            vis = out['vis_out'][:, 0].cpu().numpy().astype(np.uint8) if has_flow else None
            warped = _uint8_images(out['img_warp']) if has_flow else None
            masks = out['pix_mask'][:, 0].cpu().numpy().astype(np.float32) if 'pix_mask' in out else None
            generated = _uint8_images(out['img_out_G']) if 'img_out_G' in out else None
            inter = [Intermediates(flow=flows[i] if has_flow else None,
                                   flow_rgb=flow_to_rgb(flows[i]) if has_flow else None,
                                   visibility=vis[i] if has_flow else None,
                                   warped_source=warped[i] if has_flow else None,
                                   pixel_warping_mask=masks[i] if masks is not None else None,
                                   generator_output=generated[i] if generated is not None else None)
                     for i in range(len(chunk))]
        return [ReposeResult(image=images[i], pair=pair,
                             pasted=paste_back_result(images[i], pair) if paste_back else None,
                             intermediates=inter[i])
                for i, pair in enumerate(chunk)]

    def __call__(self, source_image: Any, target_keypoints: Any = None, *, target_image: Any = None,
                 source_keypoints: Any = None, return_intermediates: bool = False, paste_back: bool = False,
                 framing: str | Frame = 'auto', target_scale: str = 'target', person_index: int | None = None,
                 confidence_threshold: float | None = None,
                 name: str | None = None) -> ReposeResult | list[ReposeResult]:
        """Repose the person of ``source_image`` into the target pose.

        Args:
            source_image: a path, PIL image or RGB ``uint8 [H, W, 3]`` array; a list of them runs a batch (then
                ``target_keypoints``, ``target_image``, ``source_keypoints`` and ``name`` are lists of the same
                length or None) and a list of results is returned.
            target_keypoints: ``[18, 2]`` COCO-18 keypoints, a keypoint file (any format of :mod:`util.keypoints`)
                or a :class:`KeypointFile` (file and entry), in the coordinates of the photo/video they come from;
                with ``target_image``, that image's keypoints (detected when None).
            target_image: a photo of someone in the target pose.
            source_keypoints: the source's keypoints (array, file or :class:`KeypointFile`); detected when None.
            return_intermediates: fill ``result.intermediates`` (flow, visibility, warped source, ...).
            paste_back: also put the result back into the source photo (``result.pasted``).
            framing: ``'auto'`` (by the source's keypoints), ``'box'`` (by the detected person box),
                ``'identity'`` (already framed at the model size) or a source :class:`Frame`.
            target_scale: ``'target'`` (frame the target by its own skeleton) or ``'source'`` (the source's body
                size and position).
            person_index: which person of a multi-person keypoint file (file order) or detection (largest first).
            confidence_threshold: joints of keypoint files below it are missing (default: the pipeline's).
            name: names the result (default: the source file's stem).
        """
        options = dict(return_intermediates=return_intermediates, paste_back=paste_back)
        prep = dict(framing=framing, target_scale=target_scale, person_index=person_index,
                    confidence_threshold=confidence_threshold)
        if not isinstance(source_image, (list, tuple)):
            pair = self.prepare(source_image, target_keypoints, target_image=target_image,
                                source_keypoints=source_keypoints, name=name, **prep)
            return self.generate([pair], **options)[0]
        n = len(source_image)

        def per_item(value: Any, what: str) -> list:
            if value is None:
                return [None] * n
            if not isinstance(value, (list, tuple)) or len(value) != n:
                raise ValueError(f'with a list of {n} source images, {what} must be a list of {n} entries or None')
            return list(value)

        pairs = [self.prepare(src, tk, target_image=ti, source_keypoints=sk, name=nm, **prep)
                 for src, tk, ti, sk, nm in zip(source_image, per_item(target_keypoints, 'target_keypoints'),
                                                per_item(target_image, 'target_image'),
                                                per_item(source_keypoints, 'source_keypoints'),
                                                per_item(name, 'name'))]
        return self.generate(pairs, **options)

    def repose_sequence(self, source_image: Any, target_sequence: Any, *, return_intermediates: bool = False,
                        paste_back: bool = False, **kwargs: Any) -> list[ReposeResult]:
        """:meth:`prepare_sequence` then :meth:`generate`: one result per target pose, in order."""
        pairs = self.prepare_sequence(source_image, target_sequence, **kwargs)
        return self.generate(pairs, return_intermediates=return_intermediates, paste_back=paste_back)


def paste_back_result(image: np.ndarray, pair: PreparedPair) -> np.ndarray:
    """The result ``image`` (model frame) put back into the pair's source photo over the whole frame box."""
    return paste_back(image, pair.frame, pair.photo)
