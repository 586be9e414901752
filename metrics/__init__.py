"""Evaluation metrics, one module per metric, with one registry.

Folder metrics score a folder of generated images ``<id_1>_<id_2>.<ext>`` (as written by
``scripts/test_pose_transfer.py --save_output``); each is ``compute_<name>(img_dir, ...) -> dict`` and
the ``scripts/*_score.py`` command lines are thin wrappers around them:

=============  =================================================  =====================================
name           function                                           network / weights
=============  =================================================  =====================================
``is``         :func:`inception_score.compute_inception_score`     TF Inception 2015-12-05 (torch-fidelity port)
``masked_is``  :func:`inception_score.compute_masked_inception_score`  same, images times target pose mask
``fashion_is`` :func:`fashion_is.compute_fashion_is`               Inception-v3, 23 clothing classes
``attr_rec``   :func:`attr_rec.compute_attr_rec`                   ResNet-50, 347 attributes
``fid``        :func:`fid.compute_fid`                             TF Inception (torch-fidelity), pool3
``lpips``      :func:`lpips_metric.compute_lpips`                  lpips v0.1, AlexNet
=============  =================================================  =====================================

Image metrics compare batches of generated and target tensors in [-1, 1] during testing:
``ssim`` (:class:`ssim.SSIM`, also masked) and ``psnr`` (:class:`psnr.PSNR`).

Heavy third-party packages (torch-fidelity, lpips, TensorFlow) are imported only when a metric runs.
"""
from __future__ import annotations

from collections.abc import Callable

from metrics.attr_rec import compute_attr_rec
from metrics.fashion_is import compute_fashion_is
from metrics.fid import compute_fid
from metrics.inception_score import compute_inception_score, compute_masked_inception_score
from metrics.lpips_metric import compute_lpips
from metrics.psnr import PSNR
from metrics.ssim import SSIM

FOLDER_METRICS: dict[str, Callable[..., dict]] = {
    'is': compute_inception_score,
    'masked_is': compute_masked_inception_score,
    'fashion_is': compute_fashion_is,
    'attr_rec': compute_attr_rec,
    'fid': compute_fid,
    'lpips': compute_lpips,
}
IMAGE_METRICS: dict[str, type] = {
    'ssim': SSIM,
    'psnr': PSNR,
}
METRICS: dict[str, Callable] = {**FOLDER_METRICS, **IMAGE_METRICS}


def get_metric(name: str) -> Callable:
    """The metric registered as ``name`` (a ``compute_*`` function or an image-metric class)."""
    if name not in METRICS:
        raise KeyError(f'unknown metric {name!r}; valid metrics: {sorted(METRICS)}')
    return METRICS[name]


def compute_metric(name: str, *args, **kwargs) -> dict:
    """Run the folder metric ``name``: ``compute_metric('fid', gen_dir, real_dir, device='cuda')``."""
    if name not in FOLDER_METRICS:
        raise KeyError(f'unknown folder metric {name!r}; valid folder metrics: {sorted(FOLDER_METRICS)}')
    return FOLDER_METRICS[name](*args, **kwargs)


__all__ = ['FOLDER_METRICS', 'IMAGE_METRICS', 'METRICS', 'get_metric', 'compute_metric', 'compute_inception_score',
           'compute_masked_inception_score', 'compute_fashion_is', 'compute_attr_rec', 'compute_fid', 'compute_lpips',
           'SSIM', 'PSNR']
