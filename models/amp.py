"""How the networks' forward passes run: precision (``--amp``), memory format (``--channels_last``), compilation
(``--compile``).

The faithful path is ``--amp off --channels_last 0 --compile 0``: every helper here is then the identity (no
autocast region, no copy, no conversion), so the results are bit for bit those of plain float32 code.

Mixed precision is confined to the networks: :meth:`ForwardSettings.run` opens an autocast region around one
network call and casts the outputs back to float32, so the losses, their reductions, SSIM/PSNR and every metric
are computed in float32 from float32 tensors. ``fp16`` needs a gradient scaler (:func:`make_grad_scaler`);
``bf16`` has float32's exponent range and does not.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

AMP_MODES = ('off', 'bf16', 'fp16')
_AMP_DTYPES: dict[str, torch.dtype | None] = {'off': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def amp_dtype(mode: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype of ``--amp mode`` on ``device`` (None for ``off``); raises if the device cannot run it."""
    if mode not in _AMP_DTYPES:
        raise ValueError(f'unknown --amp {mode!r}; valid: {list(AMP_MODES)}')
    dtype = _AMP_DTYPES[mode]
    device = torch.device(device)
    if dtype is torch.bfloat16 and device.type == 'cuda' and not torch.cuda.is_bf16_supported():
        raise ValueError(f'--amp bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support; '
                         f'use --amp fp16 (with gradient scaling) or --amp off')
    return dtype


def to_float32(value: Any) -> Any:
    """Floating-point tensors (also inside lists/tuples) as float32; a float32 tensor is returned as is."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(to_float32(v) for v in value)
    return value


@dataclass(frozen=True)
class ForwardSettings:
    """Precision and memory format of a model's network calls.

    device_type: ``'cpu'`` or ``'cuda'`` (the autocast device).
    dtype: autocast dtype (``torch.bfloat16`` / ``torch.float16``) or None for float32.
    channels_last: networks hold their weights in channels-last (NHWC) memory format; convolutions then also
        produce channels-last outputs. Values are the same tensors up to floating-point rounding of the
        different kernels.
    compile: networks are compiled with ``torch.compile`` (``nn.Module.compile``: state_dict keys unchanged).
    """

    device_type: str = 'cpu'
    dtype: torch.dtype | None = None
    channels_last: bool = False
    compile: bool = False

    @property
    def is_faithful(self) -> bool:
        return self.dtype is None and not self.channels_last and not self.compile

    def autocast(self) -> contextlib.AbstractContextManager:
        """An autocast region of ``dtype``, or a no-op context for float32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def run(self, net: nn.Module, *inputs: Any, **kwargs: Any) -> Any:
        """``net(*inputs, **kwargs)`` inside the autocast region, outputs cast back to float32."""
        if self.dtype is None:
            return net(*inputs, **kwargs)
        with self.autocast():
            out = net(*inputs, **kwargs)
        return to_float32(out)

    def prepare(self, net: nn.Module) -> nn.Module:
        """Convert ``net`` in place to the memory format and compile it; returns ``net``."""
        if self.channels_last:
            net.to(memory_format=torch.channels_last)
        if self.compile:
            net.compile()
        return net


def make_grad_scaler(settings: ForwardSettings) -> torch.amp.GradScaler | None:
    """A gradient scaler for float16 training (small gradients would underflow in float16), else None."""
    if settings.dtype is not torch.float16:
        return None
    return torch.amp.GradScaler(settings.device_type)

