"""Inception score (IS) and masked IS as the original computes them.

Protocol (from improved-gan, used by the paper):

* images: every ``*.jpg`` then every ``*.png`` of the folder, RGB uint8 at native size;
* the image list is shuffled (unseeded ``np.random.shuffle`` in the original; ``seed`` here makes it
  reproducible), then run in batches of 100;
* network: the TF Inception graph of 2015-12-05 (``classify_image_graph_def.pb``): TF1 bilinear resize
  to 299x299 (no half-pixel offset), ``(x - 128) / 128``, ``pool_3`` times the weight matrix of
  ``softmax/logits/MatMul`` **without the bias**, softmax over 1008 classes;
* 10 contiguous splits ``preds[i*n//10 : (i+1)*n//10]``; per split ``exp(E_x KL(p(y|x) || p(y)))``
  with ``p(y)`` the split mean; report the mean and the population std of the 10 values.

Backends: ``'torch'`` (default) uses torch-fidelity's ``FeatureExtractorInceptionV3``, a PyTorch port of
that same graph (including the TF1 resize) whose ``logits_unbiased`` feature is ``pool_3 · W``;
``'tf'`` loads the original graph with TensorFlow (``pip install -r requirements-tf.txt``).
Both map ``uint8 [N, H, W, 3]`` to probabilities ``float64 [N, 1008]``.
Masked IS multiplies every image by the pose mask of its target pose before classification.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.special import xlogy

from metrics.image_folder import (IMAGE_EXTS, MARKET_ID_FIELDS, apply_by_shape, existing_file, list_images,
                                  read_rgb, split_pair_name)
from util.labels import label_file_exists, load_label_file
from util.pose_util import get_pose_mask

INCEPTION_WEIGHTS_FILE = 'weights-inception-2015-12-05-6726825d.pth'
INCEPTION_WEIGHTS_URL = ('https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/'
                         f'{INCEPTION_WEIGHTS_FILE}')
TF_GRAPH_FILE = 'classify_image_graph_def.pb'
TF_GRAPH_URL = 'http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz'
TF_GRAPH_DIR = '/tmp/imagenet'
# SHA-256 of classify_image_graph_def.pb (95,673,916 bytes). No checksum is published with the archive; this is the
# value that several public evaluation repositories record (a README's "Expected SHA256 checksums", asset manifests
# with the size, run reports) for the copy of the file that OpenAI re-hosts for guided-diffusion's evaluator,
# https://openaipublic.blob.core.windows.net/diffusion/jul-2021/ref_batches/classify_image_graph_def.pb .
# Public `ls -l` listings of the extracted inception-2015-12-05.tgz show the same size for the archive's copy.
TF_GRAPH_SHA256 = '009d6814d1bc560d4e7b236e170e9b2d5ca6f4b57bd8037f6db05776204415c6'
BACKENDS = ('torch', 'tf')
DEFAULT_POSE_FILE = 'datasets/market1501/Label/pose_label.pkl'
# An image classifier for IS: uint8 [N, H, W, 3] RGB -> class probabilities float64 [N, C].
ProbsFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ISSettings:
    """Which inception score.

    Attributes:
        backend: ``'torch'`` (torch-fidelity's PyTorch port of the 2015-12-05 TF graph) or ``'tf'`` (the graph
            itself, with TensorFlow).
        n_splits: contiguous splits of the shuffled list (10).
        seed: seed of the shuffle (``np.random.RandomState(seed)``); ``None`` is unseeded like the original, whose
            number is therefore one draw among many; any fixed seed is an equally faithful draw that can be
            repeated.
        batch_size: images per forward pass (100 in the original; does not change the result).
    """
    backend: str = 'torch'
    n_splits: int = 10
    seed: int | None = 0
    batch_size: int = 100

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f'IS backend {self.backend!r} is not one of {list(BACKENDS)}')
        if self.n_splits < 1 or self.batch_size < 1:
            raise ValueError(f'IS n_splits and batch_size must be >= 1, got {self.n_splits}, {self.batch_size}')


# --------------------------------------------------------------------------------------------------
# The score
# --------------------------------------------------------------------------------------------------
def inception_score_from_probs(probs: np.ndarray, n_splits: int = 10) -> dict:
    """IS of class probabilities, in the given row order (shuffle before calling if wanted).

    Args:
        probs: ``[N, C]`` rows of class probabilities (each sums to 1), ``N >= n_splits``.
        n_splits: number of contiguous splits ``probs[i*N//n_splits : (i+1)*N//n_splits]``.

    Returns:
        ``{'inception_score': mean, 'inception_score_std': population std, 'split_scores': [...]}``.
        ``0 · log 0`` terms count as 0 (the original would give NaN there; it never happens with
        softmax outputs of a real network).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f'probs must be [N, C], got shape {probs.shape}')
    n = probs.shape[0]
    if n < n_splits:
        raise ValueError(f'inception score with {n_splits} splits needs at least {n_splits} images, got {n}')
    scores = []
    for i in range(n_splits):
        part = probs[i * n // n_splits:(i + 1) * n // n_splits]
        p_y = part.mean(axis=0, keepdims=True)
        kl = xlogy(part, part) - xlogy(part, p_y)  # p (log p - log p_y), row-wise
        scores.append(float(np.exp(kl.sum(axis=1).mean())))
    return {'inception_score': float(np.mean(scores)), 'inception_score_std': float(np.std(scores)),
            'split_scores': scores}


def shuffle_paths(paths: Sequence[Path], seed: int | None) -> list[Path]:
    """The original's shuffle: ``np.random.shuffle`` on the file list (``RandomState(seed)``; None = unseeded)."""
    paths = list(paths)
    np.random.RandomState(seed).shuffle(paths)
    return paths


# --------------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------------
def find_inception_weights(weights_path: str | os.PathLike | None = None) -> Path:
    """Locate torch-fidelity's Inception weights: ``weights_path`` if given, else the torch hub cache.

    Raises:
        FileNotFoundError: naming the file, its download URL and where to put it.
    """
    cached = Path(torch.hub.get_dir()) / 'checkpoints' / INCEPTION_WEIGHTS_FILE
    how = (f'It is torch-fidelity\'s PyTorch port of the 2015-12-05 TF Inception graph: download '
           f'{INCEPTION_WEIGHTS_URL} and put it at {cached} (torch hub cache), or pass its path with '
           f'--inception_weights.')
    if weights_path is not None:
        return existing_file(weights_path, f'Inception weights file ({INCEPTION_WEIGHTS_FILE})', how)
    return existing_file(cached, f'Inception weights file {INCEPTION_WEIGHTS_FILE}', how)


class TorchFidelityInception:
    """torch-fidelity's ``inception-v3-compat`` feature extractor, loaded from a local weights file.

    ``features(images)`` returns the requested features (``'2048'`` = pool_3 for FID,
    ``'logits_unbiased'`` = pool_3 · W for IS) as float32 arrays; calling the object returns the IS
    class probabilities ``float64 [N, 1008]``. ``images``: ``uint8 [N, H, W, 3]`` RGB at any size.
    """

    def __init__(self, weights_path: str | os.PathLike | None = None, device: str | torch.device = 'cpu',
                 features: Sequence[str] = ('2048', 'logits_unbiased')) -> None:
        import torch_fidelity
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        self.weights_path = find_inception_weights(weights_path)
        # torch-fidelity itself loads with weights_only=False; a weights_only load first guarantees the file
        # holds nothing but tensors before that happens.
        state_dict = torch.load(self.weights_path, map_location='cpu', weights_only=True)
        if not isinstance(state_dict, dict) or 'fc.weight' not in state_dict:
            raise ValueError(f'{self.weights_path} is not an Inception state_dict for torch-fidelity '
                             f'(expected {INCEPTION_WEIGHTS_FILE} from {INCEPTION_WEIGHTS_URL})')
        del state_dict
        self.device = torch.device(device)
        self.feature_names = list(features)
        self.net = FeatureExtractorInceptionV3('inception-v3-compat', self.feature_names,
                                               feature_extractor_weights_path=str(self.weights_path)).to(self.device)
        self.description = (f'torch-fidelity {torch_fidelity.__version__} inception-v3-compat '
                            f'({self.weights_path.name})')

    @torch.no_grad()
    def features(self, images: np.ndarray) -> dict[str, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(self.device)
        out = self.net(x)
        return {name: f.cpu().numpy() for name, f in zip(self.feature_names, out)}

    @staticmethod
    def probs_from_logits(logits: np.ndarray) -> np.ndarray:
        """Softmax in float64 of ``logits_unbiased`` ``[N, 1008]``."""
        return torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.probs_from_logits(self.features(images)['logits_unbiased'])


def _import_tensorflow():
    try:
        import tensorflow as tf
    except ImportError as e:
        raise ImportError('the TF backend of the inception score needs TensorFlow: '
                          'pip install -r requirements-tf.txt (or use the default --backend torch)') from e
    return tf


class TFInceptionGraph:
    """The original TF graph ``classify_image_graph_def.pb`` run with TF2's ``compat.v1`` API.

    The graph's ``ExpandDims:0`` input (``float32 [1, H, W, 3]`` in [0, 255]) is replaced by a
    placeholder with a free batch size; logits are ``squeeze(pool_3, [1, 2]) · W`` (W feeding
    ``softmax/logits/MatMul``, no bias), squeezed on explicit axes so a batch of one image works.
    The file must have the SHA-256 ``expected_sha256`` (default: the published hash of the real graph),
    so a truncated download or another network cannot silently produce scores.
    """

    def __init__(self, graph_dir: str | os.PathLike = TF_GRAPH_DIR, expected_sha256: str = TF_GRAPH_SHA256) -> None:
        tf = _import_tensorflow()
        graph_file = existing_file(
            Path(graph_dir) / TF_GRAPH_FILE, f'TF Inception graph {TF_GRAPH_FILE}',
            f'Download {TF_GRAPH_URL} and extract it into {graph_dir} '
            f'(mkdir -p {graph_dir} && tar -xzf inception-2015-12-05.tgz -C {graph_dir}), '
            f'or pass the folder holding {TF_GRAPH_FILE} with --tf_graph_dir.')
        graph_bytes = graph_file.read_bytes()
        actual_sha256 = hashlib.sha256(graph_bytes).hexdigest()
        if actual_sha256 != expected_sha256.lower():
            raise ValueError(
                f'{graph_file}: SHA-256 {actual_sha256} does not match the expected {expected_sha256}. '
                f'The file is damaged (e.g. an interrupted download) or not the 2015-12-05 Inception graph: '
                f'extract it again from {TF_GRAPH_URL}. To score with this file on purpose, pass '
                f'--tf_graph_sha256 {actual_sha256}.')
        v1 = tf.compat.v1
        graph = tf.Graph()
        with graph.as_default():
            graph_def = v1.GraphDef()
            graph_def.ParseFromString(graph_bytes)
            self._images = v1.placeholder(tf.float32, [None, None, None, 3], name='is_images')
            (pool3,) = tf.import_graph_def(graph_def, input_map={'ExpandDims:0': self._images},
                                           return_elements=['pool_3:0'], name='')
            weights = graph.get_operation_by_name('softmax/logits/MatMul').inputs[1]
            logits = tf.matmul(tf.squeeze(pool3, axis=[1, 2]), weights)
            self._probs = tf.nn.softmax(logits)
        config = v1.ConfigProto()
        config.gpu_options.allow_growth = True
        self._sess = v1.Session(graph=graph, config=config)
        self.weights_path = graph_file
        self.sha256 = actual_sha256
        self.description = f'TensorFlow {tf.__version__} graph {graph_file}'

    def __call__(self, images: np.ndarray) -> np.ndarray:
        probs = self._sess.run(self._probs, {self._images: images.astype(np.float32)})
        return probs.astype(np.float64)


def build_inception_classifier(backend: str = 'torch', weights_path: str | os.PathLike | None = None,
                               device: str | torch.device = 'cpu', tf_graph_dir: str | os.PathLike = TF_GRAPH_DIR,
                               tf_graph_sha256: str = TF_GRAPH_SHA256):
    """The IS network of ``backend`` (``'torch'`` or ``'tf'``), as a :data:`ProbsFn`."""
    if backend == 'torch':
        return TorchFidelityInception(weights_path, device, features=('logits_unbiased',))
    if backend == 'tf':
        return TFInceptionGraph(tf_graph_dir, tf_graph_sha256)
    raise ValueError(f'unknown inception score backend {backend!r}; valid: {list(BACKENDS)}')


# --------------------------------------------------------------------------------------------------
# Folder metrics
# --------------------------------------------------------------------------------------------------
def predict_probs(paths: Sequence[Path], classifier: ProbsFn, batch_size: int = 100,
                  load_fn: Callable[[Path], np.ndarray] = read_rgb) -> np.ndarray:
    """Class probabilities ``[N, C]`` of the images at ``paths``, in order, ``batch_size`` at a time."""
    out = []
    for start in range(0, len(paths), batch_size):
        images = [load_fn(p) for p in paths[start:start + batch_size]]
        out.append(apply_by_shape(classifier, images))
    return np.concatenate(out)


def _classifier_info(classifier) -> tuple[str, str | None]:
    weights = getattr(classifier, 'weights_path', None)
    return getattr(classifier, 'description', type(classifier).__name__), (str(weights) if weights else None)


def compute_inception_score(img_dir: str | os.PathLike, *, backend: str = 'torch',
                            weights_path: str | os.PathLike | None = None, device: str | torch.device = 'cpu',
                            tf_graph_dir: str | os.PathLike = TF_GRAPH_DIR, tf_graph_sha256: str = TF_GRAPH_SHA256,
                            batch_size: int = 100, n_splits: int = 10, seed: int | None = None,
                            classifier: ProbsFn | None = None,
                            load_fn: Callable[[Path], np.ndarray] = read_rgb) -> dict:
    """Inception score of the images in ``img_dir``.

    Args:
        img_dir: folder with ``*.jpg`` / ``*.png`` images (any size; not resized before the network).
        backend, weights_path, device, tf_graph_dir, tf_graph_sha256: network choice (see
            :func:`build_inception_classifier`); ignored when ``classifier`` is given.
        batch_size: images per forward pass (100 in the original; does not change the result).
        n_splits: number of splits (10).
        seed: seed of the shuffle of the image list (None: unseeded, like the original).
        classifier: any :data:`ProbsFn` to use instead of building the Inception network.
        load_fn: image reader ``path -> uint8 [H, W, 3]`` (masked IS multiplies by the pose mask here).

    Returns:
        dict with ``inception_score``, ``inception_score_std``, ``split_scores``, ``n_images``,
        ``img_dir``, ``network``, ``weights``, ``seed``.
    """
    paths = shuffle_paths(list_images(img_dir, IMAGE_EXTS), seed)
    if classifier is None:
        classifier = build_inception_classifier(backend, weights_path, device, tf_graph_dir, tf_graph_sha256)
    probs = predict_probs(paths, classifier, batch_size, load_fn)
    result = inception_score_from_probs(probs, n_splits)
    network, weights = _classifier_info(classifier)
    result.update(n_images=len(paths), img_dir=str(img_dir), network=network, weights=weights, seed=seed)
    return result


def load_pose_labels(pose_file: str | os.PathLike) -> dict[str, np.ndarray]:
    """Pose labels ``{id: 18 [x, y]}`` as ``{id: float64 [18, 2]}``.

    ``pose_file`` is the (restricted-unpickled, Python-2) pickle, or read from its converted ``.json`` twin when
    present (``util.labels``). Non-finite keypoints are an error naming the file and the id.
    """
    if not label_file_exists(pose_file):
        raise FileNotFoundError(f'pose label file not found: {pose_file}. It is Label/pose_label.pkl of the dataset '
                                f'(bash scripts/download_market1501.sh); pass its path with --pose_file.')
    poses = load_label_file(pose_file)
    if not isinstance(poses, dict):
        raise ValueError(f'{pose_file}: expected a dict id -> 18 (x, y) keypoints, got {type(poses).__name__}')
    out = {}
    for key, kps in poses.items():
        arr = np.asarray(kps, dtype=np.float64)
        if arr.shape != (18, 2):
            raise ValueError(f'{pose_file}: pose of {key!r} has shape {arr.shape}, expected (18, 2)')
        if not np.isfinite(arr).all():
            raise ValueError(f'{pose_file}: pose of {key!r} holds NaN or inf keypoints')
        out[key] = arr
    return out


def masked_image_loader(pose_labels: dict[str, np.ndarray], transposed: bool = True,
                        n_source_fields: int = MARKET_ID_FIELDS) -> Callable[[Path], np.ndarray]:
    """Image reader for masked IS: RGB uint8 times the pose mask of the image's target pose.

    The target id comes from the file name ``<id_1>_<id_2>.<ext>`` (matched against the pose keys);
    the mask is built at the image's own ``(H, W)`` (``transposed`` as the original).
    """
    keys = pose_labels.keys()

    def load(path: Path) -> np.ndarray:
        _, id_2 = split_pair_name(path.stem, keys, n_source_fields)
        img = read_rgb(path)
        mask = get_pose_mask(pose_labels[id_2], img.shape[:2], transposed=transposed)
        return img * mask[:, :, None].astype(np.uint8)

    return load


def compute_masked_inception_score(img_dir: str | os.PathLike, *, pose_file: str | os.PathLike = DEFAULT_POSE_FILE,
                                   pose_mask_transposed: bool = True, **kwargs) -> dict:
    """Masked IS: :func:`compute_inception_score` on images times their target pose mask.

    Every file name must resolve to a target id of ``pose_file``; this is checked for all files
    before any network runs. ``kwargs`` as for :func:`compute_inception_score` (except ``load_fn``).
    """
    poses = load_pose_labels(pose_file)
    for p in list_images(img_dir, IMAGE_EXTS):
        try:
            split_pair_name(p.stem, poses.keys(), MARKET_ID_FIELDS)
        except ValueError as e:
            raise ValueError(f'{p}: {e} (pose file {pose_file})') from e
    result = compute_inception_score(img_dir, load_fn=masked_image_loader(poses, pose_mask_transposed), **kwargs)
    result.update(pose_file=str(pose_file), pose_mask_transposed=pose_mask_transposed)
    return result
