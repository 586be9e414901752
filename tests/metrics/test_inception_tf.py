"""The TensorFlow backend of the inception score (``--backend tf``), run for real on a small frozen graph.

The real ``classify_image_graph_def.pb`` cannot be downloaded in tests, so each test session writes a small graph
of its own with the same interface as the 2015 graph: the tensor names the backend uses (``ExpandDims:0`` as the
input it replaces, ``pool_3:0``, the weights feeding ``softmax/logits/MatMul``), the same preprocessing (TF1's
legacy bilinear resize, ``(x - 128) / 128``), the same 2015-era ops (``BatchNormWithGlobalNormalization``,
``Concat``; the batch-size-1 ``pool_3/_reshape`` the backend avoids) and random weights stored as constants, as in
a frozen graph. A numpy re-implementation of that graph gives the reference probabilities.

Why the torch backend is not compared with the same weights: it is torch-fidelity's fixed port of the full
Inception-v3 (94 convolutions, 2048 pool_3 features), whose state_dict cannot hold a small graph's weights, and a
full-size TF rebuild of the 2015 graph in the test would be a second port of the network written from our own
reading of it, not the graph itself. Each backend is therefore tested against its own reference: this module for
TF, ``test_inception_score.py::test_torch_backend_probs_are_unbiased_softmax`` for torch (softmax of pool_3 · W of
its random weights, rtol 1e-4).

TensorFlow (``pip install -r requirements-tf.txt``) is imported lazily, only by these tests (it takes seconds
and about 1 GB). Without it they skip, unless ``INTRINSIC_FLOW_REQUIRE_TF=1`` (set by CI), which makes the
missing TensorFlow an error so CI cannot pass without running them.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from tests.metrics.weights_helpers import MARKET_IDS, pair_stems, write_images
from metrics.inception_score import (TF_GRAPH_FILE, TF_GRAPH_SHA256, TF_GRAPH_URL, TFInceptionGraph,
                                     build_inception_classifier, compute_inception_score,
                                     compute_masked_inception_score)

REQUIRE_TF_ENV = 'INTRINSIC_FLOW_REQUIRE_TF'
RESIZE = 17  # the real graph resizes to 299; any size works for the interface
N_CLASSES = 12  # 1008 in the real graph
BN_EPSILON = 0.001
# The 2015 graph uses BatchNormWithGlobalNormalization, which GraphDef version 9 retired for newly written graphs
# (TensorFlow's image-recognition tutorial on this graph warns about it, tensorflow/tensorflow#2164); TensorFlow
# still runs the op in graphs of older versions, so the real graph predates 9 and the small one must too.
OLD_GRAPH_PRODUCER = 8
SEED = 3


@pytest.fixture(scope='module')
def tf():
    try:
        import tensorflow
    except ImportError as e:
        reason = f'TensorFlow is not installed ({e}); pip install -r requirements-tf.txt to run the --backend tf tests'
        if os.environ.get(REQUIRE_TF_ENV) == '1':
            pytest.fail(f'{REQUIRE_TF_ENV}=1 (CI) but {reason}', pytrace=False)
        pytest.skip(reason)
    return tensorflow


# ------------------------------------------------------------------------------------------------
# The small graph and its numpy twin
# ------------------------------------------------------------------------------------------------
CONV_LAYERS = {  # name: (kernel size, in channels, out channels)
    'conv': (3, 3, 6),
    'mixed/conv': (1, 6, 5),
    'mixed/tower_2/conv': (1, 6, 4),
}
POOL_3_CHANNELS = 5 + 4


def random_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """float32 weights under the names of the graph's constants (HWIO kernels, ``softmax/weights [C, K]``).

    Scaled so activations stay O(1) and the softmax is far from uniform (the images must be told apart);
    the bias is large so leaving it out visibly changes the probabilities.
    """
    rng = np.random.default_rng(seed)
    weights = {}
    for name, (k, c_in, c_out) in CONV_LAYERS.items():
        weights[f'{name}/conv2d_params'] = rng.normal(scale=(2 / (k * k * c_in)) ** 0.5, size=(k, k, c_in, c_out))
        weights[f'{name}/batchnorm/moving_mean'] = rng.normal(scale=0.1, size=c_out)
        weights[f'{name}/batchnorm/moving_variance'] = rng.uniform(0.5, 1.5, size=c_out)
        weights[f'{name}/batchnorm/gamma'] = rng.uniform(0.5, 1.5, size=c_out)
        weights[f'{name}/batchnorm/beta'] = rng.normal(scale=0.1, size=c_out)
    weights['softmax/weights'] = rng.normal(scale=4.0, size=(POOL_3_CHANNELS, N_CLASSES))
    weights['softmax/biases'] = rng.normal(scale=3.0, size=N_CLASSES)
    return {name: w.astype(np.float32) for name, w in weights.items()}


def build_graph_def(tf, weights: dict[str, np.ndarray]):
    """The small graph as a ``GraphDef`` with its weights as constants (i.e. frozen).

    Nodes are written one by one because the Python API refuses to create ``BatchNormWithGlobalNormalization``
    in a new graph. ``Cast`` stands in for the real graph's JPEG decoder; the backend feeds ``ExpandDims:0``.
    """
    v1 = tf.compat.v1
    graph_def = v1.GraphDef()
    graph_def.versions.producer = OLD_GRAPH_PRODUCER
    float_type = v1.AttrValue(type=tf.float32.as_datatype_enum)

    def node(name, op, inputs=(), **attrs):
        n = graph_def.node.add(name=name, op=op)
        n.input.extend(inputs)
        for key, value in attrs.items():
            n.attr[key].CopyFrom(value)
        return name

    def const(name, value, dtype=np.float32):
        tensor = tf.make_tensor_proto(np.asarray(value, dtype=dtype))
        return node(name, 'Const', dtype=v1.AttrValue(type=tensor.dtype), value=v1.AttrValue(tensor=tensor))

    def ints(*values):
        return v1.AttrValue(list=v1.AttrValue.ListValue(i=values))

    def conv_block(name, x, stride, padding):
        conv = node(f'{name}/Conv2D', 'Conv2D', [x, const(f'{name}/conv2d_params', weights[f'{name}/conv2d_params'])],
                    T=float_type, strides=ints(1, stride, stride, 1), padding=v1.AttrValue(s=padding))
        stats = [const(f'{name}/batchnorm/{p}', weights[f'{name}/batchnorm/{p}'])
                 for p in ('moving_mean', 'moving_variance', 'beta', 'gamma')]
        bn = node(f'{name}/batchnorm', 'BatchNormWithGlobalNormalization', [conv, *stats], T=float_type,
                  variance_epsilon=v1.AttrValue(f=BN_EPSILON), scale_after_normalization=v1.AttrValue(b=True))
        return node(name, 'Relu', [bn], T=float_type)

    def pool(name, op, x, size, stride, padding):
        return node(name, op, [x], T=float_type, ksize=ints(1, size, size, 1), strides=ints(1, stride, stride, 1),
                    padding=v1.AttrValue(s=padding))

    image = node('Cast', 'Placeholder', dtype=float_type,
                 shape=v1.AttrValue(shape=tf.TensorShape([None, None, 3]).as_proto()))
    x = node('ExpandDims', 'ExpandDims', [image, const('ExpandDims/dim', 0, np.int32)], T=float_type,
             Tdim=v1.AttrValue(type=tf.int32.as_datatype_enum))
    x = node('ResizeBilinear', 'ResizeBilinear', [x, const('ResizeBilinear/size', [RESIZE, RESIZE], np.int32)],
             T=float_type, align_corners=v1.AttrValue(b=False), half_pixel_centers=v1.AttrValue(b=False))
    x = node('Sub', 'Sub', [x, const('Sub/y', 128.0)], T=float_type)
    x = node('Mul', 'Mul', [x, const('Mul/y', 1 / 128)], T=float_type)
    x = conv_block('conv', x, 2, b'VALID')
    x = pool('pool', 'MaxPool', x, 3, 2, b'VALID')
    tower_0 = conv_block('mixed/conv', x, 1, b'SAME')
    tower_2 = conv_block('mixed/tower_2/conv', pool('mixed/tower_2/pool', 'AvgPool', x, 3, 1, b'SAME'), 1, b'SAME')
    x = node('mixed/join', 'Concat', [const('mixed/join/concat_dim', 3, np.int32), tower_0, tower_2],
             T=float_type, N=v1.AttrValue(i=2))
    size = (((RESIZE - 3) // 2 + 1) - 3) // 2 + 1
    x = pool('pool_3', 'AvgPool', x, size, 1, b'VALID')
    x = node('pool_3/_reshape', 'Reshape', [x, const('pool_3/_reshape/shape', [1, POOL_3_CHANNELS], np.int32)],
             T=float_type, Tshape=v1.AttrValue(type=tf.int32.as_datatype_enum))
    x = node('softmax/logits/MatMul', 'MatMul', [x, const('softmax/weights', weights['softmax/weights'])],
             T=float_type)
    x = node('softmax/logits', 'Add', [x, const('softmax/biases', weights['softmax/biases'])], T=float_type)
    node('softmax', 'Softmax', [x], T=float_type)
    return graph_def


def legacy_resize_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """TF1 ``ResizeBilinear`` without ``align_corners`` and half-pixel centres: output pixel ``i`` samples the
    input at ``i * in_size / size``. ``image``: ``[H, W, C]``; returns float64 ``[size, size, C]``."""
    h, w = image.shape[:2]
    ys, xs = np.arange(size) * (h / size), np.arange(size) * (w / size)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    dy, dx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    img = image.astype(np.float64)
    top = img[y0][:, x0] * (1 - dx) + img[y0][:, x1] * dx
    bottom = img[y1][:, x0] * (1 - dx) + img[y1][:, x1] * dx
    return top * (1 - dy) + bottom * dy


def reference_probs(weights: dict[str, np.ndarray], images: list[np.ndarray], bias: bool = False) -> np.ndarray:
    """The small graph in float64 numpy: uint8 ``[H, W, 3]`` images (any sizes) -> probabilities ``[N, K]``.

    ``bias=True`` adds ``softmax/biases`` as the graph's own ``softmax`` node does (the IS protocol does not).
    """
    w = {name: v.astype(np.float64) for name, v in weights.items()}
    x = np.stack([legacy_resize_bilinear(img, RESIZE) for img in images])
    x = (x - 128) / 128

    def conv_block(name, x, stride):
        kernel = w[f'{name}/conv2d_params']
        k = kernel.shape[0]
        if k > 1:  # VALID
            patches = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]
            y = np.einsum('nhwcij,ijco->nhwo', patches, kernel)
        else:
            y = x @ kernel[0, 0]
        bn = f'{name}/batchnorm/'
        y = (y - w[bn + 'moving_mean']) / np.sqrt(w[bn + 'moving_variance'] + BN_EPSILON) * w[bn + 'gamma']
        return np.maximum(y + w[bn + 'beta'], 0)

    def avg_pool_same_3x3(x):
        # TF leaves the padding out of the average: divide by the number of real pixels under the window.
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        counts = np.pad(np.ones(x.shape[1:3]), 1)
        sums = sliding_window_view(padded, (3, 3), axis=(1, 2)).sum(axis=(-2, -1))
        return sums / sliding_window_view(counts, (3, 3)).sum(axis=(-2, -1))[None, :, :, None]

    x = conv_block('conv', x, 2)
    x = sliding_window_view(x, (3, 3), axis=(1, 2))[:, ::2, ::2].max(axis=(-2, -1))
    x = np.concatenate([conv_block('mixed/conv', x, 1), conv_block('mixed/tower_2/conv', avg_pool_same_3x3(x), 1)],
                       axis=-1)
    logits = x.mean(axis=(1, 2)) @ w['softmax/weights'] + (w['softmax/biases'] if bias else 0)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def inception_score_formula(probs: np.ndarray, n_splits: int = 10) -> tuple[float, float, list[float]]:
    """``exp(E_x KL(p(y|x) || p(y)))`` per contiguous split ``[i*n//10, (i+1)*n//10)``; mean, population std."""
    n = len(probs)
    scores = []
    for i in range(n_splits):
        part = probs[i * n // n_splits:(i + 1) * n // n_splits]
        kl = (part * (np.log(part) - np.log(part.mean(axis=0)))).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores)), scores


