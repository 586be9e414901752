"""The two DeepFashion classifiers behind FashionIS and AttrRec-k (SPEC §9.6, §10.2), and their training.

* ``'inception'`` (FashionIS): torchvision Inception-v3 as built for ImageNet weights
  (``transform_input=True``, 1000-class auxiliary head kept), ``fc`` replaced by ``Linear(2048, 23)``;
  released weights ``checkpoints/Fashion_Inception/<id>/best.pth``.
* ``'attr'`` (AttrRec-k): torchvision ResNet-50 with ``fc = Linear(2048, 347)``, sigmoid outputs;
  released weights ``checkpoints/Fashion_Attr/<id>/best.pth``.

The README names the released folders ``Fasion_Inception`` / ``Fasion_Attr``; both spellings are
looked up. Checkpoints are plain state_dicts with torchvision's key names, saved by PyTorch 0.4.0 (no
``num_batches_tracked`` entries) from CUDA models: loaded on the CPU with ``weights_only=True``.
Networks are built with random weights (``init_weights=False`` skips Inception's slow truncated-normal
init), so nothing is ever downloaded.

Training (the original's FashionIS script had none): images ``<img_dir>/<id>.jpg`` of the ``train``
ids of a split file, labels from ``class_label.json`` (``{id: class index}``) or ``attr_label.pkl``
(``{'label': {id: 0/1 vector}, 'entry': [names]}``), ImageNet initialisation from the torchvision
weights file, Adam/SGD with a step decay; after each epoch the ``test`` ids (if any) are evaluated and
the best model is saved as ``best.pth`` (plus ``latest.pth``).
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from util.metrics.image_folder import existing_file, match_label_key

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
# Builders and weight loading
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


def build_fashion_inception(n_class: int = N_FASHION_CLASSES) -> nn.Module:
    """FashionIS classifier (Inception-v3, ``transform_input=True``, aux head, ``fc`` 2048 -> n_class)."""
    return build_classifier('inception', n_class)


def build_attr_resnet(n_attr: int = N_ATTRIBUTES) -> nn.Module:
    """AttrRec classifier (ResNet-50, ``fc`` 2048 -> n_attr; apply a sigmoid to the outputs)."""
    return build_classifier('attr', n_attr)


def load_state_dict_checked(model: nn.Module, state_dict: dict, source: str | os.PathLike,
                            skip_prefixes: tuple[str, ...] = ()) -> None:
    """Load ``state_dict`` into ``model``, strict except for two things old checkpoints lack or add.

    Tolerated: missing ``*.num_batches_tracked`` buffers (PyTorch 0.4.0 checkpoints) and a ``module.``
    prefix on every key (saved from ``DataParallel``). Keys starting with ``skip_prefixes`` are left
    out on both sides. Anything else missing, unexpected or of the wrong shape raises ``ValueError``
    naming ``source``.
    """
    if not isinstance(state_dict, dict) or not state_dict:
        raise ValueError(f'{source}: expected a non-empty state_dict, got {type(state_dict).__name__}')
    if all(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    state_dict = {k: v for k, v in state_dict.items() if not k.startswith(skip_prefixes)}
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(skip_prefixes)}
    missing = [k for k in own if k not in state_dict and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [f'{k}: {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}' for k, v in own.items()
             if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        raise ValueError(f'{source} does not match {type(model).__name__}: missing keys {missing[:8]} '
                         f'({len(missing)}), unexpected keys {unexpected[:8]} ({len(unexpected)}), '
                         f'shape mismatches {wrong[:8]}')
    model.load_state_dict(state_dict, strict=False)


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
    """Build the ``kind`` classifier and load its weights from ``path`` (CPU map location, weights only); eval mode."""
    model = build_classifier(kind, n_out)
    state_dict = torch.load(path, map_location='cpu', weights_only=True)
    load_state_dict_checked(model, state_dict, path)
    return model.to(device).eval()


def find_imagenet_weights(kind: str, weights_path: str | os.PathLike | None = None) -> Path:
    """torchvision ImageNet weights used to initialise training: ``weights_path`` or the torch hub cache."""
    spec = get_spec(kind)
    cache = Path(torch.hub.get_dir()) / 'checkpoints'
    how = (f'Download {TORCHVISION_URL}{spec.imagenet_files[0]} into {cache} (torch hub cache) or pass it with '
           f'--imagenet_weights; or train from random weights with --from_scratch.')
    if weights_path is not None:
        return existing_file(weights_path, f'torchvision ImageNet {spec.arch} weights', how)
    for name in spec.imagenet_files:
        if (cache / name).is_file():
            return cache / name
    raise FileNotFoundError(f'torchvision ImageNet {spec.arch} weights not found (looked for '
                            f'{list(spec.imagenet_files)} in {cache}). {how}')


def init_from_imagenet(model: nn.Module, kind: str, weights_path: str | os.PathLike) -> None:
    """Load torchvision ImageNet weights into every layer of ``model`` except its new ``fc``."""
    state_dict = torch.load(weights_path, map_location='cpu', weights_only=True)
    load_state_dict_checked(model, state_dict, weights_path, skip_prefixes=('fc.',))


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
_NORMALIZE = T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def eval_transform(rescale_size: int, crop_size: int) -> Callable:
    """SPEC §9.6: PIL RGB -> Resize(shorter side, bilinear) -> CenterCrop -> [3, crop, crop] in [-1, 1]."""
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


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------
def step_lr(lr: float, epoch: int, lr_decay: int, lr_gamma: float) -> float:
    """Learning rate of 0-based ``epoch``: ``lr · lr_gamma^(epoch // lr_decay)``."""
    return lr * lr_gamma ** (epoch // lr_decay)


def train_classifier(model: nn.Module, loader: Iterable, *, task: str = 'single_label',
                     device: str | torch.device = 'cpu', n_epoch: int = 1, lr: float = 1e-4,
                     weight_decay: float = 0.0, optim: str = 'adam', lr_decay: int = 10, lr_gamma: float = 0.1,
                     display_freq: int = 10, max_steps_per_epoch: int | None = None,
                     epoch_end: Callable[[int], None] | None = None,
                     log: Callable[[str], None] = print) -> list[float]:
    """Train ``model`` on ``(image, label)`` batches.

    Args:
        task: ``'single_label'`` (labels: class indices ``[N]``, cross-entropy) or ``'multi_label'``
            (labels: 0/1 ``[N, C]``, binary cross-entropy on the logits).
        optim: ``'adam'`` or ``'sgd'`` (momentum 0.9).
        lr, lr_decay, lr_gamma: step decay, see :func:`step_lr`.
        max_steps_per_epoch: stop each epoch after this many steps (debug runs).
        epoch_end: called with the 0-based epoch after each epoch (evaluation, saving).

    Inception-v3 in training mode also returns its auxiliary logits; only the main logits enter the
    loss (the auxiliary head keeps its 1000 ImageNet classes, as in the released checkpoint).

    Returns:
        Mean training loss of each epoch.
    """
    if task not in ('single_label', 'multi_label'):
        raise ValueError(f"unknown task {task!r}; valid: ['single_label', 'multi_label']")
    params = [p for p in model.parameters() if p.requires_grad]
    if optim == 'adam':
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    elif optim == 'sgd':
        optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    else:
        raise ValueError(f"unknown optimizer {optim!r}; valid: ['adam', 'sgd']")
    model.to(device)
    epoch_losses = []
    for epoch in range(n_epoch):
        for group in optimizer.param_groups:
            group['lr'] = step_lr(lr, epoch, lr_decay, lr_gamma)
        model.train()
        losses = []
        for step, (x, y) in enumerate(loader):
            if max_steps_per_epoch is not None and step >= max_steps_per_epoch:
                break
            out = model(x.to(device))
            logits = out.logits if isinstance(out, torchvision.models.InceptionOutputs) else out
            y = y.to(device)
            if task == 'single_label':
                loss = F.cross_entropy(logits, y.long())
            else:
                loss = F.binary_cross_entropy_with_logits(logits, y.float())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if display_freq > 0 and (step + 1) % display_freq == 0:
                log(f'epoch {epoch + 1}/{n_epoch} step {step + 1}: loss {loss.item():.4f} '
                    f'lr {optimizer.param_groups[0]["lr"]:.3g}')
        if not losses:
            raise ValueError('the training loader yielded no batch')
        epoch_losses.append(float(np.mean(losses)))
        log(f'epoch {epoch + 1}/{n_epoch}: mean loss {epoch_losses[-1]:.4f}')
        if epoch_end is not None:
            epoch_end(epoch)
    return epoch_losses


def classifier_parser(kind: str) -> argparse.ArgumentParser:
    """Command line of ``scripts/fashion_inception_score.py`` (``'inception'``) and
    ``scripts/fashion_attribute_score.py`` (``'attr'``): the original options plus a few modern ones."""
    spec = get_spec(kind)
    p = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--id', default='default', help='classifier id: weights in checkpoints/<folder>/<id>/best.pth')
    if kind == 'inception':
        p.add_argument('--n_class', type=int, default=spec.n_out, help='number of clothing classes')
    else:
        p.add_argument('--n_attr', type=int, default=spec.n_out, help='number of attributes')
    p.add_argument('--rescale_size', type=int, default=spec.rescale_size, help='Resize (shorter side) before cropping')
    p.add_argument('--crop_size', type=int, default=spec.crop_size, help='CenterCrop size (RandomCrop in training)')
    p.add_argument('--gpu_ids', default='0', help='GPU ids, e.g. 0; -1 or empty for the CPU')
    p.add_argument('--debug', action='store_true', help='only the first 2 batches of every loop (smoke test)')
    p.add_argument('--test_dir', default=None, help='folder of generated images <id_1>_<id_2>.<ext> to score')
    p.add_argument('--n_test_split', type=int, default=10,
                   help='splits of the inception score' + ('' if kind == 'inception' else ' (unused here)'))
    p.add_argument('--ext', default='jpg', choices=['jpg', 'png'], help='extension of the images in test_dir')
    p.add_argument('--batch_size', type=int, default=32)
    # Training options (used with --train).
    p.add_argument('--train', action='store_true', help='train the classifier instead of scoring test_dir')
    p.add_argument('--fn_split', default=DEFAULT_SPLIT_FILE, help='training: JSON {"train": [ids], "test": [ids]}')
    p.add_argument('--fn_label', default=spec.fn_label,
                   help=('training: JSON {id: class index}' if kind == 'inception' else
                         'attribute labels {"label": {id: 0/1 vector}, "entry": [names]} (also needed to score; '
                         'falls back to datasets/deepfashion/Label/attr_label.pkl)'))
    p.add_argument('--img_dir', default=DEFAULT_IMG_DIR, help='training: folder of <id>.jpg images')
    p.add_argument('--lr', type=float, default=1e-4)
    p.add_argument('--weight_decay', type=float, default=spec.weight_decay)
    p.add_argument('--n_epoch', type=int, default=30)
    p.add_argument('--lr_decay', type=int, default=10, help='multiply the lr by lr_gamma every lr_decay epochs')
    p.add_argument('--lr_gamma', type=float, default=0.1)
    p.add_argument('--display_freq', type=int, default=10, help='print the loss every display_freq steps')
    p.add_argument('--optim', default='adam', choices=['adam', 'sgd'])
    # Modern options.
    p.add_argument('--checkpoints_dir', default='checkpoints')
    p.add_argument('--weights', default=None,
                   help=f'classifier weights file (default: <checkpoints_dir>/{spec.folders[0]}/<id>/best.pth, '
                        f'also {spec.folders[1]})')
    p.add_argument('--imagenet_weights', default=None,
                   help=f'training init: torchvision {spec.arch} ImageNet weights (default: torch hub cache '
                        f'{spec.imagenet_files[0]})')
    p.add_argument('--from_scratch', action='store_true', help='training: random init instead of ImageNet weights')
    p.add_argument('--num_workers', type=int, default=4, help='data loader worker processes')
    return p


def _load_training_labels(kind: str, fn_label: str | os.PathLike) -> dict:
    from util.io import load_json

    if kind == 'inception':
        labels = load_json(fn_label)
        if not isinstance(labels, dict):
            raise ValueError(f'{fn_label}: expected a JSON object {{id: class index}}')
        return labels
    from util.metrics.attr_rec import load_attr_labels
    return load_attr_labels(fn_label)[0]


def _labelled_paths(ids: Sequence[str], labels: dict, img_dir: str | os.PathLike, fn_label, kind: str):
    paths, targets = [], []
    for image_id in ids:
        key = match_label_key(image_id, labels.keys())
        if key is None:
            raise ValueError(f'image id {image_id!r} of the split has no entry in the label file {fn_label}')
        paths.append(existing_file(Path(img_dir) / f'{image_id}.jpg', 'training image', 'Check --img_dir.'))
        targets.append(labels[key])
    if kind == 'inception':
        return paths, np.asarray([int(t) for t in targets], dtype=np.int64)
    return paths, np.stack([np.asarray(t, dtype=np.float32) for t in targets])


def train_from_options(opt: argparse.Namespace, kind: str) -> Path:
    """``--train`` of the fashion scripts: train the ``kind`` classifier and save
    ``<checkpoints_dir>/<Fashion_*>/<id>/best.pth`` (best on the split's ``test`` ids, else last) and
    ``latest.pth``. Returns the path of ``best.pth``."""
    from util.io import atomic_target, load_json
    from util.metrics.image_folder import select_device

    spec = get_spec(kind)
    device = select_device(opt.gpu_ids)
    split = load_json(opt.fn_split)
    if not isinstance(split, dict) or 'train' not in split:
        raise ValueError(f'{opt.fn_split}: expected a JSON object with a "train" list of image ids')
    fn_label = opt.fn_label
    if kind == 'attr':
        from util.metrics.attr_rec import resolve_attr_label_file
        fn_label = resolve_attr_label_file(fn_label)
    labels = _load_training_labels(kind, fn_label)
    train_paths, train_y = _labelled_paths(split['train'], labels, opt.img_dir, fn_label, kind)
    test_ids = split.get('test') or []
    test_paths, test_y = (_labelled_paths(test_ids, labels, opt.img_dir, fn_label, kind) if test_ids else ([], None))
    max_batches = 2 if opt.debug else None

    n_out = opt.n_class if kind == 'inception' else opt.n_attr
    model = build_classifier(kind, n_out)
    if not opt.from_scratch:
        imagenet = find_imagenet_weights(kind, opt.imagenet_weights)
        init_from_imagenet(model, kind, imagenet)
        print(f'initialised from {imagenet}')
    loader = DataLoader(ImageLabelDataset(train_paths, train_transform(opt.rescale_size, opt.crop_size), train_y),
                        batch_size=opt.batch_size, shuffle=True, drop_last=len(train_paths) > opt.batch_size,
                        num_workers=opt.num_workers)
    out_dir = Path(opt.checkpoints_dir) / spec.folders[0] / opt.id
    best = {'score': -np.inf}

    def save(name: str) -> Path:
        with atomic_target(out_dir / name) as tmp:
            torch.save(model.state_dict(), tmp)
        return out_dir / name

    def epoch_end(epoch: int) -> None:
        save('latest.pth')
        if not test_paths:
            save('best.pth')
            return
        scores = predict_images(model, test_paths, eval_transform(opt.rescale_size, opt.crop_size), opt.batch_size,
                                device, 'softmax' if kind == 'inception' else 'sigmoid', max_batches,
                                opt.num_workers)
        y = test_y[:len(scores)]
        if kind == 'inception':
            name, score = 'accuracy', float((scores.argmax(1) == y).mean() * 100)
        else:
            from util.metrics.attr_rec import mean_average_precision
            name, score = 'mean_ap', mean_average_precision(scores, y)
        print(f'epoch {epoch + 1}: test {name} {score:.3f}')
        if score > best['score']:
            best['score'] = score
            print(f'saved {save("best.pth")}')

    train_classifier(model, loader, task=spec.task, device=device, n_epoch=opt.n_epoch, lr=opt.lr,
                     weight_decay=opt.weight_decay, optim=opt.optim, lr_decay=opt.lr_decay, lr_gamma=opt.lr_gamma,
                     display_freq=opt.display_freq, max_steps_per_epoch=max_batches, epoch_end=epoch_end)
    return out_dir / 'best.pth'
