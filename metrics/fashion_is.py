"""FashionIS: the inception score under a clothing classifier.

An Inception-v3 fine-tuned on 23 DeepFashion clothing classes (see :mod:`metrics.fashion_classifiers`) replaces
the ImageNet network. Every ``*.<ext>`` image of the folder (sorted by name; the original used the
directory listing order and no shuffle) goes through Resize(331) -> CenterCrop(299) -> [-1, 1], the
model's ``transform_input`` re-maps it as during training, softmax over 23 classes, then the inception
score with 10 contiguous splits exactly as :func:`metrics.inception_score.inception_score_from_probs`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn as nn

from metrics.fashion_classifiers import eval_transform, find_classifier_checkpoint, load_classifier, predict_images
from metrics.image_folder import list_images
from metrics.inception_score import inception_score_from_probs


@dataclass(frozen=True)
class FashionISSettings:
    """FashionIS: the input pipeline (``Resize(rescale_size)`` of the shorter side, PIL bilinear, then
    ``CenterCrop(crop_size)``), the number of classes and of splits; images in sorted-name order, no shuffle."""
    rescale_size: int = 331
    crop_size: int = 299
    n_class: int = 23
    n_splits: int = 10
    batch_size: int = 32


def compute_fashion_is(test_dir: str | os.PathLike, *, exp_id: str = 'default',
                       checkpoints_dir: str | os.PathLike = 'checkpoints',
                       weights_path: str | os.PathLike | None = None,
                       n_class: int = 23, rescale_size: int = 331, crop_size: int = 299, batch_size: int = 32,
                       n_splits: int = 10, ext: str = 'jpg', device: str | torch.device = 'cpu',
                       model: nn.Module | None = None, max_batches: int | None = None, num_workers: int = 0) -> dict:
    """FashionIS of the ``*.<ext>`` images in ``test_dir``.

    Args:
        exp_id, checkpoints_dir, weights_path: classifier weights (``checkpoints/Fashion_Inception/<id>/best.pth``
            or ``Fasion_Inception``; ``weights_path`` overrides); ignored when ``model`` is given.
        n_class: classifier outputs (23).
        rescale_size, crop_size: Resize / CenterCrop of the input pipeline.
        n_splits: splits of the score (10).
        max_batches: score only the first batches (debug).

    Returns:
        dict with ``fashion_is``, ``fashion_is_std``, ``split_scores``, ``n_images``, ``test_dir``, ``weights``.
    """
    paths = list_images(test_dir, (ext,))
    weights = None
    if model is None:
        weights = find_classifier_checkpoint('inception', exp_id, checkpoints_dir, weights_path)
        model = load_classifier('inception', weights, n_class, device)
    probs = predict_images(model, paths, eval_transform(rescale_size, crop_size), batch_size, device, 'softmax',
                           max_batches, num_workers)
    score = inception_score_from_probs(probs, n_splits)
    return {'fashion_is': score['inception_score'], 'fashion_is_std': score['inception_score_std'],
            'split_scores': score['split_scores'], 'n_images': len(probs), 'test_dir': str(test_dir),
            'weights': str(weights) if weights else None}