@dataclass
class SmallGraph:
    folder: Path
    sha256: str
    weights: dict[str, np.ndarray]


@pytest.fixture(scope='module')
def small_graph(tf, tmp_path_factory) -> SmallGraph:
    weights = random_weights()
    folder = tmp_path_factory.mktemp('tf_graph')
    data = build_graph_def(tf, weights).SerializeToString()
    (folder / TF_GRAPH_FILE).write_bytes(data)
    return SmallGraph(folder, hashlib.sha256(data).hexdigest(), weights)


@pytest.fixture(scope='module')
def classifier(small_graph) -> TFInceptionGraph:
    return TFInceptionGraph(small_graph.folder, small_graph.sha256)


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert('RGB'))


def write_mixed_size_folder(folder: Path, stems: list[str]) -> list[Path]:
    """PNGs (lossless) of three sizes, the last size held by a single image so one forward pass has a batch of
    one; sizes are not multiples of the resize target, so no sample falls exactly on a pixel boundary."""
    sizes = [(24, 16)] * (len(stems) - 3) + [(9, 13), (9, 13), (30, 22)]
    paths = []
    for i, (stem, size) in enumerate(zip(stems, sizes)):
        paths += write_images(folder, [stem], size=size, ext='png', seed=i)
    return paths


def shuffled(paths: list[Path], seed: int) -> list[Path]:
    """The original's order: file names sorted, then ``np.random.shuffle`` with ``RandomState(seed)``."""
    ordered = sorted(paths)
    return [ordered[i] for i in np.random.RandomState(seed).permutation(len(ordered))]


