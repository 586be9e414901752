"""Training of the two fashion classifiers behind FashionIS and AttrRec-k (``--train`` of the fashion scripts).

The original shipped trained classifiers but no training for the FashionIS one. Here both train with the engine's
pieces: the project's step learning-rate formula, atomic weight files and best-checkpoint tracking. Images
``<img_dir>/<id>.jpg`` of the ``train`` ids of a split file, labels from ``class_label.json`` (``{id: class
index}``) or ``attr_label.pkl`` (``{'label': {id: 0/1 vector}, 'entry': [names]}``), ImageNet initialisation from
the torchvision weights file, Adam or SGD; after each epoch the ``test`` ids (if any) are evaluated and the best
model is saved as ``best.pth`` (plus ``latest.pth``).

Under ``torchrun`` the training is data-parallel like the pose-transfer training (:mod:`util.distributed`):
``--batch_size`` is the global batch, every process takes its slice of each global batch of one shared shuffle
order, BatchNorm normalises each process's slice, and only rank 0 evaluates, prints and writes.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.utils.data import RandomSampler

from data.data_loader import make_dataloader
from metrics.attr_rec import load_attr_labels, mean_average_precision, resolve_attr_label_file
from metrics.fashion_classifiers import (TORCHVISION_URL, ImageLabelDataset, build_classifier, eval_transform,
                                         get_spec, predict_images, train_transform)
from metrics.image_folder import existing_file, match_label_key
from models.base_model import step_learning_rate
from training.loop import improves
from util import distributed
from util.device import parse_gpu_ids, select_device
from util.io import load_json
from util.weights import atomic_torch_save, cpu_state_dict, load_state_dict_compat, safe_torch_load


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
    load_state_dict_compat(model, safe_torch_load(weights_path, 'ImageNet weights'), skip_prefixes=('fc.',),
                           source=weights_path)


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------
def train_classifier(model: nn.Module, loader: Iterable, *, task: str = 'single_label',
                     device: str | torch.device = 'cpu', n_epoch: int = 1, lr: float = 1e-4,
                     weight_decay: float = 0.0, optim: str = 'adam', lr_decay: int = 10, lr_gamma: float = 0.1,
                     display_freq: int = 10, max_steps_per_epoch: int | None = None,
                     epoch_end: Callable[[int], None] | None = None,
                     log: Callable[[str], None] = print,
                     ctx: distributed.DistContext = distributed.SINGLE) -> list[float]:
    """Train ``model`` on ``(image, label)`` batches.

    Args:
        task: ``'single_label'`` (labels: class indices ``[N]``, cross-entropy) or ``'multi_label'``
            (labels: 0/1 ``[N, C]``, binary cross-entropy on the logits).
        optim: ``'adam'`` or ``'sgd'`` (momentum 0.9).
        lr, lr_decay, lr_gamma: step decay (:func:`models.base_model.step_learning_rate`).
        max_steps_per_epoch: stop each epoch after this many steps (debug runs).
        epoch_end: called with the 0-based epoch after each epoch (evaluation, saving).
        ctx: under torchrun, ``model`` is the DistributedDataParallel wrapper and ``loader`` yields this process's
            slices; the epoch's mean loss is averaged over the processes.

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
            group['lr'] = step_learning_rate(lr, epoch + 1, lr_decay, lr_gamma)
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
        epoch_losses.append(distributed.mean_over_ranks(float(np.mean(losses)), ctx))
        log(f'epoch {epoch + 1}/{n_epoch}: mean loss {epoch_losses[-1]:.4f}')
        if epoch_end is not None:
            epoch_end(epoch)
    return epoch_losses


def _load_training_labels(kind: str, fn_label: str | os.PathLike) -> dict:
    if kind == 'inception':
        labels = load_json(fn_label)
        if not isinstance(labels, dict):
            raise ValueError(f'{fn_label}: expected a JSON object {{id: class index}}')
        return labels
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


