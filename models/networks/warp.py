"""Flow warping (SPEC §5): the one warp used by the generator, the losses and the models."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def warp_acc_flow(x: torch.Tensor, flow: torch.Tensor, mode: str = 'bilinear',
                  mask: torch.Tensor | None = None, mask_value: float = -1) -> torch.Tensor:
    """Sample ``x`` at the positions a flow points to.

    Args:
        x: ``[N, C, H, W]`` tensor to sample from (source frame).
        flow: ``[N, 2, H, W]`` offsets in pixels of the current resolution, in the target frame:
            target pixel ``(x, y)`` reads source position ``(x + flow[:, 0], y + flow[:, 1])``.
        mode: ``'bilinear'`` or ``'nearest'`` (passed to ``grid_sample``).
        mask: optional ``[N, 1, H, W]`` target-frame mask; where ``mask <= 0.5`` the output is
            ``mask_value`` in every channel.
        mask_value: fill value outside ``mask``.

    Returns:
        ``[N, C, H, W]``; taps outside the source image read zeros.

    PyTorch 0.4's ``grid_sample`` (which the released models were trained with) behaves like today's
    ``align_corners=True``: normalised coordinate -1/+1 is the centre of the first/last pixel.
    """
    if x.dim() != 4 or flow.dim() != 4 or flow.size(1) != 2:
        raise ValueError(f'warp_acc_flow expects x [N,C,H,W] and flow [N,2,H,W], got {tuple(x.shape)} '
                         f'and {tuple(flow.shape)}')
    if x.shape[0] != flow.shape[0] or x.shape[2:] != flow.shape[2:]:
        raise ValueError(f'x {tuple(x.shape)} and flow {tuple(flow.shape)} must share batch and spatial size')
    n, _, h, w = x.shape
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device).view(1, h, 1)
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device).view(1, 1, w)
    grid_x = 2 * (xs + flow[:, 0]) / max(w - 1, 1) - 1
    grid_y = 2 * (ys + flow[:, 1]) / max(h - 1, 1) - 1
    grid = torch.stack((grid_x, grid_y), dim=3)
    out = F.grid_sample(x, grid, mode=mode, padding_mode='zeros', align_corners=True)
    if mask is not None:
        out = torch.where(mask > 0.5, out, torch.full_like(out, mask_value))
    return out
