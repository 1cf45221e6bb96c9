"""Train-step time of one convolution, plain against ``SmallMapConv2d`` (unfold + one matrix product), in bf16.

    .venv/bin/python benchmarks/small_map_conv.py [--batch 64] [--threads 2] [--runs 10]

The shapes are the FER net's at 48 px (layer3 on 6×6 maps, layer4 on 3×3); each row is forward + backward under
CPU bf16 autocast with channels_last input, as the FER trainer runs them. Needs the train extra (torch).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn

from ofer_live.training.models import small_map_conv
from ofer_live.training.models.small_map_conv import use_small_map_convs

# (in channels, out channels, input size, stride): layer4's convolutions, then layer3's for comparison
SHAPES = [(512, 512, 3, 1), (256, 512, 6, 2), (256, 256, 6, 1), (128, 256, 12, 2)]


def train_step_ms(conv: nn.Module, x: torch.Tensor, runs: int) -> float:
    """Mean ms of forward + backward of ``conv`` on ``x`` (N, C, H, W) under CPU bf16 autocast (3 warm-up steps)."""

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = conv(x)
        y.float().sum().backward()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(runs):
        step()
    return (time.perf_counter() - start) / runs * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"bf16 autocast, batch {args.batch}, {args.threads} threads, forward + backward, mean of {args.runs}")
    print(f"{'conv':<26} {'plain ms':>9} {'SmallMapConv2d ms':>18} {'unfold forced ms':>17}")
    for cin, cout, size, stride in SHAPES:
        plain = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        fast = copy.deepcopy(plain)
        use_small_map_convs(fast)
        x = torch.randn(args.batch, cin, size, size).contiguous(memory_format=torch.channels_last)
        x.requires_grad_()
        out = (size + 2 - 3) // stride + 1
        name = f"{cin}->{cout} {size}x{size}/{stride} -> {out}x{out}"
        plain_ms, fast_ms = train_step_ms(plain, x, args.runs), train_step_ms(fast, x, args.runs)
        limit, small_map_conv.MAX_POSITIONS = small_map_conv.MAX_POSITIONS, 10**9  # every map takes the unfold path
        try:
            forced_ms = train_step_ms(fast, x, args.runs)
        finally:
            small_map_conv.MAX_POSITIONS = limit
        print(f"{name:<26} {plain_ms:>9.1f} {fast_ms:>18.1f} {forced_ms:>17.1f}")


if __name__ == "__main__":
    main()
