"""Evaluation protocols: every setting that changes a reported number, as one declarative table per protocol.

A :class:`Protocol` holds one settings object per metric (defined next to the metric, in its own module) plus the
image and averaging rules shared by all metrics, and the list of metrics it reports per dataset. Metrics a
protocol does not report still have settings, so they can be requested as extras; the result is then labelled
``custom`` (see :func:`customize`). ``docs/evaluation.md`` shows the same tables side by side.

``intrinsic_flow`` — the original's test pass and metric scripts (ly015/intrinsic_flow at 94ea8f0, Python 2.7,
scikit-image 0.14, PyTorch 0.4.0):

* image sizes 256x256 (DeepFashion) and 128x64 (Market): ``options/pose_transfer_options.py`` (``--image_size``
  default, forced to 128x64 for Market); the dataset images already have that size, nothing is resized
  (``data/pose_transfer_dataset.py`` ``read_image``). The demo dataset is Market-sized.
* SSIM, masked SSIM and PSNR were computed in memory on the model output and the normalised target tensor
  (``models/pose_transfer_model.py``), both converted with ``((x + 1) · 127.5).clip(0, 255).astype(uint8)``
  (``models/modules.py``): targets therefore go through the float32 round trip (``image.target_uint8``); the
  generated side can only be read from the saved JPEG (cv2, quality 95), which is the one difference from the
  test pass. Decoder cv2 as the dataset reader.
* averaging: per-batch means stored as float32, then their mean; batch 8, split order, last partial batch kept
  (``util/loss_buffer.py``, ``scripts/test_pose_transfer_model.py``, ``--batch_size 8``).
* SSIM: ``compare_ssim(img_1, img_2, multichannel=True)`` on uint8: 7x7 uniform window, K1 0.01, K2 0.03, sample
  covariance, data range 255 from the dtype, per-channel mean after a 3-pixel crop (scikit-image 0.14
  ``measure/_structural_similarity.py``).
* masked SSIM (Market): mask of the target's keypoints (``util/pose_util.py`` ``get_pose_mask``, radius 4, 5x5
  closing, ``+1e-8`` in the normal's norm), drawn with x as the row (transposed), from the float32 keypoint
  tensor, multiplied into both uint8 images, then SSIM over the whole image (``models/modules.py``).
* PSNR: ``compare_psnr`` on uint8, data range 255.
* IS: ``scripts/inception_score.py``: ``*.jpg`` then ``*.png``, unseeded ``np.random.shuffle`` (seed 0 here),
  TF Inception 2015-12-05, pool_3 · W without bias, 10 splits, population std. Masked IS
  (``scripts/masked_inception_score.py``): each image times its target's transposed mask from the float64
  keypoints of the pose pickle.
* FashionIS / AttrRec-k (DeepFashion, when the classifier weights are present): ``scripts/fashion_inception_score.py``
  (Resize 331, CenterCrop 299, 23 classes, 10 splits) and ``scripts/fashion_attribute_score.py`` (Resize 256,
  CenterCrop 224, 347 attributes, recall@3/5/10/20).
* FID and LPIPS are not part of the original; as extras they use torch-fidelity's FID against the training
  split and LPIPS alex v0.1 over all pairs.

``gfla`` — GFLA's own evaluation (RenYurui/Global-Flow-Local-Attention at 3afa8fe, ``script/metrics.py`` and
``script/inception.py``, unchanged since they were added in February 2020; ``requirement.txt``: torch 1.0.0,
torchvision 0.2.1, scikit-image unpinned; README ``PERSON_IMAGE_GENERATION.md``, section "Evaluation"):

* sizes: GFLA evaluates DeepFashion at **256x256**: its loader resizes to 256x256 (``data/fashion_dataset.py``,
  ``load_size=256``) and its author states that ground truth and training set are the high-resolution photos
  resized to 256x256 (bicubic, JPEG; GFLA issues #53 and #70). Market 128x64 (``data/market_dataset.py``). The
  script never resizes or crops; generated and ground-truth sizes must match. Images read with
  ``imageio.imread`` (Pillow); pairs in sorted generated-name order (``get_image_list``).
* SSIM (``ssim``): ``compare_ssim(gt, pred, data_range=1, win_size=51, multichannel=True)`` on
  ``float32(v) / 255``: 51x51 uniform window, sample covariance.
* ``ssim_gauss`` (GFLA's ``ssim_256``): the same images times 255 (float32, not re-quantised),
  ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=pred.max() - pred.min()``; with the
  scikit-image 0.15-0.17 of the time an 11-tap filter (truncate 3.5; 0.14 would give 13 taps,
  ``--set ssim_gauss.truncate=4.0 --set ssim_gauss.window=11``).
* PSNR: ``compare_psnr(gt, pred, data_range=1)`` on the float32 [0, 1] images. Plain means over pairs.
* FID: :mod:`metrics.fid_torchvision` (``script/inception.py``: torchvision Inception-v3 blocks to the 2048-d
  pool, bilinear resize to 299, early pytorch-fid normalisation; ``script/metrics.py`` ``FID``: batches of 64,
  shrunk to N below 64, remainder dropped), real set = the whole training set (README: "the real data
  distributions are calculated over the whole training set"; command ``--fid_real_path train_256``). Differences:
  GFLA's FID takes every ``*.jpg`` then ``*.png`` of the results folder in file-system order (so which images the
  dropped remainder removes is arbitrary) and caches ``statistics.npz`` in both folders; here the generated set
  is the matched pairs in sorted-name order, the real set the training images in sorted-id order, no cache.
* LPIPS: PerceptualSimilarity ``DistModel(model='net-lin', net='alex')``, version 0.1, inputs
  ``float32(v) / 127.5 - 1``, batches of 64 with the remainder dropped, mean of the distances.
* mask-LPIPS (Market, ``--calculate_mask``): the target's mask (keypoints ``(y, x)`` drawn row = y, so not
  transposed; radius 4; 5x5 closing; no ``+1e-8``; ``produce_ma_mask``), multiplied into both images after the
  scaling to [-1, 1]. GFLA read the keypoints from its ``market-annotation-test.csv``; here from the dataset's
  pose file.
* Data: GFLA's ``test_256`` / ``train_256`` were never published; this protocol reproduces GFLA's metric code on
  this project's images (docs/evaluation.md).

``gfla_256x176`` — GFLA's metric settings on 256x176 DeepFashion images, the size later tables (PATN, PISE,
NTED, PIDM, CFLD and the papers copying their baselines) use. How 256x176 is produced differs between papers, so
it is a setting: ``image.resize_rule`` ``center_crop`` (default; columns 40..215 of a 256x256 image, PATN's
``img[:, 40:-40]``, exact pixels, meaningful when the 256x256 images carry the In-shop low-resolution white side
bands), ``cv2_bilinear`` (PIDM ``utils/metrics.py``: ``cv2.resize(..., (176, 256))`` of the FID images) or
``pil_bicubic`` (closest to NTED/CFLD, who resized the high-resolution photos). PIDM's Gaussian SSIM used sigma 1.2
(``utils/metrics.py``; ``--set ssim_gauss.sigma=1.2``); CFLD kept every image for FID
(``--set fid.drop_remainder=false``; from an earlier reading, not re-checked).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field

from metrics.attr_rec import AttrRecSettings
from metrics.averaging import AveragingSettings
from metrics.fashion_is import FashionISSettings
from metrics.fid import FIDSettings
from metrics.image_prep import DATASET_NAMES, ImageSettings
from metrics.inception_score import ISSettings
from metrics.lpips_metric import LPIPSSettings
from metrics.pose_mask import PoseMaskSettings
from metrics.psnr import PSNRSettings
from metrics.ssim import SSIMSettings

# Every metric an evaluation can report, in the order of result tables.
METRIC_NAMES = ('ssim', 'ssim_gauss', 'mask_ssim', 'psnr', 'lpips', 'mask_lpips', 'fid', 'is', 'masked_is',
                'fashion_is', 'attr_rec')
# Metrics that need the target's keypoints.
MASKED_METRICS = ('mask_ssim', 'mask_lpips', 'masked_is')
# The protocol sections that are settings objects, in table order (``--set <section>.<field>=<value>``).
SECTIONS = ('image', 'averaging', 'ssim', 'ssim_gauss', 'mask_ssim', 'psnr', 'lpips', 'mask_lpips', 'fid',
            'inception', 'masked_is', 'fashion_is', 'attr_rec')
CUSTOM = 'custom'


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol. Sections (see each settings class for the meaning of its fields):

    * ``image`` (:class:`~metrics.image_prep.ImageSettings`): sizes per dataset, resize rule, decoder, target
      uint8 rule, pair order;
    * ``averaging`` (:class:`~metrics.averaging.AveragingSettings`): how per-image SSIM / masked SSIM / PSNR
      values become one number;
    * ``ssim``, ``ssim_gauss`` (:class:`~metrics.ssim.SSIMSettings`); ``mask_ssim`` (the pose mask of masked
      SSIM, which otherwise uses ``ssim``);
    * ``psnr`` (:class:`~metrics.psnr.PSNRSettings`);
    * ``lpips`` (:class:`~metrics.lpips_metric.LPIPSSettings`); ``mask_lpips`` (its pose mask);
    * ``fid`` (:class:`~metrics.fid.FIDSettings`);
    * ``inception`` (:class:`~metrics.inception_score.ISSettings`, metric ``is``); ``masked_is`` (its pose mask);
    * ``fashion_is``, ``attr_rec`` (input pipelines of the two DeepFashion classifiers).

    ``metrics_<dataset>`` lists what the protocol reports on each dataset; ``sources`` says where each setting
    comes from (module docstring).
    """
    name: str
    summary: str
    image: ImageSettings
    averaging: AveragingSettings
    ssim: SSIMSettings
    ssim_gauss: SSIMSettings
    mask_ssim: PoseMaskSettings
    psnr: PSNRSettings
    lpips: LPIPSSettings
    mask_lpips: PoseMaskSettings
    fid: FIDSettings
    inception: ISSettings
    masked_is: PoseMaskSettings
    fashion_is: FashionISSettings = field(default_factory=FashionISSettings)
    attr_rec: AttrRecSettings = field(default_factory=AttrRecSettings)
    metrics_deepfashion: tuple[str, ...] = ()
    metrics_market: tuple[str, ...] = ()
    metrics_demo: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for dataset in DATASET_NAMES:
            unknown = set(self.metrics(dataset)).difference(METRIC_NAMES)
            if unknown:
                raise ValueError(f'protocol {self.name!r}: unknown metrics {sorted(unknown)} for {dataset}; '
                                 f'valid: {list(METRIC_NAMES)}')

    def metrics(self, dataset_name: str) -> tuple[str, ...]:
        if dataset_name not in DATASET_NAMES:
            raise ValueError(f'unknown dataset {dataset_name!r}; valid: {list(DATASET_NAMES)}')
        return getattr(self, f'metrics_{dataset_name}')

    def settings(self) -> dict:
        """Every section as a plain dict (for JSON): ``{'image': {...}, 'ssim': {...}, ...}``."""
        return {section: dataclasses.asdict(getattr(self, section)) for section in SECTIONS}


