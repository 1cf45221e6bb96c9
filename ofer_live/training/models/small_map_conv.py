"""A training-speed measure for CPU bf16: convolutions with tiny output maps as one matrix product.

oneDNN's bf16 convolution is slow when the output map is tiny: at 48 px, the FER net's layer4 works on 3×3 maps,
and there its bf16 train step (forward + backward) is no faster than fp32. The same convolution written as
im2col (``F.unfold``) and one matrix product runs on the CPU's bf16 matrix units instead.
``benchmarks/small_map_conv.py`` on the 2-core CPU (forward + backward, batch 64, bf16 autocast, 2 threads,
channels_last input): 512→512 channels onto 3×3 took 24.2 instead of 42.6 ms, 256→512 with stride 2 onto 3×3 12.4
instead of 19.2 ms; onto 6×6 the unfold is slower (256→256: 35.8 against 11.3 ms), so only maps of at most
``MAX_POSITIONS`` positions take this path.

``use_small_map_convs(model)`` switches a model's eligible ``nn.Conv2d`` modules to ``SmallMapConv2d`` in place. The
parameters, the state dict and everything outside CPU bf16 autocast are unchanged: fp32 training, evaluation and
the ONNX export run the plain convolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Output maps of at most this many positions (3×3) take the matrix-product path.
MAX_POSITIONS = 9


def _output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class SmallMapConv2d(nn.Conv2d):
    """``nn.Conv2d`` that, under CPU bf16 autocast and for output maps of at most ``MAX_POSITIONS`` positions, is
    computed as unfold + one bf16 matrix product (the same numbers up to bf16 rounding)."""

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C_in, H, W) -> (N, C_out, H', W')."""
        if not (x.device.type == "cpu" and torch.is_autocast_enabled("cpu")):
            return super().forward(x)
        if torch.get_autocast_dtype("cpu") != torch.bfloat16:
            return super().forward(x)
        kh, kw = self.kernel_size
        (sh, sw), (ph, pw) = self.stride, self.padding
        out_h = _output_size(x.shape[-2], kh, sh, ph)
        out_w = _output_size(x.shape[-1], kw, sw, pw)
        if out_h * out_w > MAX_POSITIONS:
            return super().forward(x)
        n = x.shape[0]
        cols = F.unfold(x.to(torch.bfloat16), (kh, kw), padding=(ph, pw), stride=(sh, sw))  # (N, C_in*kh*kw, L)
        y = self.weight.to(torch.bfloat16).reshape(self.out_channels, -1) @ cols  # (N, C_out, L)
        if self.bias is not None:
            y = y + self.bias.to(torch.bfloat16)[:, None]
        return y.reshape(n, self.out_channels, out_h, out_w)


def _eligible(module: nn.Module) -> bool:
    return (
        type(module) is nn.Conv2d
        and module.groups == 1
        and module.dilation == (1, 1)
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


def use_small_map_convs(model: nn.Module) -> int:
    """Switch every plain ``nn.Conv2d`` of ``model`` (groups 1, no dilation, zero padding) to ``SmallMapConv2d`` in
    place -> how many were switched. Which path a convolution takes is decided per call from its output size."""
    switched = 0
    for module in model.modules():
        if _eligible(module):
            module.__class__ = SmallMapConv2d
            switched += 1
    return switched