# ------------------------------------------------------------------------------------------------
# Probabilities
# ------------------------------------------------------------------------------------------------
def test_tf_probs_match_numpy_graph(small_graph, classifier):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(4, 23, 15, 3), dtype=np.uint8)
    probs = classifier(images)
    ref = reference_probs(small_graph.weights, list(images))
    assert probs.shape == (4, N_CLASSES) and probs.dtype == np.float64
    np.testing.assert_allclose(probs, ref, rtol=1e-4, atol=1e-7)
    # A batch of one image (the graph's own pool_3/_reshape would break for N > 1, the backend must not).
    np.testing.assert_allclose(classifier(images[2:3]), ref[2:3], rtol=1e-4, atol=1e-7)
    # The random network tells images apart, and the left-out bias of the logits layer matters.
    assert np.abs(ref[0] - ref[1]).max() > 0.05
    assert np.abs(reference_probs(small_graph.weights, list(images), bias=True) - ref).max() > 0.05


def test_small_graph_uses_the_2015_ops(tf, small_graph):
    """The graph the other tests run holds the 2015 ops, in an old-version GraphDef like the real one."""
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString((small_graph.folder / TF_GRAPH_FILE).read_bytes())
    ops = {n.op for n in graph_def.node}
    assert {'BatchNormWithGlobalNormalization', 'Concat', 'ResizeBilinear'} <= ops
    assert graph_def.versions.producer < 9


