"""SmallMapConv2d: the bf16 matrix-product path for tiny output maps gives the convolution's numbers."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ofer_live.training.models import create_model
from ofer_live.training.models.small_map_conv import MAX_POSITIONS, SmallMapConv2d, use_small_map_convs


@pytest.mark.parametrize(("size", "stride", "bias"), [(3, 1, False), (6, 2, True), (2, 1, True)])
def test_matrix_product_path_matches_the_convolution_under_bf16(size, stride, bias):
    torch.manual_seed(0)
    plain = nn.Conv2d(16, 24, 3, stride=stride, padding=1, bias=bias)
    fast = copy.deepcopy(plain)
    assert use_small_map_convs(fast) == 1 and isinstance(fast, SmallMapConv2d)
    x = torch.randn(4, 16, size, size).contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ya, yb = plain(xa), fast(xb)
    assert ya.shape == yb.shape and yb.dtype == torch.bfloat16
    torch.testing.assert_close(yb.float(), ya.float(), atol=0.05, rtol=0.02)
    ya.float().square().sum().backward()
    yb.float().square().sum().backward()
    torch.testing.assert_close(fast.weight.grad, plain.weight.grad, atol=0.5, rtol=0.05)
    torch.testing.assert_close(xb.grad, xa.grad, atol=0.5, rtol=0.05)


def test_outside_bf16_autocast_and_for_larger_maps_it_is_the_plain_convolution():
    torch.manual_seed(0)
    plain = nn.Conv2d(8, 8, 3, padding=1)
    fast = copy.deepcopy(plain)
    use_small_map_convs(fast)
    small, large = torch.randn(2, 8, 3, 3), torch.randn(2, 8, 4, 4)
    assert 4 * 4 > MAX_POSITIONS
    torch.testing.assert_close(fast(small), plain(small), atol=0, rtol=0)  # fp32: the very same kernel
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(fast(large), plain(large), atol=0, rtol=0)


def test_the_fer_net_keeps_its_state_dict_and_export_graph():
    model = create_model("expression_tiny")
    keys = set(model.state_dict())
    assert use_small_map_convs(model) > 0
    assert set(model.state_dict()) == keys
    assert not any(type(m) is nn.Conv2d and m.groups == 1 for m in model.modules())


def test_a_switched_fer_net_exports_the_plain_graph():
    from ofer_live.export.onnx_export import trace_to_onnx

    torch.manual_seed(0)
    plain = create_model("expression_tiny").eval()
    fast = copy.deepcopy(plain)
    use_small_map_convs(fast)
    a, b = trace_to_onnx(plain, "expression"), trace_to_onnx(fast, "expression")
    assert [n.op_type for n in a.graph.node] == [n.op_type for n in b.graph.node]
    assert [t.raw_data for t in a.graph.initializer] == [t.raw_data for t in b.graph.initializer]
