"""The two DeepFashion classifiers behind FashionIS and AttrRec-k: builders, weight files, input transforms and
batched prediction.

* ``'inception'`` (FashionIS): torchvision Inception-v3 as built for ImageNet weights (``transform_input=True``,
  1000-class auxiliary head kept), ``fc`` replaced by ``Linear(2048, 23)``; released weights
  ``checkpoints/Fashion_Inception/<id>/best.pth``.
* ``'attr'`` (AttrRec-k): torchvision ResNet-50 with ``fc = Linear(2048, 347)``, sigmoid outputs; released weights
  ``checkpoints/Fashion_Attr/<id>/best.pth``.

The README names the released folders ``Fasion_Inception`` / ``Fasion_Attr``; both spellings are looked up. The
released files are plain state_dicts with torchvision's key names, saved by PyTorch 0.4.0 (no
``num_batches_tracked`` entries), possibly from ``DataParallel`` (``module.`` prefix): loaded on the CPU with
``weights_only=True`` through the project's one strict state_dict checker. Networks are built with random weights
(``init_weights=False`` skips Inception's slow truncated-normal init), so nothing is ever downloaded. Training the
classifiers lives in ``training/classifier.py``.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from metrics.image_folder import existing_file
from util.weights import load_state_dict_compat, safe_torch_load

N_FASHION_CLASSES = 23
N_ATTRIBUTES = 347
TORCHVISION_URL = 'https://download.pytorch.org/models/'
RELEASED_MODELS_HOW = ('The released classifiers are in the pretrained-model archive: bash scripts/download_models.sh '
                       '(Google Drive id 1eClRS7is1fVTXxelOv5g7ziSGTfuSb1U), or train one with --train.')


@dataclass(frozen=True)
class ClassifierSpec:
    """What differs between the two classifiers."""
    kind: str
    folders: tuple[str, ...]           # checkpoint folder names under checkpoints/, looked up in order
    arch: str                          # torchvision architecture
    imagenet_files: tuple[str, ...]    # torchvision ImageNet weight files accepted for --train (first = current)
    task: str                          # 'single_label' (softmax) or 'multi_label' (sigmoid)
    n_out: int
    rescale_size: int
    crop_size: int
    weight_decay: float
    fn_label: str


CLASSIFIERS = {
    'inception': ClassifierSpec(
        kind='inception', folders=('Fashion_Inception', 'Fasion_Inception'), arch='inception_v3',
        imagenet_files=('inception_v3_google-0cc3c7bd.pth', 'inception_v3_google-1a9a5a14.pth'),
        task='single_label', n_out=N_FASHION_CLASSES, rescale_size=331, crop_size=299, weight_decay=1e-4,
        fn_label='datasets/DF_Pose/Label/class_label.json'),
    'attr': ClassifierSpec(
        kind='attr', folders=('Fashion_Attr', 'Fasion_Attr'), arch='resnet50',
        imagenet_files=('resnet50-0676ba61.pth', 'resnet50-19c8e357.pth'),
        task='multi_label', n_out=N_ATTRIBUTES, rescale_size=256, crop_size=224, weight_decay=0.0,
        fn_label='datasets/DF_Pose/Label/attr_label.pkl'),
}
DEFAULT_SPLIT_FILE = 'datasets/DF_Pose/Label/image_split_dfm_new.json'
DEFAULT_IMG_DIR = 'datasets/DF_Pose/Img/img/'


def get_spec(kind: str) -> ClassifierSpec:
    if kind not in CLASSIFIERS:
        raise ValueError(f'unknown classifier kind {kind!r}; valid: {list(CLASSIFIERS)}')
    return CLASSIFIERS[kind]


# --------------------------------------------------------------------------------------------------
# Builders and weight files
# --------------------------------------------------------------------------------------------------
def _imagenet_model(kind: str) -> nn.Module:
    """The torchvision ImageNet architecture (1000 classes), random weights, no download."""
    if get_spec(kind).arch == 'inception_v3':
        # As torchvision builds it for its ImageNet weights: inputs re-normalised, auxiliary head present.
        return torchvision.models.Inception3(num_classes=1000, aux_logits=True, transform_input=True,
                                             init_weights=False)
    return torchvision.models.resnet50(weights=None)


def build_classifier(kind: str, n_out: int | None = None) -> nn.Module:
    """``'inception'``: Inception-v3 with ``fc = Linear(2048, n_out)`` (default 23); ``'attr'``: ResNet-50
    with ``fc = Linear(2048, n_out)`` (default 347). Random weights. Input ``[N, 3, H, W]`` in [-1, 1]."""
    model = _imagenet_model(kind)
    model.fc = nn.Linear(model.fc.in_features, n_out or get_spec(kind).n_out)
    return model


def find_classifier_checkpoint(kind: str, exp_id: str = 'default', checkpoints_dir: str | os.PathLike = 'checkpoints',
                               weights_path: str | os.PathLike | None = None) -> Path:
    """``weights_path`` if given, else ``<checkpoints_dir>/<folder>/<exp_id>/best.pth`` for the folder
    spellings of ``kind`` (``Fashion_*`` then the README's ``Fasion_*``).

    Raises:
        FileNotFoundError: listing the paths tried and how to get the released weights.
    """
    spec = get_spec(kind)
    if weights_path is not None:
        return existing_file(weights_path, f'{spec.folders[0]} classifier weights', RELEASED_MODELS_HOW)
    tried = [Path(checkpoints_dir) / folder / exp_id / 'best.pth' for folder in spec.folders]
    for path in tried:
        if path.is_file():
            return path
    raise FileNotFoundError(f'{spec.folders[0]} classifier weights not found; tried {[str(p) for p in tried]}. '
                            f'{RELEASED_MODELS_HOW} Or pass the file with --weights.')


def load_classifier(kind: str, path: str | os.PathLike, n_out: int | None = None,
                    device: str | torch.device = 'cpu') -> nn.Module:
    """Build the ``kind`` classifier and load its weights from ``path`` (CPU map location, weights only); eval mode.

    Tolerated: missing ``num_batches_tracked`` buffers (PyTorch 0.4.0) and a ``module.`` prefix on every key
    (saved from ``DataParallel``). Anything else missing, unexpected or of the wrong shape is an error naming
    ``path``.
    """
    model = build_classifier(kind, n_out)
    load_state_dict_compat(model, safe_torch_load(path, f'{get_spec(kind).folders[0]} classifier weights'),
                           strip_data_parallel_prefix=True, source=path)
    return model.to(device).eval()


# --------------------------------------------------------------------------------------------------
# Inputs and prediction
# --------------------------------------------------------------------------------------------------
_NORMALIZE = T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def eval_transform(rescale_size: int, crop_size: int) -> Callable:
    """Original inputs: PIL RGB -> Resize(shorter side, bilinear) -> CenterCrop -> [3, crop, crop] in [-1, 1]."""
    return T.Compose([T.Resize(rescale_size), T.CenterCrop(crop_size), T.ToTensor(), _NORMALIZE])


def train_transform(rescale_size: int, crop_size: int) -> Callable:
    """Training augmentation (our choice; the original's is not documented): random crop and flip."""
    return T.Compose([T.Resize(rescale_size), T.RandomCrop(crop_size), T.RandomHorizontalFlip(), T.ToTensor(),
                      _NORMALIZE])


class ImageLabelDataset(Dataset):
    """``(image [3, H, W] in [-1, 1], label)`` for a list of image paths; ``labels`` None gives ``(image, 0)``."""

    def __init__(self, paths: Sequence[Path], transform: Callable, labels: np.ndarray | None = None) -> None:
        if labels is not None and len(labels) != len(paths):
            raise ValueError(f'{len(paths)} images but {len(labels)} labels')
        self.paths, self.transform, self.labels = list(paths), transform, labels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        with Image.open(self.paths[i]) as img:
            img = self.transform(img.convert('RGB'))
        return img, (self.labels[i] if self.labels is not None else 0)


@torch.no_grad()
def predict_arrays(model: nn.Module, images: Sequence[np.ndarray], transform: Callable,
                   device: str | torch.device = 'cpu', activation: str = 'softmax') -> np.ndarray:
    """Outputs ``float64 [N, C]`` of ``model`` (eval mode) for decoded images ``uint8 [H, W, 3]``, through the same
    PIL pipeline ``transform`` as :func:`predict_images` applies to files (so a decoded file gives the same row)."""
    if activation not in ('softmax', 'sigmoid', 'none'):
        raise ValueError(f"unknown activation {activation!r}; valid: ['softmax', 'sigmoid', 'none']")
    model.eval()
    x = torch.stack([transform(Image.fromarray(np.ascontiguousarray(img))) for img in images]).to(device)
    y = model(x).double()
    y = {'softmax': lambda t: t.softmax(1), 'sigmoid': torch.sigmoid, 'none': lambda t: t}[activation](y)
    return y.cpu().numpy()


@torch.no_grad()
def predict_images(model: nn.Module, paths: Sequence[Path], transform: Callable, batch_size: int = 32,
                   device: str | torch.device = 'cpu', activation: str = 'softmax', max_batches: int | None = None,
                   num_workers: int = 0) -> np.ndarray:
    """Outputs ``float64 [N, C]`` of ``model`` (eval mode) over ``paths`` in order, after ``activation``
    (``'softmax'``, ``'sigmoid'`` or ``'none'``). ``max_batches`` stops early (N shrinks accordingly)."""
    if activation not in ('softmax', 'sigmoid', 'none'):
        raise ValueError(f"unknown activation {activation!r}; valid: ['softmax', 'sigmoid', 'none']")
    model.eval()
    loader = DataLoader(ImageLabelDataset(paths, transform), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers)
    out = []
    for i, (x, _) in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        y = model(x.to(device)).double()
        y = {'softmax': lambda t: t.softmax(1), 'sigmoid': torch.sigmoid, 'none': lambda t: t}[activation](y)
        out.append(y.cpu().numpy())
    return np.concatenate(out)