# ------------------------------------------------------------------------------------------------
# IS and masked IS end to end
# ------------------------------------------------------------------------------------------------
def test_tf_inception_score_matches_formula_on_numpy_probs(small_graph, tmp_path):
    # 23 images in batches of 10: a last partial batch of 3, splits of 2 and 3 images.
    paths = write_mixed_size_folder(tmp_path / 'gen', [f'img_{i:02d}' for i in range(23)])
    got = compute_inception_score(tmp_path / 'gen', backend='tf', tf_graph_dir=small_graph.folder,
                                  tf_graph_sha256=small_graph.sha256, seed=SEED, batch_size=10)
    ref_probs = reference_probs(small_graph.weights, [read_png(p) for p in shuffled(paths, SEED)])
    mean, std, splits = inception_score_formula(ref_probs)
    assert got['n_images'] == 23
    assert abs(got['inception_score'] - mean) <= 1e-5
    assert abs(got['inception_score_std'] - std) <= 1e-5
    np.testing.assert_allclose(got['split_scores'], splits, rtol=0, atol=1e-5)
    # The order matters for these probabilities, so the shuffle and the splits are what was checked.
    unshuffled = inception_score_formula(reference_probs(small_graph.weights, [read_png(p) for p in sorted(paths)]))
    assert abs(unshuffled[0] - mean) > 1e-3 and std > 1e-3
    assert got['network'].startswith('TensorFlow ') and got['weights'] == str(small_graph.folder / TF_GRAPH_FILE)


def market_poses(size: tuple[int, int], seed: int = 0) -> dict[str, list]:
    """Random 18-joint poses inside an image of ``size`` (x is the row in the original's transposed mask)."""
    rng = np.random.default_rng(seed)
    poses = {}
    for key in MARKET_IDS:
        kps = np.stack([rng.uniform(2, size[0] - 2, 18), rng.uniform(2, size[1] - 2, 18)], axis=1)
        kps[rng.random(18) < 0.2] = -1
        poses[key] = kps.tolist()
    return poses