# Settings shared by both main protocols.
_GAUSSIAN_SSIM = SSIMSettings(window=None, gaussian=True, sigma=1.5, truncate=3.5, scaling='unit_float32_x255',
                              data_range='generated_range', sample_covariance=False)
_GFLA_MASK = PoseMaskSettings(transposed=False, radius=4.0, norm_eps=0.0, keypoint_dtype='float64', apply='signed')
_MARKET_LIKE_IF = ('ssim', 'mask_ssim', 'psnr', 'is', 'masked_is')
_MARKET_LIKE_GFLA = ('fid', 'lpips', 'mask_lpips', 'ssim', 'ssim_gauss', 'psnr')

INTRINSIC_FLOW = Protocol(
    name='intrinsic_flow',
    summary="the original's test pass and metric scripts (256x256 / 128x64, uint8 SSIM window 7, IS on saved files)",
    image=ImageSettings(deepfashion_size=(256, 256), market_size=(128, 64), demo_size=(128, 64), resize_rule='none',
                        decoder='cv2', target_uint8='float32_roundtrip', order='split'),
    averaging=AveragingSettings(rule='batch_means', batch_size=8, float32_batch_means=True),
    ssim=SSIMSettings(),
    ssim_gauss=_GAUSSIAN_SSIM,
    mask_ssim=PoseMaskSettings(transposed=True, radius=4.0, norm_eps=1e-8, keypoint_dtype='float32', apply='uint8'),
    psnr=PSNRSettings(scaling='uint8'),
    lpips=LPIPSSettings(net='alex', version='0.1', drop_remainder=False),
    mask_lpips=_GFLA_MASK,
    fid=FIDSettings(backend='torch_fidelity', real_set='train', batch_size=64, drop_remainder=False),
    inception=ISSettings(backend='torch', n_splits=10, seed=0, batch_size=100),
    masked_is=PoseMaskSettings(transposed=True, radius=4.0, norm_eps=1e-8, keypoint_dtype='float64', apply='uint8'),
    metrics_deepfashion=('ssim', 'psnr', 'is', 'fashion_is', 'attr_rec'),
    metrics_market=_MARKET_LIKE_IF,
    metrics_demo=_MARKET_LIKE_IF,
    sources=(
        'image sizes: intrinsic_flow options/pose_transfer_options.py (--image_size 256 256; Market 128 64)',
        'no resize: intrinsic_flow data/pose_transfer_dataset.py read_image (cv2.imread, /255, Normalize 0.5)',
        'target_uint8 float32_roundtrip: the test pass converts the normalised target tensor, models/modules.py',
        'averaging batch_means(8, float32): util/loss_buffer.py, scripts/test_pose_transfer_model.py, --batch_size 8',
        'ssim: models/modules.py compare_ssim(img_1, img_2, multichannel=True) on uint8, scikit-image 0.14',
        'mask_ssim: util/pose_util.py get_pose_mask (x as row), models/pose_transfer_model.py (joint_c_2, float32)',
        'psnr: models/modules.py compare_psnr on uint8',
        'is: scripts/inception_score.py (unseeded shuffle, batch 100, 10 splits, pool_3 . W without bias)',
        'masked_is: scripts/masked_inception_score.py (pose pickle, float64, transposed mask)',
        'fashion_is: scripts/fashion_inception_score.py; attr_rec: scripts/fashion_attribute_score.py',
        'fid, lpips, ssim_gauss, mask_lpips: not in the original (extras with the settings shown)',
    ),
)

