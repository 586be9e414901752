"""Training losses of the flow regression and pose transfer models.

Flow losses take flows in pixels (``[N, 2, H, W]``, channel 0 = x) and masks ``[N, 1, H, W]`` with
values in {0, 1}. Image losses take images ``[N, 3, H, W]`` in ``[-1, 1]``. Every loss returns a
float32 scalar tensor on the input's device.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from util.flow_util import DIV_FLOW, warp_acc_flow


VGG19_WEIGHTS_FILE = 'vgg19-dcbb9e9d.pth'
VGG19_WEIGHTS_URL = f'https://download.pytorch.org/models/{VGG19_WEIGHTS_FILE}'
# torchvision's VGG19 'features' layout ('E' configuration): conv widths, 'M' = 2x2 max-pool.
_VGG19_CFG: tuple[int | str, ...] = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M',
                                     512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M')
# Index ranges of `features` ending at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
VGG_SLICES: tuple[tuple[int, int], ...] = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))
# Style-loss shifts (pixels) per VGG layer, for the shifted Gram matrices.
VGG_STYLE_SHIFTS: tuple[tuple[int, ...], ...] = ((0, 2, 4, 8, 16), (0, 2, 4, 8), (0, 2, 4), (0, 2), (0,))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------------------------
# Flow criteria
# ---------------------------------------------------------------------------------------------

def _check_flow_args(name: str, input: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
    if input.dim() != 4 or input.shape != target.shape:
        raise ValueError(f'{name}: input and target must both be [N, C, H, W] of the same shape, got '
                         f'{tuple(input.shape)} and {tuple(target.shape)}')
    n, _, h, w = input.shape
    if mask.shape != (n, 1, h, w):
        raise ValueError(f'{name}: mask must be [N, 1, H, W] = {(n, 1, h, w)}, got {tuple(mask.shape)}')


def _per_sample_masked_mean(err: torch.Tensor, mask: torch.Tensor, channels_in_count: int) -> torch.Tensor:
    """Sum over samples of ``Σ_p err·mask / (m_b·B·channels_in_count + 1e-8)`` (the original's normalisation).

    err: ``[N, K, H, W]``; mask: ``[N, 1, H, W]``. The batch size sits inside the per-sample
    denominator (so the result is a per-sample mean averaged over the batch), and 1e-8 is added
    after the multiplication, exactly as the original normalises.
    """
    b = err.size(0)
    count = mask.reshape(b, -1).sum(dim=1)
    total = (err * mask).reshape(b, -1).sum(dim=1)
    return (total / (count * b * channels_in_count + 1e-8)).sum()


class EPE(nn.Module):
    """Masked end-point error: mean over mask pixels of ``‖target − input‖₂``, averaged over the batch.

    forward(input [N, 2, H, W], target [N, 2, H, W], mask [N, 1, H, W] in {0, 1}) -> scalar.
    A sample with an empty mask contributes 0.
    """

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _check_flow_args('EPE', input, target, mask)
        err = torch.linalg.vector_norm(target - input, ord=2, dim=1, keepdim=True)
        return _per_sample_masked_mean(err, mask, channels_in_count=1)


class L2(EPE):
    """Masked L2 flow criterion; the same formula as :class:`EPE`, as in the original."""


class L1(nn.Module):
    """Masked L1 flow criterion: ``Σ_b Σ_p Σ_c |target − input|·mask / (m_b·B·2 + 1e-8)``.

    forward(input [N, 2, H, W], target [N, 2, H, W], mask [N, 1, H, W]) -> scalar.
    """

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _check_flow_args('L1', input, target, mask)
        err = (target - input).abs()
        return _per_sample_masked_mean(err, mask, channels_in_count=2)


FLOW_CRITERIA: dict[str, type[nn.Module]] = {'l1': L1, 'l2': L2}


class MultiScaleFlowLoss(nn.Module):
    """Weighted flow loss over the flow pyramid.

    Level ``k`` (finest first) of the pyramid is compared with ``AvgPool_{s·2^k}(0.05·flow_tar)``
    under the mask ``MaxPool_{s·2^k}(mask_tar)`` (kernel = stride = ``s·2^k``), weighted by
    ``l_weight / 2^k``. Pyramid levels therefore predict full-resolution pixel flow / 20.

    Args:
        start_scale: downsampling factor ``s`` of the finest pyramid level (2).
        num_scale: number of pyramid levels the network produces.
        l_weight: weight of the finest level (0.32).
        loss_type: ``'l1'`` or ``'l2'`` (per-level criterion, :class:`L1` or :class:`L2`).
    """

    def __init__(self, start_scale: int = 2, num_scale: int = 5, l_weight: float = 0.32,
                 loss_type: str = 'l2') -> None:
        super().__init__()
        if loss_type not in FLOW_CRITERIA:
            raise ValueError(f'MultiScaleFlowLoss: unknown loss_type {loss_type!r}; '
                             f'valid: {sorted(FLOW_CRITERIA)}')
        if start_scale < 1 or num_scale < 1:
            raise ValueError(f'MultiScaleFlowLoss: start_scale ({start_scale}) and num_scale ({num_scale}) '
                             f'must be positive')
        self.start_scale = start_scale
        self.num_scale = num_scale
        self.loss_type = loss_type
        self.criterion = FLOW_CRITERIA[loss_type]()
        self.pool_sizes = [start_scale * 2 ** k for k in range(num_scale)]
        self.weights = [l_weight / 2 ** k for k in range(num_scale)]

    def forward(self, pyramid: Sequence[torch.Tensor], flow_tar: torch.Tensor,
                mask_tar: torch.Tensor) -> torch.Tensor:
        """pyramid: list of ``[N, 2, H/(s·2^k), W/(s·2^k)]`` (finest first, flow/20);
        flow_tar: ``[N, 2, H, W]`` pixels; mask_tar: ``[N, 1, H, W]`` in {0, 1}. Returns a scalar."""
        if len(pyramid) != self.num_scale:
            raise ValueError(f'MultiScaleFlowLoss: got a pyramid of {len(pyramid)} levels but the loss was '
                             f'built with num_scale={self.num_scale}; build it with the network\'s num_scale')
        loss = flow_tar.new_zeros(())
        for k, (pred, size, weight) in enumerate(zip(pyramid, self.pool_sizes, self.weights)):
            target = F.avg_pool2d(flow_tar * DIV_FLOW, kernel_size=size, stride=size)
            mask = F.max_pool2d(mask_tar, kernel_size=size, stride=size)
            if pred.shape != target.shape:
                raise ValueError(f'MultiScaleFlowLoss: pyramid level {k} has shape {tuple(pred.shape)} but the '
                                 f'target pooled by {size} from flow_tar {tuple(flow_tar.shape)} has shape '
                                 f'{tuple(target.shape)}; check start_scale ({self.start_scale}) and the '
                                 f'image size')
            loss = loss + weight * self.criterion(pred, target, mask)
        return loss


class SS_FlowLoss(nn.Module):
    """Segmentation-sensitive flow loss.

    Penalises, at visible target pixels (``vis_tar == 0``), the flow error where the predicted flow
    carries a body part of ``seg_2`` to a source position outside the same part of ``seg_1``.
    The penalty mask is computed without gradient; the gradient flows into ``flow_out`` only.

    forward(flow_out [N, 2, H, W] pixels, flow_tar [N, 2, H, W] pixels, seg_1 [N, C, H, W] one-hot
    (channel 0 = background), seg_2 [N, C, H, W], vis_tar [N, 1, H, W] labels 0/1/2) -> scalar.
    """

    def __init__(self, loss_type: str = 'l1') -> None:
        super().__init__()
        if loss_type not in ('l1', 'l2'):
            raise ValueError(f"SS_FlowLoss: unknown loss_type {loss_type!r}; valid: ['l1', 'l2']")
        self.loss_type = loss_type

    @staticmethod
    def penalty_mask(flow_out: torch.Tensor, seg_1: torch.Tensor, seg_2: torch.Tensor,
                     vis_tar: torch.Tensor) -> torch.Tensor:
        """``[N, 1, H, W]`` float mask of the pixels the loss penalises (no gradient)."""
        with torch.no_grad():
            # Background (channel 0) is dropped: only body parts must land on the same part.
            seg_1_warped = warp_acc_flow(seg_1[:, 1:], flow_out.detach())
            landed = (seg_1_warped > 0).to(flow_out.dtype)
            mask = (seg_2[:, 1:] * (1 - landed)).sum(dim=1, keepdim=True)
            return mask * (vis_tar == 0).to(flow_out.dtype)

    def forward(self, flow_out: torch.Tensor, flow_tar: torch.Tensor, seg_1: torch.Tensor,
                seg_2: torch.Tensor, vis_tar: torch.Tensor) -> torch.Tensor:
        n, _, h, w = flow_out.shape
        if flow_tar.shape != flow_out.shape or seg_1.shape != seg_2.shape or seg_1.shape[2:] != (h, w) \
                or vis_tar.shape != (n, 1, h, w):
            raise ValueError(f'SS_FlowLoss: expected flow_out/flow_tar [N,2,H,W], seg_1/seg_2 [N,C,H,W], '
                             f'vis_tar [N,1,H,W]; got {tuple(flow_out.shape)}, {tuple(flow_tar.shape)}, '
                             f'{tuple(seg_1.shape)}, {tuple(seg_2.shape)}, {tuple(vis_tar.shape)}')
        mask = self.penalty_mask(flow_out, seg_1, seg_2, vis_tar)
        err = DIV_FLOW * (flow_out - flow_tar) * mask
        if self.loss_type == 'l1':
            return err.abs().mean()
        return torch.linalg.vector_norm(err, ord=2, dim=1).mean()


def visibility_loss(logits: torch.Tensor, vis_tar: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over all pixels.

    logits: ``[N, 3, H, W]`` visibility logits; vis_tar: ``[N, 1, H, W]`` float labels 0/1/2
    (0 = visible, 1 = invisible, 2 = background). Returns a scalar.
    """
    if logits.dim() != 4 or vis_tar.shape != (logits.size(0), 1, *logits.shape[2:]):
        raise ValueError(f'visibility_loss: expected logits [N, 3, H, W] and vis_tar [N, 1, H, W], got '
                         f'{tuple(logits.shape)} and {tuple(vis_tar.shape)}')
    return F.cross_entropy(logits, vis_tar[:, 0].long())


# ---------------------------------------------------------------------------------------------
# GAN loss
# ---------------------------------------------------------------------------------------------

class GANLoss(nn.Module):
    """Adversarial loss against constant targets (1 = real, 0 = fake), mean over all patch outputs.

    use_lsgan=False (``gan_type='dcgan'``): binary cross-entropy on probabilities (the discriminator
    ends with a sigmoid); use_lsgan=True: mean squared error on raw outputs.
    forward(prediction [N, 1, h, w], target_is_real: bool) -> scalar.
    """

    def __init__(self, use_lsgan: bool) -> None:
        super().__init__()
        self.use_lsgan = use_lsgan

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        if self.use_lsgan:
            return F.mse_loss(prediction, target)
        return F.binary_cross_entropy(prediction, target)


# ---------------------------------------------------------------------------------------------
# VGG perceptual loss
# ---------------------------------------------------------------------------------------------

def _build_vgg19_features() -> nn.Sequential:
    """VGG19 ``features`` with torchvision's module indices (conv, in-place ReLU, 2x2 max-pool)."""
    layers: list[nn.Module] = []
    in_ch = 3
    for v in _VGG19_CFG:
        if v == 'M':
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_ch = v
    return nn.Sequential(*layers)


def _freeze(features: nn.Sequential) -> nn.Sequential:
    for p in features.parameters():
        p.requires_grad_(False)
    return features.eval()


def vgg19_weights_search_paths(weights_path: str | Path | None = None) -> list[Path]:
    """Where :func:`load_vgg19_features` looks for the weights, in order."""
    if weights_path is not None:
        return [Path(weights_path)]
    return [Path(torch.hub.get_dir()) / 'checkpoints' / VGG19_WEIGHTS_FILE]


def load_vgg19_features(weights_path: str | Path | None = None) -> nn.Sequential:
    """Frozen, eval-mode ImageNet VGG19 ``features`` (torchvision ``vgg19-dcbb9e9d.pth``).

    Looks at ``weights_path`` if given, else at torchvision's cache
    ``<torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth``. Never downloads.

    Raises:
        FileNotFoundError: no weights file; the message lists the paths searched and how to get it.
        ValueError: the file is not a torchvision VGG19 state_dict.
    """
    candidates = vgg19_weights_search_paths(weights_path)
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        searched = ', '.join(str(p) for p in candidates)
        raise FileNotFoundError(
            f'VGG19 ImageNet weights {VGG19_WEIGHTS_FILE} not found (searched: {searched}). Download '
            f'{VGG19_WEIGHTS_URL} on a machine with internet access and copy it to '
            f'{Path(torch.hub.get_dir()) / "checkpoints" / VGG19_WEIGHTS_FILE}, or pass its path with --vgg_weights. '
            f'To train without the perceptual loss, set --loss_weight_content 0 (and --loss_weight_style 0).')
    state = torch.load(found, map_location='cpu', weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f'{found}: expected a torchvision VGG19 state_dict, got {type(state).__name__}')
    features_state = {k[len('features.'):]: v for k, v in state.items() if k.startswith('features.')}
    features = _build_vgg19_features()
    try:
        features.load_state_dict(features_state, strict=True)
    except RuntimeError as err:
        raise ValueError(f'{found} is not a torchvision VGG19 state_dict with features.* keys '
                         f'({VGG19_WEIGHTS_URL}): {err}') from err
    return _freeze(features)


def random_vgg19_features(seed: int = 0) -> nn.Sequential:
    """Frozen VGG19 ``features`` with deterministic random weights (tests and offline demos only).

    Kaiming-normal (fan_out, ReLU) conv weights, zero biases, drawn from a private generator so the
    global RNG is untouched.
    """
    features = _build_vgg19_features()
    gen = torch.Generator().manual_seed(seed)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu', generator=gen)
            nn.init.zeros_(m.bias)
    return _freeze(features)


def shifted_gram(feat: torch.Tensor, shift_x: int = 0, shift_y: int = 0) -> torch.Tensor:
    """Gram matrix of features against a shifted copy of themselves.

    ``G[c, d] = Σ_{y, x} feat[c, y + sy, x + sx] · feat[d, y, x] / (C·H·W)`` over the overlap,
    still divided by the full ``C·H·W``; (0, 0) is the plain Gram matrix.
    feat: ``[N, C, H, W]``. Returns ``[N, C, C]``.
    """
    n, c, h, w = feat.shape
    a = feat[:, :, shift_y:, shift_x:].reshape(n, c, -1)
    b = feat[:, :, :h - shift_y, :w - shift_x].reshape(n, c, -1)
    return torch.bmm(a, b.transpose(1, 2)) / (c * h * w)


class VGGLoss(nn.Module):
    """VGG19 content and (shifted) style losses on images in ``[-1, 1]``.

    Args:
        content_weights: weights of relu1_1 … relu5_1 for the content loss.
        style_weights: weights of the same layers for the style loss.
        shifted_style: add the shifted-Gram terms (shifts ``VGG_STYLE_SHIFTS``) to the style loss.
        weights_path: VGG19 weights file (see :func:`load_vgg19_features`).
        random_init: use seeded random VGG weights instead of ImageNet weights (tests and demos;
            must be asked for explicitly, never a fallback).

    The VGG parameters are frozen (``requires_grad=False``); gradients reach ``x`` only.
    """

    def __init__(self, content_weights: Sequence[float] = (0.125,) * 5, style_weights: Sequence[float] = (1.0,) * 5,
                 shifted_style: bool = True, weights_path: str | Path | None = None,
                 random_init: bool = False) -> None:
        super().__init__()
        n = len(VGG_SLICES)
        if len(content_weights) != n or len(style_weights) != n:
            raise ValueError(f'VGGLoss: content_weights and style_weights need {n} values (relu1_1..relu5_1), got '
                             f'{list(content_weights)} and {list(style_weights)}')
        if random_init and weights_path is not None:
            raise ValueError(f'VGGLoss: random_init=True and weights_path={weights_path!r} are exclusive')
        self.content_weights = [float(w) for w in content_weights]
        self.style_weights = [float(w) for w in style_weights]
        self.shifted_style = shifted_style
        features = random_vgg19_features() if random_init else load_vgg19_features(weights_path)
        self.slices = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in VGG_SLICES)
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """img: ``[N, 3, H, W]`` in ``[-1, 1]`` -> [relu1_1, …, relu5_1] feature maps."""
        h = (0.5 * img + 0.5 - self.mean) / self.std
        feats = []
        for block in self.slices:
            h = block(h)
            feats.append(h)
        return feats

    def forward(self, x: torch.Tensor, y: torch.Tensor, loss_type: str = 'content',
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: generated ``[N, 3, H, W]`` in ``[-1, 1]``; y: target (no gradient); mask: optional
        ``[N, 1, H, W]`` applied to every feature map via adaptive max-pooling. Returns a scalar."""
        if loss_type not in ('content', 'style'):
            raise ValueError(f"VGGLoss: unknown loss_type {loss_type!r}; valid: ['content', 'style']")
        if x.shape != y.shape or x.dim() != 4 or x.size(1) != 3:
            raise ValueError(f'VGGLoss: x and y must be [N, 3, H, W] of the same shape, got {tuple(x.shape)} and '
                             f'{tuple(y.shape)}')
        feats_x = self.features(x)
        with torch.no_grad():
            feats_y = self.features(y)
        if mask is not None:
            masks = [F.adaptive_max_pool2d(mask, f.shape[2:]) for f in feats_x]
            feats_x = [f * m for f, m in zip(feats_x, masks)]
            feats_y = [f * m for f, m in zip(feats_y, masks)]
        if loss_type == 'content':
            return self._content(feats_x, feats_y)
        return self._style(feats_x, feats_y)

    def _content(self, feats_x: list[torch.Tensor], feats_y: list[torch.Tensor]) -> torch.Tensor:
        per_sample = sum(w * (fx - fy).abs().flatten(1).mean(dim=1)
                         for w, fx, fy in zip(self.content_weights, feats_x, feats_y))
        return per_sample.mean()

    def _style(self, feats_x: list[torch.Tensor], feats_y: list[torch.Tensor]) -> torch.Tensor:
        per_sample = feats_x[0].new_zeros(feats_x[0].size(0))
        for j, (w, fx, fy) in enumerate(zip(self.style_weights, feats_x, feats_y)):
            shifts = VGG_STYLE_SHIFTS[j] if self.shifted_style else (0,)
            for d in shifts:
                if d == 0:
                    per_sample = per_sample + w * _gram_sq_diff(fx, fy, 0, 0)
                else:
                    per_sample = per_sample + 0.5 * w * (_gram_sq_diff(fx, fy, d, 0) + _gram_sq_diff(fx, fy, 0, d))
        return per_sample.mean()


def _gram_sq_diff(fx: torch.Tensor, fy: torch.Tensor, sx: int, sy: int) -> torch.Tensor:
    """Per-sample ``Σ (G^{(sx,sy)}(fx) − G^{(sx,sy)}(fy))²`` -> ``[N]``."""
    return (shifted_gram(fx, sx, sy) - shifted_gram(fy, sx, sy)).pow(2).flatten(1).sum(dim=1)