def test_tf_masked_inception_score_matches_formula_on_numpy_probs(small_graph, tmp_path):
    from util.io import save_pickle
    from util.pose_util import get_pose_mask

    poses = market_poses((20, 16))
    save_pickle(poses, tmp_path / 'pose_label.pkl')
    stems = pair_stems(MARKET_IDS, 21)
    sizes = [(24, 16)] * 20 + [(20, 18)]
    paths = [write_images(tmp_path / 'gen', [stem], size=size, ext='png', seed=i)[0]
             for i, (stem, size) in enumerate(zip(stems, sizes))]
    got = compute_masked_inception_score(tmp_path / 'gen', pose_file=tmp_path / 'pose_label.pkl', backend='tf',
                                         tf_graph_dir=small_graph.folder, tf_graph_sha256=small_graph.sha256,
                                         seed=SEED, batch_size=10)
    masked, coverage = [], []
    for path in shuffled(paths, SEED):
        target = path.stem[len(MARKET_IDS[0]) + 1:]  # <id_1>_<id_2>; all Market ids have the same length
        img = read_png(path)
        mask = get_pose_mask(np.asarray(poses[target], dtype=np.float64), img.shape[:2], transposed=True)
        masked.append(img * mask[:, :, None].astype(np.uint8))
        coverage.append(mask.mean())
    mean, std, splits = inception_score_formula(reference_probs(small_graph.weights, masked))
    assert got['n_images'] == 21 and got['pose_mask_transposed'] is True
    assert 0.1 < np.mean(coverage) < 0.9
    assert abs(got['inception_score'] - mean) <= 1e-5
    assert abs(got['inception_score_std'] - std) <= 1e-5
    np.testing.assert_allclose(got['split_scores'], splits, rtol=0, atol=1e-5)
    unmasked = inception_score_formula(reference_probs(small_graph.weights, [read_png(p)
                                                                           for p in shuffled(paths, SEED)]))
    assert abs(unmasked[0] - mean) > 1e-3  # the masks changed the score


def test_tf_backend_from_the_command_line(small_graph, tmp_path, capsys, monkeypatch):
    scripts = Path(__file__).resolve().parents[2] / 'scripts'
    monkeypatch.syspath_prepend(str(scripts))  # for the script's `import _path`
    spec = importlib.util.spec_from_file_location('inception_score_script', scripts / 'inception_score.py')
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    write_mixed_size_folder(tmp_path / 'gen', [f'img_{i:02d}' for i in range(12)])
    result = script.main([str(tmp_path / 'gen'), '-1', '--backend', 'tf', '--tf_graph_dir', str(small_graph.folder),
                          '--tf_graph_sha256', small_graph.sha256, '--seed', str(SEED), '--batch_size', '5'])
    direct = compute_inception_score(tmp_path / 'gen', backend='tf', tf_graph_dir=small_graph.folder,
                                     tf_graph_sha256=small_graph.sha256, seed=SEED)
    assert result['inception_score'] == pytest.approx(direct['inception_score'], abs=1e-6)
    assert f"[Inception Score] inception_score: {direct['inception_score']:.3f}" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# The graph file
# ------------------------------------------------------------------------------------------------
def test_missing_graph_names_file_url_and_folder(tf, tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        TFInceptionGraph(tmp_path / 'imagenet')
    message = str(e.value)
    assert TF_GRAPH_FILE in message and TF_GRAPH_URL in message and str(tmp_path / 'imagenet') in message
    assert '--tf_graph_dir' in message


def test_graph_hash_is_checked(small_graph):
    # By default only the published graph is accepted: the small graph is rejected, naming both hashes.
    graph_file = small_graph.folder / TF_GRAPH_FILE
    with pytest.raises(ValueError) as e:
        TFInceptionGraph(small_graph.folder)
    message = str(e.value)
    assert str(graph_file) in message and TF_GRAPH_SHA256 in message and small_graph.sha256 in message
    with pytest.raises(ValueError, match=f'--tf_graph_sha256 {small_graph.sha256}'):
        build_inception_classifier('tf', tf_graph_dir=small_graph.folder, tf_graph_sha256='0' * 64)
    # A damaged copy (here: cut short, as by an interrupted download) is rejected before TensorFlow parses it.
    truncated = small_graph.folder.parent / 'truncated'
    truncated.mkdir(exist_ok=True)
    (truncated / TF_GRAPH_FILE).write_bytes(graph_file.read_bytes()[:-100])
    with pytest.raises(ValueError, match='does not match'):
        TFInceptionGraph(truncated, small_graph.sha256)
    assert TFInceptionGraph(small_graph.folder, small_graph.sha256.upper()).sha256 == small_graph.sha256