GFLA = Protocol(
    name='gfla',
    summary="GFLA's script/metrics.py as it is (DeepFashion 256x256, Market 128x64, FID vs training set, LPIPS)",
    image=ImageSettings(deepfashion_size=(256, 256), market_size=(128, 64), demo_size=(128, 64), resize_rule='none',
                        decoder='pil', target_uint8='decoded', order='sorted_names'),
    averaging=AveragingSettings(rule='mean'),
    ssim=SSIMSettings(window=51, gaussian=False, scaling='unit_float32', data_range='full', sample_covariance=True),
    ssim_gauss=_GAUSSIAN_SSIM,
    mask_ssim=PoseMaskSettings(transposed=False, radius=4.0, norm_eps=0.0, keypoint_dtype='float64', apply='uint8'),
    psnr=PSNRSettings(scaling='unit_float32'),
    lpips=LPIPSSettings(net='alex', version='0.1', input_range='[-1,1]', batch_size=64, drop_remainder=True),
    mask_lpips=_GFLA_MASK,
    fid=FIDSettings(backend='torchvision_gfla', real_set='train', batch_size=64, drop_remainder=True),
    inception=ISSettings(backend='torch', n_splits=10, seed=0, batch_size=100),
    masked_is=PoseMaskSettings(transposed=False, radius=4.0, norm_eps=0.0, keypoint_dtype='float64', apply='uint8'),
    metrics_deepfashion=('fid', 'lpips', 'ssim', 'ssim_gauss', 'psnr'),
    metrics_market=_MARKET_LIKE_GFLA,
    metrics_demo=_MARKET_LIKE_GFLA,
    sources=(
        'DeepFashion 256x256: GFLA data/fashion_dataset.py (load_size 256); GFLA issues #53, #70 (high-res resized '
        'to 256x256, bicubic, JPEG)',
        'Market 128x64: GFLA data/market_dataset.py; no resize or crop in script/metrics.py',
        'decoder pil: script/metrics.py imageio.imread; order sorted_names: get_image_list / sorted()',
        'ssim: script/metrics.py compare_ssim(gt, pred, data_range=1, win_size=51, multichannel=True) on float32/255',
        'ssim_gauss: script/metrics.py ssim_256 (x255, gaussian_weights, sigma 1.5, population covariance, '
        'data_range = pred max - min)',
        'psnr: script/metrics.py compare_psnr(gt, pred, data_range=1); averaging: np.mean over pairs',
        'fid: script/metrics.py FID + script/inception.py (torchvision inception_v3, early pytorch-fid '
        'normalisation, batch 64, n_batches = N // 64); real set: PERSON_IMAGE_GENERATION.md "whole training set"',
        'lpips: script/metrics.py LPIPS (DistModel net-lin alex v0.1, /127.5 - 1, batch 64, remainder dropped)',
        'mask_lpips: script/metrics.py calculate_mask_lpips / produce_ma_mask (row = y, no 1e-8, mask in [-1, 1])',
        'is, masked_is, fashion_is, attr_rec, mask_ssim: not in GFLA (extras with the settings shown)',
    ),
)

