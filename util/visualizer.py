"""Visual grids: every panel becomes a 3-channel image in [-1, 1]; samples are rows.

Typical use (flow model)::

    save_visual_grid(path, {'img_1': (img_1, 'rgb'), 'joint_1': (joint_1, 'pose'),
                            'seg_1': (seg_1, 'seg'), 'flow_out': (flow_out, 'flow'),
                            'vis_out': (vis_out, 'vis')})
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch
from torchvision.utils import make_grid, save_image

from util.flow_util import flow_to_rgb_batch
from util.io import atomic_target, atomic_write
from util.pose_util import draw_pose_from_map

# Colour of segmentation label k (RGB).
SEG_COLORS = (
    (73, 0, 255), (255, 0, 0), (255, 0, 219), (255, 219, 0), (0, 255, 146), (0, 146, 255), (146, 0, 255),
    (255, 127, 80), (0, 255, 0), (0, 0, 255), (37, 0, 127), (127, 0, 0), (127, 0, 109), (127, 109, 0),
    (0, 127, 73), (0, 73, 127), (73, 0, 127), (127, 63, 40), (0, 127, 0), (0, 0, 127),
)
# Colour of visibility label k (RGB): 0 visible = green, 1 invisible = red, 2 background = blue.
VIS_COLORS = ((0, 255, 0), (255, 0, 0), (0, 0, 255))
PANEL_KINDS = ('rgb', 'seg', 'pose', 'flow', 'vis', 'softmask')
GRID_PADDING = 2
ITEM_LIST_NAME = 'vis_item_list.txt'
# Height of the band of column titles above a saved grid: a whole number of JPEG blocks (16 px covers the 2x2
# chroma-subsampled 16x16 blocks), so the grid below it compresses exactly as it would without the band.
TITLE_BAND_HEIGHT = 16
_TITLE_FONT = cv2.FONT_HERSHEY_SIMPLEX
_TITLE_SCALE, _TITLE_MIN_SCALE = 0.4, 0.25


def _uint8_to_unit(img: torch.Tensor) -> torch.Tensor:
    """uint8-valued ``[N, 3, H, W]`` -> float32 in [-1, 1]."""
    return img.float().div(127.5).sub(1)


def _labels_to_colors(labels: torch.Tensor, table: tuple[tuple[int, int, int], ...], what: str) -> torch.Tensor:
    """Integer labels ``[N, H, W]`` -> ``[N, 3, H, W]`` in [-1, 1] through a colour table."""
    bad = torch.unique(labels[(labels < 0) | (labels >= len(table))])
    if bad.numel():
        raise ValueError(f'render_panel({what!r}): labels must be in [0, {len(table)}), found {bad.tolist()[:10]}')
    colors = torch.tensor(table, dtype=torch.float32)
    return _uint8_to_unit(colors[labels].permute(0, 3, 1, 2))


def _labels_from(x: torch.Tensor, kind: str) -> torch.Tensor:
    """One-channel label maps are rounded to ints; multi-channel maps (one-hot/logits) are argmaxed."""
    return x[:, 0].round().long() if x.size(1) == 1 else x.argmax(dim=1)


def _check_channels(x: torch.Tensor, kind: str, allowed: tuple[int, ...] | None) -> None:
    if allowed is not None and x.size(1) not in allowed:
        raise ValueError(f'render_panel({kind!r}): expected {" or ".join(map(str, allowed))} channels, '
                         f'got tensor of shape {tuple(x.shape)}')


def render_panel(tensor: torch.Tensor, kind: str) -> torch.Tensor:
    """Render one panel column.

    Args:
        tensor: ``[N, C, H, W]`` on any device (a detached CPU copy is used):
            ``rgb`` C=3 in [-1, 1] (C=1 is shown as gray); ``seg`` C=1 labels or C>1 one-hot/logits;
            ``pose`` C=K heatmaps; ``flow`` C=2 pixel offsets; ``vis`` C=1 labels 0/1/2 or C=3 logits;
            ``softmask`` C=1 in [0, 1].
        kind: one of :data:`PANEL_KINDS`.

    Returns:
        ``[N, 3, H, W]`` float32 CPU tensor in [-1, 1] (``rgb``/``softmask`` are clamped).
    """
    if kind not in PANEL_KINDS:
        raise ValueError(f'render_panel: unknown panel kind {kind!r}, valid kinds are {PANEL_KINDS}')
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != 4:
        shape = tuple(tensor.shape) if hasattr(tensor, 'shape') else type(tensor).__name__
        raise ValueError(f'render_panel({kind!r}): expected a [N, C, H, W] tensor, got {shape}')
    x = tensor.detach().float().cpu()
    if kind == 'rgb':
        _check_channels(x, kind, (1, 3))
        return x.expand(-1, 3, -1, -1).clamp(-1, 1).clone()
    if kind == 'seg':
        return _labels_to_colors(_labels_from(x, kind), SEG_COLORS, kind)
    if kind == 'pose':
        imgs = [torch.from_numpy(draw_pose_from_map(sample)[0]) for sample in x]
        out = torch.stack(imgs).permute(0, 3, 1, 2) if imgs else torch.zeros(0, 3, *x.shape[2:])
        return _uint8_to_unit(out)
    if kind == 'flow':
        _check_channels(x, kind, (2,))
        return flow_to_rgb_batch(x)
    if kind == 'vis':
        _check_channels(x, kind, (1, 3))
        return _labels_to_colors(_labels_from(x, kind), VIS_COLORS, kind)
    # softmask
    _check_channels(x, kind, (1,))
    return (x * 2 - 1).clamp(-1, 1).expand(-1, 3, -1, -1).clone()


def make_visual_grid(rows: dict[str, tuple[torch.Tensor, str]]) -> torch.Tensor:
    """Assemble the grid that :func:`save_visual_grid` writes.

    Args:
        rows: ``{panel name: (tensor [N, C, H, W], kind)}``; panels (in dict order) are columns, samples
            are rows. All panels must share N, H and W.

    Returns:
        ``[3, N*(H+2)+2, P*(W+2)+2]`` float32 CPU tensor in [0, 1] (min-max normalised over the whole
        grid, black padding), e.g. for TensorBoard.
    """
    if not rows:
        raise ValueError('make_visual_grid: no panels given')
    panels = []
    for name, item in rows.items():
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ValueError(f'make_visual_grid: panel {name!r} must be a (tensor, kind) pair, '
                             f'got {type(item).__name__}')
        tensor, kind = item
        try:
            panels.append(render_panel(tensor, kind))
        except ValueError as e:
            raise ValueError(f'panel {name!r}: {e}') from e
    ref_name, ref = next(iter(rows)), panels[0]
    for name, panel in zip(rows, panels):
        if panel.shape[0] != ref.shape[0] or panel.shape[2:] != ref.shape[2:]:
            raise ValueError(f'make_visual_grid: panel {name!r} has N, H, W = {panel.shape[0]}, '
                             f'{tuple(panel.shape[2:])} but {ref_name!r} has {ref.shape[0]}, {tuple(ref.shape[2:])}')
    num_panels = len(panels)
    # [N, P, 3, H, W] -> sample-major list, so each grid row is one sample.
    grid = torch.stack(panels, dim=1).flatten(0, 1).clamp(-1, 1)
    return make_grid(grid, nrow=num_panels, padding=GRID_PADDING, normalize=True)


def _title_cell(text: str, width: int) -> np.ndarray:
    """``[TITLE_BAND_HEIGHT, width]`` uint8: ``text`` in white on black, centred; shrunk (down to a minimum
    size) and then cut (ending in ``~``) so that it fits ``width``."""
    cell = np.zeros((TITLE_BAND_HEIGHT, width), np.uint8)
    scale = _TITLE_SCALE
    (tw, _), _ = cv2.getTextSize(text, _TITLE_FONT, scale, 1)
    if tw > width - 2:
        scale = max(_TITLE_MIN_SCALE, scale * (width - 2) / tw)
        (tw, _), _ = cv2.getTextSize(text, _TITLE_FONT, scale, 1)
    while tw > width - 2 and len(text) > 1:
        text = text[:-2] + '~' if len(text) > 2 else text[:1]
        (tw, _), _ = cv2.getTextSize(text, _TITLE_FONT, scale, 1)
    (tw, th), _ = cv2.getTextSize(text, _TITLE_FONT, scale, 1)
    cv2.putText(cell, text, (max((width - tw) // 2, 0), (TITLE_BAND_HEIGHT + th) // 2), _TITLE_FONT, scale, 255, 1,
                cv2.LINE_AA)
    return cell


def _title_band(names: list[str], panel_width: int, grid_width: int) -> torch.Tensor:
    """``[3, TITLE_BAND_HEIGHT, grid_width]`` float in [0, 1]: each name above its column of the grid."""
    band = np.zeros((TITLE_BAND_HEIGHT, grid_width), np.uint8)
    for p, name in enumerate(names):
        left = GRID_PADDING + p * (panel_width + GRID_PADDING)
        band[:, left:left + panel_width] = _title_cell(name, panel_width)
    return torch.from_numpy(band).float().div(255).expand(3, -1, -1)


def save_visual_grid(path: str | os.PathLike, rows: dict[str, tuple[torch.Tensor, str]],
                     titles: bool = True) -> Path:
    """Write the visual grid to ``path`` and the panel names to ``vis_item_list.txt`` beside it.

    Same grid as :func:`make_visual_grid` (torchvision ``save_image`` with ``nrow`` = number of panels,
    padding 2, min-max normalisation over the whole grid). With ``titles`` (default) a black band of
    ``TITLE_BAND_HEIGHT`` pixels above the grid names each column (the original's grids have no titles; below the
    band the image is the original's grid, also for JPEG); ``titles=False`` writes the original's layout. The image
    format follows the file extension (e.g. ``.jpg``); folders are created and both files are written atomically.
    """
    path = Path(path)
    grid = make_visual_grid(rows)
    if titles:
        panel_width = next(iter(rows.values()))[0].shape[-1]
        grid = torch.cat([_title_band(list(rows), panel_width, grid.shape[-1]), grid], dim=1)
    with atomic_target(path) as tmp:
        # The grid is already normalised to [0, 1]; save_image only converts to 8 bits.
        save_image(grid, tmp)
    atomic_write(path.parent / ITEM_LIST_NAME, lambda f: f.write(''.join(f'{name}\n' for name in rows)), mode='w')
    return path

