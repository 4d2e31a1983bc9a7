"""Malformed arguments: one valid call per op, then each parameter replaced by wrong types,
out-of-range and edge values (and a few unusual spellings that are valid: NumPy ints, 0-d
integer tensors, lists, upper-case 'SAME'). The oracle decides which are valid; for those the
result must match, for the others the error must be convolab's own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import convolab.functional as CF
import convolab.nn as cnn
from convolab.functional.algorithms import available_algorithms

from . import oracle as O
from .core import Case
from .generate import CONV_PARAMS, POOL_PARAMS

INTS = [2.0, 2.5, "2", None, True, [2, 2, 2, 2], (), np.int64(2), torch.tensor(2), -1, 0, 2**31, 2**63,
        float("nan"), [1.5], ((1, 2),), torch.tensor([2, 2]), np.array([2, 2]), [np.int32(1), 2], {"a": 1}]
PADDINGS = ["foo", "SAME", "Valid", "", -1, 1.5, (1, 2, 3), ((1, 2), (3,)), ((1, -1), (0, 0)), [[1, 1], [0, 1]],
            (None, 1), torch.tensor(1), np.array([1, 1]), 2**31, ((0, 2**40), (0, 0)), ((1, 1), 1), ("1", "1")]
NOT_TENSORS = [[[1.0, 2.0]], np.ones((1, 1, 4, 4)), None, 3.0, "x"]


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64)


def _cases(op: str, ops: tuple[str, ...], params: tuple[str, ...], base: dict[str, Any],
           call: Callable[..., Any], expect: Callable[..., Any], bad: dict[str, list[Any]]) -> list[Case]:
    out = []
    for name, values in bad.items():
        for v in values:
            kwargs = {**base, name: v}
            label = f"{op}({name}={v!r})".replace("\n", " ")[:160]
            out.append(Case("malformed", label, ops, params, (lambda kw=kwargs: call(**kw)),
                            (lambda kw=kwargs: expect(**kw)), lambda: 10.0))
    return out


def _checked_choice(value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise O.Invalid(f"{value!r} not a choice")


def malformed_cases() -> list[Case]:
    x, w, b = _x(2, 4, 6, 7), _x(6, 2, 3, 3), _x(6)
    cases: list[Case] = []

    def conv_call(input=x, weight=w, bias=b, stride=1, padding=1, dilation=1, groups=2, padding_mode="zeros",
                  algorithm="auto"):
        return CF.conv2d(input, weight, bias, stride, padding, dilation, groups, padding_mode=padding_mode,
                         algorithm=algorithm)

    def conv_expect(input=x, weight=w, bias=b, stride=1, padding=1, dilation=1, groups=2, padding_mode="zeros",
                    algorithm="auto"):
        _checked_choice(algorithm, available_algorithms())
        return O.conv_expect(input, weight, bias, stride, padding, dilation, groups, padding_mode)

    cases += _cases("conv2d", ("conv2d",), CONV_PARAMS, {}, conv_call, conv_expect, {
        "stride": INTS, "dilation": INTS, "groups": INTS + [3, 4, 12, np.int64(2)], "padding": INTS + PADDINGS,
        "padding_mode": ["zero", "REFLECT", None, 3, "reflect", "circular"],
        "algorithm": ["fast", "FFT", None, 3, "native", "im2col"],
        "input": NOT_TENSORS + [x[0, 0], x.unsqueeze(0), x.float(), x.int(), x[:, :3], x.transpose(-1, -2),
                                x.to(memory_format=torch.channels_last), x[:, :, :0], x[:0], x[..., :1, :1]],
        "weight": NOT_TENSORS + [w[0], w.unsqueeze(0), w.float(), w[:, :1], w[:5]],
        "bias": NOT_TENSORS[:2] + [b[:5], b.float(), b.view(2, 3), b.int()],
    })

    xt, wt = _x(2, 4, 3, 4), _x(4, 3, 3, 3)

    def ct_call(input=xt, weight=wt, stride=2, padding=1, output_padding=1, groups=2, dilation=1, output_size=None):
        return CF.conv_transpose2d(input, weight, None, stride, padding, output_padding, groups, dilation,
                                   output_size=output_size)

    def ct_expect(input=xt, weight=wt, stride=2, padding=1, output_padding=1, groups=2, dilation=1, output_size=None):
        if output_size is not None:
            size = list(output_size) if isinstance(output_size, (list, tuple)) else None
            if size is None or len(size) not in (2, 4):
                raise O.Invalid("output_size")
            size = [O.as_int(v, "output_size") for v in size[-2:]]
            s, d = O.positive(stride, 2, "stride"), O.positive(dilation, 2, "dilation")
            pairs = O.pad_pairs(padding, 2, input.shape[2:], weight.shape[2:], s, d, same_ok=False)
            base = [(i - 1) * ss - pb - pa + dd * (kk - 1) + 1
                    for i, ss, (pb, pa), dd, kk in zip(input.shape[2:], s, pairs, d, weight.shape[2:])]
            output_padding = tuple(v - bb for v, bb in zip(size, base))
        return O.conv_transpose_expect(input, weight, None, stride, padding, output_padding, groups, dilation)

    cases += _cases("conv_transpose2d", ("conv_transpose2d",), CONV_PARAMS, {}, ct_call, ct_expect, {
        "stride": INTS, "dilation": INTS, "groups": INTS + [np.int64(2), 4], "padding": INTS + PADDINGS,
        "output_padding": INTS + [2, (1, 2), (0, 1)],
        "output_size": [(5, 8), (6, 8), (8, 8), (4, 7), (2, 4, 6, 8), (6,), (6, 8, 1), "68", (6.0, 8.0), (-1, 8),
                        (10**12, 8)],
        "input": NOT_TENSORS + [xt[0, 0], xt.float()],
    })

    xp = _x(2, 3, 7, 8)

    def max_call(input=xp, kernel_size=3, stride=2, padding=1, dilation=1):
        return CF.max_pool2d(input, kernel_size, stride, padding, dilation)

    def max_expect(input=xp, kernel_size=3, stride=2, padding=1, dilation=1):
        return O.max_pool_expect(input, kernel_size, stride, padding, dilation, False, False, 2)

    cases += _cases("max_pool2d", ("max_pool2d",), POOL_PARAMS, {}, max_call, max_expect, {
        "kernel_size": INTS, "stride": INTS + [[]], "padding": INTS + PADDINGS, "dilation": INTS,
        "input": NOT_TENSORS + [xp[0, 0], xp.unsqueeze(0), xp[0], xp.int(), xp > 0, xp.to(torch.complex64)],
    })

    def avg_call(input=xp, kernel_size=3, stride=2, padding=1, divisor_override=None):
        return CF.avg_pool2d(input, kernel_size, stride, padding, False, True, divisor_override)

    def avg_expect(input=xp, kernel_size=3, stride=2, padding=1, divisor_override=None):
        return O.avg_pool_expect(input, kernel_size, stride, padding, False, True, divisor_override, 2)

    cases += _cases("avg_pool2d", ("avg_pool2d",), POOL_PARAMS, {}, avg_call, avg_expect, {
        "kernel_size": INTS, "padding": PADDINGS,
        "divisor_override": [0, -2, 2.5, "2", True, np.int64(3), 2**63],
        "input": [xp.long(), xp > 0, xp.half()],
    })

    xq = xp.abs() + 0.1

    def lp_call(input=xq, norm_type=2, kernel_size=2, stride=None):
        return CF.lp_pool2d(input, norm_type, kernel_size, stride)

    def lp_expect(input=xq, norm_type=2, kernel_size=2, stride=None):
        return O.lp_pool_expect(input, norm_type, kernel_size, stride, False, 2)

    cases += _cases("lp_pool2d", ("lp_pool2d",), POOL_PARAMS, {}, lp_call, lp_expect, {
        "norm_type": [0, "2", None, float("nan"), True, float("inf"), -1, np.float64(2.0), 1e-3],
        "kernel_size": INTS[:8],
    })

    for mode in ("max", "avg"):
        fn = getattr(CF, f"adaptive_{mode}_pool2d")
        cases += _cases(
            f"adaptive_{mode}_pool2d", (f"adaptive_{mode}_pool2d",), POOL_PARAMS, {},
            (lambda input=xp, output_size=3, fn=fn: fn(input, output_size)),
            (lambda input=xp, output_size=3, mode=mode: O.adaptive_expect(input, output_size, mode, False, 2)),
            {"output_size": [0, -1, (3,), (2, 2, 2), "3", 2.5, (None, 0), [None, 3], (None,), None, True, 2**31,
                             np.int64(3), (torch.tensor(2), 3)],
             "input": [xp[:, :, :0], xp.int(), xp > 0, xp[0, 0]]},
        )

    x1 = _x(2, 3, 7)
    cases += _cases("adaptive_max_pool1d", ("adaptive_max_pool1d",), POOL_PARAMS, {},
                    lambda input=x1, output_size=3: CF.adaptive_max_pool1d(input, output_size),
                    lambda input=x1, output_size=3: O.adaptive_expect(input, output_size, "max", False, 1),
                    {"output_size": [(None,), None, (3,), (3, 3)]})

    for mode in ("max", "avg"):
        fn = getattr(CF, f"global_{mode}_pool")
        cases += _cases(f"global_{mode}_pool", (f"global_{mode}_pool",), POOL_PARAMS, {},
                        (lambda input=xp, fn=fn: fn(input)), (lambda input=xp, mode=mode: O.global_expect(input, mode)),
                        {"input": NOT_TENSORS + [xp[0, 0], xp[:, :, :0], xp.int(), xp > 0, xp.to(torch.complex64)]})

    def pool_call(input=xp, kernel_size=2, reduce="max", pad_value=None, padding=1):
        return CF.pool(input, kernel_size, 1, padding, reduce=reduce, pad_value=pad_value)

    def pool_expect(input=xp, kernel_size=2, reduce="max", pad_value=None, padding=1):
        if not isinstance(reduce, str):
            raise O.Invalid("reduce")
        if pad_value is not None and (isinstance(pad_value, bool) or not isinstance(pad_value, (int, float))):
            raise O.Invalid("pad_value")
        if pad_value is not None and not input.is_floating_point() and pad_value != pad_value:
            raise O.Invalid("pad_value")
        return O.generic_pool_expect(input, kernel_size, 1, padding, reduce=reduce, pad_value=pad_value)

    cases += _cases("pool", ("pool",), POOL_PARAMS, {}, pool_call, pool_expect, {
        "reduce": ["maxx", 3, None, "MAX", "mean", "sum"],
        "pad_value": ["0", None, 1.5, float("nan"), True],
        "kernel_size": INTS[:10],
    })
    cases += _cases("pool", ("pool",), POOL_PARAMS, {"input": xp.long()}, pool_call, pool_expect, {
        "pad_value": [0.5, -(2**63) - 1, 2**63, float("inf"), -3, float("nan")],
        "reduce": ["min", "mean", "sum"],
    })

    def spp_call(input=xp, levels=(1, 2), mode="max", bins="adaptive"):
        return CF.spatial_pyramid_pool(input, levels, mode, bins=bins)

    def spp_expect(input=xp, levels=(1, 2), mode="max", bins="adaptive"):
        return O.spp_expect(input, levels, mode, bins)

    cases += _cases("spatial_pyramid_pool", ("spatial_pyramid_pool",), POOL_PARAMS, {}, spp_call, spp_expect, {
        "levels": [(), (0,), "12", 3, None, ((1, 2),), ((1, 2, 3),), (1.5,), (2**31,), (8, 9), [np.int64(2)]],
        "mode": ["mean", "MAX", None],
        "bins": ["papers", None],
        "input": NOT_TENSORS[:2] + [xp[0], xp[:, :, :0], xp.int()],
    })

    xs = _x(2, 6, 3, 3)
    cases += _cases("channel_shuffle", ("channel_shuffle",), POOL_PARAMS, {},
                    lambda input=xs, groups=2: CF.channel_shuffle(input, groups),
                    lambda input=xs, groups=2: O.shuffle_expect(input, groups),
                    {"groups": INTS + [4, 6, 12], "input": NOT_TENSORS + [xs[0, 0, 0], xs.int(), xs > 0]})

    dw, pw = _x(8, 1, 3, 3), _x(5, 8, 1, 1)
    xd = _x(2, 4, 6, 6)
    cases += _cases(
        "depthwise_separable_conv", ("depthwise_separable_conv",), CONV_PARAMS + ("depthwise_weight", "pointwise_weight"),
        {}, lambda input=xd, dw=dw, pw=pw: CF.depthwise_separable_conv(input, dw, pw),
        lambda input=xd, dw=dw, pw=pw: O.depthwise_separable_expect(input, dw, pw),
        {"dw": NOT_TENSORS[:2] + [dw[:7], dw.float(), _x(8, 2, 3, 3), dw[:0]],
         "pw": NOT_TENSORS[:2] + [pw[:, :7], _x(5, 8, 3, 3), pw.float()],
         "input": [xd[0, 0], xd.int()]},
    )

    cases += module_cases()
    return cases


def module_cases() -> list[Case]:
    """Construction arguments of the modules (errors at construction, results at call time)."""
    x = _x(2, 4, 6, 7)
    cases: list[Case] = []

    def conv_call(in_channels=4, out_channels=6, kernel_size=3, stride=1, padding=1, groups=2, dtype=torch.float64,
                  padding_mode="zeros"):
        torch.manual_seed(0)
        m = cnn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, 1, groups, True, padding_mode,
                       dtype=dtype)
        return m(x)

    def conv_expect(in_channels=4, out_channels=6, kernel_size=3, stride=1, padding=1, groups=2,
                    dtype=torch.float64, padding_mode="zeros"):
        c_in, c_out = O.as_int(in_channels, "in"), O.as_int(out_channels, "out")
        if c_in < 1 or c_out < 1:
            raise O.Invalid("channels")
        if dtype is not None and dtype not in O.FLOATING:
            raise O.Invalid("dtype")
        k = O.positive(kernel_size, 2, "kernel_size")
        O.positive(stride, 2, "stride")
        g = O.as_int(groups, "groups")
        if g < 1 or c_in % g or c_out % g:
            raise O.Invalid("groups")
        torch.manual_seed(0)
        m = torch.nn.Conv2d(c_in, c_out, k, 1, 0, 1, g, True, dtype=dtype or torch.float32)
        return O.conv_expect(x, m.weight.detach(), m.bias.detach(), stride, padding, 1, g,
                             padding_mode)

    cases += _cases("Conv2d", ("Conv2d",), CONV_PARAMS, {}, conv_call, conv_expect, {
        "in_channels": [0, -1, 2.5, "4", None, True, 3, np.int64(4)],
        "out_channels": [0, 7, 2.5, np.int64(6)],
        "kernel_size": INTS[:12],
        "stride": [0, -1, 2.0, (1, 2, 3), 2**31],
        "padding": PADDINGS,
        "groups": [0, 3, 2.0, np.int64(2), 4],
        "dtype": [torch.int64, torch.bool, torch.complex64, "float32", torch.float16, torch.float32],
        "padding_mode": ["zero", "REFLECT", None, "reflect"],
    })

    xp = _x(2, 3, 7, 8)
    for cls, ops, extra in ((cnn.MaxPool2d, "max", {}), (cnn.AvgPool2d, "avg", {})):
        def call(kernel_size=3, stride=2, padding=1, cls=cls):
            return cls(kernel_size, stride, padding)(xp)

        def expect(kernel_size=3, stride=2, padding=1, ops=ops):
            if ops == "max":
                return O.max_pool_expect(xp, kernel_size, stride, padding, 1, False, False, 2)
            return O.avg_pool_expect(xp, kernel_size, stride, padding, False, True, None, 2)

        cases += _cases(cls.__name__, (cls.__name__,), POOL_PARAMS, {}, call, expect,
                        {"kernel_size": INTS[:12], "stride": [0, -1, 2.5, (2, 2, 2)], "padding": PADDINGS})

    cases += _cases("AdaptiveAvgPool2d", ("AdaptiveAvgPool2d",), POOL_PARAMS, {},
                    lambda output_size=3: cnn.AdaptiveAvgPool2d(output_size)(xp),
                    lambda output_size=3: O.adaptive_expect(xp, output_size, "avg", False, 2),
                    {"output_size": [0, (0, 2), "3", 2.5, (None, 3), (3, 3, 3), -1]})
    cases += _cases("LPPool2d", ("LPPool2d",), POOL_PARAMS, {},
                    lambda norm_type=2, kernel_size=2: cnn.LPPool2d(norm_type, kernel_size)(xp.abs() + 0.1),
                    lambda norm_type=2, kernel_size=2: O.lp_pool_expect(xp.abs() + 0.1, norm_type, kernel_size, None,
                                                                        False, 2),
                    {"norm_type": [0, "2", None, float("nan"), True], "kernel_size": [0, -1, "2", 2.5]})
    cases += _cases("SpatialPyramidPool", ("SpatialPyramidPool", "spatial_pyramid_pool"), POOL_PARAMS, {},
                    lambda levels=(1, 2), mode="max": cnn.SpatialPyramidPool(levels, mode)(xp),
                    lambda levels=(1, 2), mode="max": O.spp_expect(xp, levels, mode),
                    {"levels": [(), (0,), "12", None, (1.5,), (-1,)], "mode": ["mean", None]})
    return cases