GFLA_256X176 = dataclasses.replace(
    GFLA,
    name='gfla_256x176',
    summary="GFLA's metric settings on DeepFashion 256x176 (the size of later tables); resize rule is a setting",
    image=dataclasses.replace(GFLA.image, deepfashion_size=(256, 176), resize_rule='center_crop'),
    sources=GFLA.sources + (
        'DeepFashion 256x176 by center_crop: PATN tool/resize_fashion.py img[:, 40:-40] (low-res In-shop images); '
        'alternatives: cv2_bilinear (PIDM utils/metrics.py, FID/LPIPS), pil_bicubic (closest to NTED '
        'scripts/prepare_data.py and CFLD datasets/deepfashion.py, who resize the high-res photos)',
    ),
)

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (INTRINSIC_FLOW, GFLA, GFLA_256X176)}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f'unknown protocol {name!r}; valid: {sorted(PROTOCOLS)} (change single settings with '
                         f'--set <section>.<field>=<value>)')
    return PROTOCOLS[name]


# --------------------------------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------------------------------
def _field_types(cls: type) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls)


def _parse_scalar(text: str, kind: type, key: str):
    if kind is bool:
        low = text.strip().lower()
        if low in ('1', 'true', 'yes', 'on'):
            return True
        if low in ('0', 'false', 'no', 'off'):
            return False
        raise ValueError(f'--set {key}: {text!r} is not a boolean (true/false)')
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f'--set {key}: {text!r} is not an integer') from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f'--set {key}: {text!r} is not a number') from None
    return text