def train_from_options(opt: argparse.Namespace, kind: str) -> tuple[Path, nn.Module]:
    """``--train`` of the fashion scripts: train the ``kind`` classifier and save
    ``<checkpoints_dir>/<Fashion_*>/<id>/best.pth`` (best on the split's ``test`` ids, else last) and
    ``latest.pth`` (rank 0 only under torchrun). Returns the path of ``best.pth`` and the trained network (the
    last epoch's weights, on its device)."""
    spec = get_spec(kind)
    ctx = distributed.context_from_env()
    distributed.check_multi_gpu_launch(parse_gpu_ids(opt.gpu_ids), ctx)
    distributed.per_rank_batch(opt.batch_size, ctx)  # a batch size that does not divide fails before any work
    device = distributed.init_process_group(ctx, select_device(opt.gpu_ids))
    log = print if ctx.is_main else _quiet
    split = load_json(opt.fn_split)
    if not isinstance(split, dict) or 'train' not in split:
        raise ValueError(f'{opt.fn_split}: expected a JSON object with a "train" list of image ids')
    fn_label = opt.fn_label
    if kind == 'attr':
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
        log(f'initialised from {imagenet}')
    loader = _training_loader(ImageLabelDataset(train_paths, train_transform(opt.rescale_size, opt.crop_size),
                                                train_y), opt.batch_size, opt.num_workers, opt.seed, ctx)
    out_dir = Path(opt.checkpoints_dir) / spec.folders[0] / opt.id
    best: dict[str, float | None] = {'score': None}

    def save(name: str) -> Path:
        return atomic_torch_save(cpu_state_dict(model), out_dir / name)

    def epoch_end(epoch: int) -> None:
        if ctx.is_main:
            rank0_epoch_end(epoch)
        distributed.barrier(ctx)  # the other processes wait while rank 0 evaluates and saves

    def rank0_epoch_end(epoch: int) -> None:
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
            name, score = 'mean_ap', mean_average_precision(scores, y)
        log(f'epoch {epoch + 1}: test {name} {score:.3f}')
        if improves(score, best['score'], 'max'):
            best['score'] = score
            log(f'saved {save("best.pth")}')

    if kind == 'inception':
        # The auxiliary head's logits stay out of the loss, so its weights never get a gradient and never change;
        # saying so lets DistributedDataParallel skip them (it would otherwise wait for their gradients).
        model.AuxLogits.requires_grad_(False)
    model.to(device)
    trained = distributed.wrap_data_parallel(model, ctx, device) if ctx.enabled else model
    try:
        train_classifier(trained, loader, task=spec.task, device=device, n_epoch=opt.n_epoch, lr=opt.lr,
                         weight_decay=opt.weight_decay, optim=opt.optim, lr_decay=opt.lr_decay,
                         lr_gamma=opt.lr_gamma, display_freq=opt.display_freq, max_steps_per_epoch=max_batches,
                         epoch_end=epoch_end, log=log, ctx=ctx)
    finally:
        distributed.destroy_process_group()
    return out_dir / 'best.pth', model


def _quiet(message: str) -> None:
    """The log of the processes other than rank 0."""


def _training_loader(dataset: ImageLabelDataset, global_batch: int, num_workers: int, seed: int,
                     ctx: distributed.DistContext):
    """Batches of ``global_batch / world_size`` samples: this process's slice of each global batch of a shuffle
    order that every process draws alike from ``seed`` (a new order each epoch). The augmentation draws (random crop
    and flip) are seeded per process."""
    order = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    if ctx.enabled and len(dataset) < global_batch:
        raise ValueError(f'{len(dataset)} training images are fewer than the global --batch_size {global_batch}: '
                         f'every process would get an empty batch; lower --batch_size')
    sampler = distributed.RankSlice(order, global_batch, ctx) if ctx.enabled else order
    local_batch = distributed.per_rank_batch(global_batch, ctx)
    return make_dataloader(dataset, local_batch, num_workers=num_workers, sampler=sampler,
                           drop_last=len(dataset) > global_batch, seed=distributed.rank_seed(seed, ctx.rank))
