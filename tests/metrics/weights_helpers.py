"""Random-weight files in the formats of the real pretrained networks, and small image folders, for the
metric and script tests. Files are created once per test session (module-level cache) so the metric
tests and the script tests share them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

# Market-1501 ids have four `_` fields, DeepFashion ids one `_`.
MARKET_IDS = ['0002_c1s1_000451_03', '0002_c2s1_000301_01', '0007_c2s3_070952_01', '0010_c6s4_002427_02',
              '0011_c3s1_000926_01', '0012_c5s3_060687_04']
DF_IDS = ['fashionWOMENDressesid0000262902_1front', 'fashionWOMENDressesid0000262902_2side',
          'fashionMENTees_Tanksid0000053001_1front', 'fashionMENTees_Tanksid0000053001_7additional',
          'fashionWOMENBlouses_Shirtsid0000641904_3back', 'fashionWOMENBlouses_Shirtsid0000641904_4full']

_CACHE: dict[str, Path] = {}


def _cached(tmp_path_factory, name: str, make) -> Path:
    if name not in _CACHE or not _CACHE[name].is_file():
        path = tmp_path_factory.mktemp('weights') / name
        make(path)
        _CACHE[name] = path
    return _CACHE[name]


def kaiming_(model: nn.Module, fc_std: float = 0.05, seed: int = 0) -> nn.Module:
    """Random weights that keep activations O(1) through deep nets (the default init shrinks them to ~0,
    which would make every prediction the same)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * fc_std)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * fc_std)
    return model


def fidelity_inception_weights(tmp_path_factory) -> Path:
    """A random state_dict of torch-fidelity's FeatureExtractorInceptionV3 (format of
    weights-inception-2015-12-05-6726825d.pth)."""
    def make(path: Path) -> None:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        class RandomInception(FeatureExtractorInceptionV3):
            def load_state_dict(self, *args, **kwargs):  # keep the random init
                return None

        empty = path.with_name('empty.pth')
        torch.save({}, empty)
        net = kaiming_(RandomInception('random', ['2048'], feature_extractor_weights_path=str(empty)))
        torch.save(net.state_dict(), path)

    return _cached(tmp_path_factory, 'weights-inception-2015-12-05-6726825d.pth', make)


def alexnet_weights(tmp_path_factory) -> Path:
    """A random torchvision AlexNet state_dict (format of alexnet-owt-7be5be79.pth)."""
    def make(path: Path) -> None:
        import torchvision
        torch.save(kaiming_(torchvision.models.alexnet(weights=None), seed=1).state_dict(), path)

    return _cached(tmp_path_factory, 'alexnet-owt-7be5be79.pth', make)


def torchvision_inception_weights(tmp_path_factory, legacy: bool = False) -> Path:
    """A random torchvision Inception-v3 ImageNet state_dict (format of inception_v3_google-0cc3c7bd.pth; with
    ``legacy`` as the older inception_v3_google-1a9a5a14.pth: no ``num_batches_tracked``, legacy pickle)."""
    def make(path: Path) -> None:
        import torchvision
        net = torchvision.models.Inception3(num_classes=1000, aux_logits=True, init_weights=False)
        state = kaiming_(net, seed=3).state_dict()
        if legacy:
            state = {k: v for k, v in state.items() if not k.endswith('num_batches_tracked')}
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)

    name = 'inception_v3_google-1a9a5a14.pth' if legacy else 'inception_v3_google-0cc3c7bd.pth'
    return _cached(tmp_path_factory, name, make)


def classifier_weights(tmp_path_factory, kind: str) -> Path:
    """A random released-format classifier checkpoint: torchvision keys, no ``num_batches_tracked``
    (PyTorch 0.4.0), as ``best.pth``."""
    def make(path: Path) -> None:
        from metrics.fashion_classifiers import build_classifier
        state = kaiming_(build_classifier(kind), seed=2).state_dict()
        torch.save({k: v for k, v in state.items() if not k.endswith('num_batches_tracked')}, path)

    return _cached(tmp_path_factory, f'{kind}_best.pth', make)


def imagenet_resnet50_weights(tmp_path_factory) -> Path:
    """A random torchvision ResNet-50 ImageNet-format state_dict (format of resnet50-0676ba61.pth)."""
    def make(path: Path) -> None:
        import torchvision
        torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)

    return _cached(tmp_path_factory, 'resnet50-0676ba61.pth', make)


def write_images(folder: Path, stems: list[str], size: tuple[int, int] = (64, 32), ext: str = 'jpg',
                 seed: int = 0) -> list[Path]:
    """Random RGB images ``<stem>.<ext>`` of ``size`` (H, W) with some structure (JPEG-friendly)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for stem in stems:
        h, w = size
        base = rng.integers(0, 256, size=(h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8)
        img = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))[:h, :w]
        noise = rng.integers(0, 40, size=img.shape, dtype=np.uint8)
        path = folder / f'{stem}.{ext}'
        Image.fromarray(np.clip(img.astype(np.int32) + noise, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def pair_stems(ids: list[str], n: int) -> list[str]:
    """The first ``n`` generated-image stems ``<id_1>_<id_2>`` over ordered pairs of distinct ids."""
    stems = [f'{a}_{b}' for a in ids for b in ids if a != b]
    assert n <= len(stems)
    return stems[:n]
