"""LPIPS between generated images and their real targets, with the ``lpips`` package (v0.1, AlexNet).

Pairs: each generated ``<id_1>_<id_2>.<ext>`` against the real target image ``<real_dir>/<id_2>.<ext>``
(the id split is resolved against the real folder's ids). Both images RGB, scaled to [-1, 1]
(``x / 127.5 - 1``), same size (no resizing). The score is the mean over pairs.

(The module is not called ``lpips.py`` so that nobody confuses it with the pip package ``lpips``.)

Offline weights: the package builds its backbone with torchvision's ImageNet weights, which it
downloads. We build the LPIPS module with a random backbone, then load the torchvision ImageNet
weights of the backbone from a local file (torch hub cache or an explicit path), and the package's
own linear-layer weights (``lpips/weights/v<version>/<net>.pth``, shipped with the pip package) strictly.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from metrics.image_folder import (IMAGE_EXTS, apply_by_shape, existing_file, image_ids, list_images, read_rgb,
                                       split_pair_name)

# torchvision ImageNet weights of each LPIPS backbone (file name in the torch hub cache, URL).
BACKBONE_WEIGHTS = {
    'alex': ('alexnet', 'alexnet-owt-7be5be79.pth'),
    'vgg': ('vgg16', 'vgg16-397923af.pth'),
    'squeeze': ('squeezenet1_1', 'squeezenet1_1-b8a52dc0.pth'),
}
TORCHVISION_URL = 'https://download.pytorch.org/models/'
VERSIONS = ('0.0', '0.1')
INPUT_RANGES = ('[-1,1]',)


@dataclass(frozen=True)
class LPIPSSettings:
    """Which LPIPS.

    Attributes:
        net: backbone, ``'alex'`` (the reported standard), ``'vgg'`` or ``'squeeze'``.
        version: linear-layer weights ``'0.1'`` (default of the package and of the 2019 PerceptualSimilarity
            ``DistModel`` GFLA used) or ``'0.0'``.
        input_range: ``'[-1,1]'``: RGB ``float32(v) / 127.5 - 1`` (GFLA; CFLD's ``normalize=True`` on [0, 1] is
            the same mapping).
        batch_size: pairs per forward pass; matters only with ``drop_remainder``.
        drop_remainder: use only the first ``(N // b) · b`` pairs, ``b = min(batch_size, N)``, as GFLA's script.
    """
    net: str = 'alex'
    version: str = '0.1'
    input_range: str = '[-1,1]'
    batch_size: int = 64
    drop_remainder: bool = True

    def __post_init__(self) -> None:
        if self.net not in BACKBONE_WEIGHTS:
            raise ValueError(f'LPIPS net {self.net!r} is not one of {list(BACKBONE_WEIGHTS)}')
        if self.version not in VERSIONS:
            raise ValueError(f'LPIPS version {self.version!r} is not one of {list(VERSIONS)}')
        if self.input_range not in INPUT_RANGES:
            raise ValueError(f'LPIPS input_range {self.input_range!r} is not one of {list(INPUT_RANGES)}')
        if self.batch_size < 1:
            raise ValueError(f'LPIPS batch_size must be >= 1, got {self.batch_size}')


def find_backbone_weights(net: str, weights_path: str | os.PathLike | None = None) -> Path:
    """The torchvision ImageNet weights of the LPIPS backbone ``net``: ``weights_path`` or the hub cache."""
    if net not in BACKBONE_WEIGHTS:
        raise ValueError(f'unknown LPIPS network {net!r}; valid: {list(BACKBONE_WEIGHTS)}')
    file_name = BACKBONE_WEIGHTS[net][1]
    cached = Path(torch.hub.get_dir()) / 'checkpoints' / file_name
    how = (f'Download {TORCHVISION_URL}{file_name} and put it at {cached} (torch hub cache), or pass its '
           f'path with --backbone_weights.')
    return existing_file(weights_path if weights_path is not None else cached,
                         f'torchvision ImageNet weights of the LPIPS backbone ({file_name})', how)


def lpips_linear_weights(net: str, version: str) -> Path:
    """Path of the linear-layer weights shipped inside the ``lpips`` package."""
    import lpips

    path = Path(lpips.__file__).parent / 'weights' / f'v{version}' / f'{net}.pth'
    return existing_file(path, f'LPIPS linear-layer weights v{version}/{net}.pth',
                         'They ship with the pip package: pip install --force-reinstall lpips==0.1.4.')


def _load_backbone(model: nn.Module, net: str, weights_path: Path) -> None:
    """Copy torchvision ImageNet weights into the ``sliceK`` blocks of ``model.net``.

    The package's slices hold the torchvision ``features`` modules under their original index
    (``net.slice2.3`` is ``features.3``), so the mapping follows from the module names. The file is
    loaded strictly into a torchvision model first, which checks its format.
    """
    import torchvision

    arch = BACKBONE_WEIGHTS[net][0]
    tv_net = getattr(torchvision.models, arch)(weights=None)
    state_dict = torch.load(weights_path, map_location='cpu', weights_only=True)
    try:
        tv_net.load_state_dict(state_dict)
    except RuntimeError as e:
        raise ValueError(f'{weights_path} is not a torchvision {arch} state_dict: {e}') from e
    for slice_name, block in model.net.named_children():
        for index, module in block.named_children():
            module.load_state_dict(tv_net.features[int(index)].state_dict())


def build_lpips(net: str = 'alex', version: str = '0.1', backbone_weights: str | os.PathLike | None = None,
                lin_weights: str | os.PathLike | None = None, device: str | torch.device = 'cpu') -> nn.Module:
    """An ``lpips.LPIPS`` model (eval mode) with every weight loaded from local files.

    Args:
        net: ``'alex'`` (default, the standard for reporting), ``'vgg'`` or ``'squeeze'``.
        version: ``'0.1'`` (default) or ``'0.0'``.
        backbone_weights: torchvision ImageNet weights of the backbone (default: torch hub cache).
        lin_weights: linear-layer weights (default: the file shipped in the ``lpips`` package).
    """
    import lpips

    if version not in VERSIONS:
        raise ValueError(f'unknown LPIPS version {version!r}; valid: {list(VERSIONS)}')
    backbone_path = find_backbone_weights(net, backbone_weights)
    lin_path = (existing_file(lin_weights, 'LPIPS linear-layer weights', 'Check --lin_weights.')
                if lin_weights is not None else lpips_linear_weights(net, version))
    with warnings.catch_warnings():
        # The package still calls torchvision with the deprecated `pretrained=` argument.
        warnings.filterwarnings('ignore', category=UserWarning, module='torchvision')
        model = lpips.LPIPS(pretrained=False, net=net, version=version, pnet_rand=True, verbose=False)
    _load_backbone(model, net, backbone_path)
    lin_state = torch.load(lin_path, map_location='cpu', weights_only=True)
    expected = {f'lin{k}.model.1.weight' for k in range(len(model.lins))}
    if set(lin_state) != expected:
        raise ValueError(f'{lin_path}: expected LPIPS linear-layer keys {sorted(expected)}, got {sorted(lin_state)}')
    for k, lin in enumerate(model.lins):
        lin.model[-1].load_state_dict({'weight': lin_state[f'lin{k}.model.1.weight']})
    model.eval().requires_grad_(False)
    model.backbone_weights, model.lin_weights = backbone_path, lin_path
    return model.to(device)


def to_lpips_input(images: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """``uint8 [N, H, W, 3]`` -> ``float32 [N, 3, H, W]`` in [-1, 1] (the package's ``im2tensor`` scaling)."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    x = images.to(device).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1


@torch.no_grad()
def lpips_arrays(model: nn.Module, gen_uint8: torch.Tensor | np.ndarray, tgt_uint8: torch.Tensor | np.ndarray,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    """LPIPS distance per pair, ``float64 [N]`` (CPU).

    gen_uint8, tgt_uint8: ``uint8 [N, H, W, 3]``; mask: optional ``[N, 1, H, W]`` 0/1, multiplied into both images
    after the scaling to [-1, 1] (GFLA's mask-LPIPS: the masked-out area becomes 0, mid-grey).
    """
    device = next(model.parameters()).device
    x = to_lpips_input(gen_uint8, device)
    y = to_lpips_input(tgt_uint8, device)
    if x.shape != y.shape:
        raise ValueError(f'LPIPS needs images of equal size, got {tuple(x.shape)} and {tuple(y.shape)}')
    if mask is not None:
        m = mask.to(device=device, dtype=x.dtype)
        x, y = x * m, y * m
    return model(x, y).flatten().double().cpu()


def lpips_pairs(gen_dir: str | os.PathLike, real_dir: str | os.PathLike) -> list[tuple[Path, Path]]:
    """``(generated, real target)`` path pairs: ``<id_1>_<id_2>.<ext>`` with ``<real_dir>/<id_2>.<ext>``."""
    real = image_ids(list_images(real_dir, IMAGE_EXTS))
    return [(p, real[split_pair_name(p.stem, real.keys())[1]]) for p in list_images(gen_dir, IMAGE_EXTS)]


@torch.no_grad()
def lpips_distances(model: nn.Module, pairs: Sequence[tuple[Path, Path]], batch_size: int = 32) -> np.ndarray:
    """LPIPS distance of each pair, ``float64 [N]``."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        gen = [read_rgb(g) for g, _ in chunk]
        real = [read_rgb(r) for _, r in chunk]
        for (g_path, r_path), g, r in zip(chunk, gen, real):
            if g.shape != r.shape:
                raise ValueError(f'LPIPS needs images of equal size: {g_path} is {g.shape[:2]}, '
                                 f'{r_path} is {r.shape[:2]}')
        both = [np.concatenate([g, r], axis=2) for g, r in zip(gen, real)]  # group pairs by size

        def dist(x: np.ndarray) -> np.ndarray:
            d = model(to_lpips_input(x[..., :3], device), to_lpips_input(x[..., 3:], device))
            return d.flatten().double().cpu().numpy()

        out.append(apply_by_shape(dist, both))
    return np.concatenate(out)


def compute_lpips(gen_dir: str | os.PathLike, real_dir: str | os.PathLike, *, net: str = 'alex',
                  version: str = '0.1', backbone_weights: str | os.PathLike | None = None,
                  lin_weights: str | os.PathLike | None = None, device: str | torch.device = 'cpu',
                  batch_size: int = 32, model: nn.Module | None = None) -> dict:
    """Mean LPIPS of the generated images in ``gen_dir`` against their real targets in ``real_dir``.

    Returns:
        dict with ``lpips`` (mean), ``lpips_std``, ``n_pairs``, ``generated_dir``, ``real_dir``,
        ``network``, ``backbone_weights``, ``lin_weights``, ``protocol`` (one printable line).
    """
    from importlib.metadata import version as package_version

    pairs = lpips_pairs(gen_dir, real_dir)
    if model is None:
        model = build_lpips(net, version, backbone_weights, lin_weights, device)
    d = lpips_distances(model, pairs, batch_size)
    network = f"lpips {package_version('lpips')} v{version} {net}"
    result = {
        'lpips': float(d.mean()), 'lpips_std': float(d.std()), 'n_pairs': len(pairs),
        'generated_dir': str(gen_dir), 'real_dir': str(real_dir), 'network': network,
        'backbone_weights': str(getattr(model, 'backbone_weights', '')),
        'lin_weights': str(getattr(model, 'lin_weights', '')),
    }
    result['protocol'] = (f'LPIPS ({network}, generated={gen_dir} vs real targets <id_2> in {real_dir}, '
                          f'N={len(pairs)} pairs, RGB in [-1,1] at native size)')
    return result