def parse_value(text: str, hint: typing.Any, key: str):
    """Convert the command-line text of ``--set key=text`` to the field's type ``hint``.

    ``none`` for optional fields; tuples as ``256x176`` or ``3,5,10``.
    """
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if text.strip().lower() == 'none' and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return parse_value(text, inner[0], key)
    if typing.get_origin(hint) is tuple:
        parts = [p for p in text.replace('x', ',').split(',') if p.strip()]
        item_type = args[0]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_parse_scalar(p, item_type, key) for p in parts)
        if len(parts) != len(args):
            raise ValueError(f'--set {key}: {text!r} needs {len(args)} values (e.g. 256x176)')
        return tuple(_parse_scalar(p, a, key) for p, a in zip(parts, args))
    return _parse_scalar(text, hint, key)


def customize(protocol: Protocol, overrides: Iterable[str] = (), metrics: Iterable[str] | None = None,
              dataset_name: str | None = None) -> tuple[Protocol, dict]:
    """Apply ``--set section.field=value`` overrides (and an explicit metric list) to ``protocol``.

    Returns ``(protocol, changes)``. ``changes`` maps ``'section.field'`` to ``[old, new]`` and, when metrics
    outside the protocol's list for ``dataset_name`` were requested, ``'metrics'`` to ``[protocol list, requested
    list]``. When ``changes`` is not empty the returned protocol is named ``custom`` (the base name is kept in
    the result's ``base_protocol``); a subset of the protocol's own metrics changes nothing.

    Raises:
        ValueError: a malformed override, an unknown section or field, a value of the wrong type or an invalid
            value (each settings class validates itself), an unknown metric name.
    """
    changes: dict[str, list] = {}
    sections = {s: getattr(protocol, s) for s in SECTIONS}
    for item in overrides:
        key, sep, text = item.partition('=')
        key = key.strip()
        section, dot, name = key.partition('.')
        if not sep or not dot:
            raise ValueError(f'--set {item!r}: expected <section>.<field>=<value>, e.g. ssim.window=11')
        if section not in sections:
            raise ValueError(f'--set {item!r}: unknown section {section!r}; valid: {list(SECTIONS)}')
        hints = _field_types(type(sections[section]))
        if name not in hints:
            raise ValueError(f'--set {item!r}: {section} has no setting {name!r}; valid: {sorted(hints)}')
        value = parse_value(text, hints[name], key)
        old = getattr(sections[section], name)
        try:
            sections[section] = dataclasses.replace(sections[section], **{name: value})
        except ValueError as e:
            raise ValueError(f'--set {item!r}: {e}') from None
        if value != old:
            first = changes.get(key, [old])[0]
            changes[key] = [first, value]
        if key in changes and changes[key][0] == changes[key][1]:
            del changes[key]
    if metrics is not None:
        metrics = tuple(metrics)
        unknown = [m for m in metrics if m not in METRIC_NAMES]
        if unknown:
            raise ValueError(f'unknown metrics {unknown}; valid: {list(METRIC_NAMES)}')
        if dataset_name is not None:
            own = protocol.metrics(dataset_name)
            extra = [m for m in metrics if m not in own]
            if extra:
                changes['metrics'] = [list(own), list(metrics)]
    if not changes:
        return protocol, {}
    return dataclasses.replace(protocol, name=CUSTOM, **sections), changes
