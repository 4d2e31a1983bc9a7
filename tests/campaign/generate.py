"""Random op configurations: every convolution and pooling op, through its N-d function, its
fixed-rank wrapper or its module, with every padding form, mostly valid arguments and a few
invalid ones (zero or negative sizes, mismatched channels, windows larger than the input,
unsupported dtypes)."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any, Optional

import torch
from torch import Tensor

import convolab.functional as CF
import convolab.nn as cnn
from convolab.functional.algorithms import ALGORITHMS

from . import oracle as O
from .core import Case, Draw

ALGORITHM_NAMES = ("auto", "auto", "auto", "native", "direct", "im2col", "fft", "gemm", "winograd",
                   "winograd_f2", "native_cl")
DTYPES = ((torch.float64, 70), (torch.float32, 16), (torch.float16, 4), (torch.bfloat16, 4), (torch.int64, 2),
          (torch.int32, 2), (torch.uint8, 2), (torch.bool, 1), (torch.complex64, 1), (torch.uint16, 1))
CONV_PARAMS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups", "padding_mode", "algorithm",
               "kernel", "output", "dtype", "in_channels", "out_channels", "kernel_size", "output_padding",
               "output_size", "channels", "flip")
POOL_PARAMS = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices", "output",
               "count_include_pad", "divisor_override", "norm_type", "output_size", "dtype", "reduce", "pad_value",
               "levels", "mode", "bins", "groups", "channels", "keepdim", "window", "windows")


def dtype_of(draw: Draw, floating_only: bool = False) -> torch.dtype:
    options = [(d, w) for d, w in DTYPES if not floating_only or d in (torch.float32, torch.float64)]
    total = sum(w for _, w in options)
    r = draw.int(0, total - 1)
    for d, w in options:
        if r < w:
            return d
        r -= w
    return torch.float64


def tensor(shape: list[int], dtype: torch.dtype, seed: int, positive: bool = False) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g) > 0
    if dtype.is_floating_point or dtype.is_complex:
        t = torch.randn(shape, generator=g, dtype=torch.float64)
        return (t.abs() + 0.1 if positive else t).to(dtype)
    lo = 0 if dtype in (torch.uint8, torch.uint16, torch.uint32, torch.uint64) else -5
    return torch.randint(lo, 6, shape, generator=g).to(dtype)


def value(draw: Draw, lo: int, hi: int, bad: tuple = (0, -1), p_bad: float = 0.03) -> int:
    return draw.pick(bad) if draw.chance(p_bad) else draw.int(lo, hi)


def per_dim_arg(draw: Draw, nd: int, lo: int, hi: int, bad: tuple = (0, -1)) -> Any:
    if draw.chance(0.5):
        return value(draw, lo, hi, bad)
    return tuple(value(draw, lo, hi, bad) for _ in range(nd))


def padding_arg(draw: Draw, nd: int, hi: int = 2, same: bool = True) -> Any:
    form = draw.pick(["int", "per-dim", "pairs", "same", "valid"] if same else ["int", "per-dim", "pairs", "valid"])
    if form == "int":
        return value(draw, 0, hi, (-1,), 0.02)
    if form == "per-dim":
        return tuple(value(draw, 0, hi, (-1,), 0.02) for _ in range(nd))
    if form == "pairs":
        return tuple((value(draw, 0, hi, (-1,), 0.02), value(draw, 0, hi, (-1,), 0.02)) for _ in range(nd))
    return form


def _documented_nan(algorithm: str) -> bool:
    """Whether an explicitly chosen algorithm documents that it spreads NaN/Inf (allowed then)."""
    if algorithm in ("auto", "native", "native_cl") or algorithm not in ALGORITHMS:
        return False
    alg = ALGORITHMS[algorithm]
    doc = (type(alg).__doc__ or "") + (sys.modules[type(alg).__module__].__doc__ or "")
    return "NaN" in doc


def within_documented_error(built: "Built") -> bool:
    """Whether an explicitly chosen algorithm that documents a block-norm error bound (fft:
    ``|y - exact| <~ c u log2(L) ||x_block||_2 ||w||_1``) meets it, with c = 8 and the whole
    input as the block (the widest a block can be)."""
    if not built.documented_nan or (built.weight is None and len(built.tensors) < 2):
        return False
    x = built.tensors[0].detach().to(torch.float64)
    w = (built.weight() if built.weight is not None else built.tensors[1]).detach().to(torch.float64)
    got = built.case.run()
    got = got[0] if isinstance(got, tuple) else got
    expected, dtype = built.case.expect()
    expected = expected[0] if isinstance(expected, tuple) else expected
    got, expected = got.detach().to(torch.float64), expected.to(torch.float64)
    finite = torch.isfinite(expected)
    if got.shape != expected.shape or not torch.equal(torch.isfinite(got), finite):
        return False
    u = torch.finfo(dtype).eps / 2
    bound = 8 * u * math.log2(max(x.numel(), 2)) * float(x.norm()) * float(w.abs().sum())
    return bool(((got - expected)[finite].abs() <= bound).all())


class Built:
    """A case plus the tensors a non-finite variant may poison in place (the input first; a
    weight only when no tap reads padding: torch's own kernels disagree on ``0 * inf`` there,
    float32 skipping padded taps and float64 multiplying explicit zeros)."""

    def __init__(self, case: Case, tensors: list[Tensor], documented_nan: bool = False, padded: bool = False) -> None:
        self.case, self.tensors, self.documented_nan = case, tensors, documented_nan
        self.weight: Optional[Callable[[], Tensor]] = None  # a module's weight, for an error bound
        if padded:
            self.tensors = tensors[:1]


def _padded(padding: Any, nd: int, size: list[int], k: list[int], stride: Any, dilation: Any) -> bool:
    try:
        s, d = O.positive(stride, nd, "stride"), O.positive(dilation, nd, "dilation")
        return any(b or a for b, a in O.pad_pairs(padding, nd, size, k, s, d))
    except O.Invalid:
        return True


def _module_runner(make: Callable[[], torch.nn.Module], seed: int) -> Callable[[], torch.nn.Module]:
    holder: dict[str, torch.nn.Module] = {}

    def build() -> torch.nn.Module:
        if "m" not in holder:
            torch.manual_seed(seed)
            holder["m"] = make()
        return holder["m"]

    return build


# ----------------------------------------------------------------------------- conv


def conv_case(draw: Draw, floating_only: bool = False) -> Built:
    nd = draw.int(1, 3)
    groups = draw.pick([1, 1, 2, 3])
    c_in, c_out = groups * draw.int(1, 2), groups * draw.int(1, 2)
    if draw.chance(0.03):
        c_in += 1
    k = [draw.int(1, 4) for _ in range(nd)]
    size = [draw.int(1 if draw.chance(0.1) else 3, 7 if nd < 3 else 5) for _ in range(nd)]
    batch = draw.pick([1, 2, 2, 0])
    unbatched = draw.chance(0.08)
    stride = per_dim_arg(draw, nd, 1, 3)
    dilation = per_dim_arg(draw, nd, 1, 2)
    padding = padding_arg(draw, nd)
    mode = draw.pick(["zeros"] * 6 + ["reflect", "replicate", "circular"])
    flip = draw.chance(0.15)
    algorithm = draw.pick(ALGORITHM_NAMES)
    dtype = dtype_of(draw, floating_only)
    seed = draw.seed()
    x = tensor(([] if unbatched else [batch]) + [c_in] + size, dtype, seed)
    w = tensor([c_out, max(c_in // groups, 1)] + k, dtype, seed + 1)
    b = tensor([c_out], dtype, seed + 2) if draw.chance(0.5) else None
    form = draw.pick(["conv", "fixed", "fixed", "module"])
    name = (f"conv{nd}d(x{list(x.shape)}, w{list(w.shape)}, bias={b is not None}, stride={stride}, "
            f"padding={padding!r}, dilation={dilation}, groups={groups}, padding_mode={mode!r}, flip={flip}, "
            f"algorithm={algorithm!r}, {dtype}) via {form}")
    ops = ("conv", f"conv{nd}d", f"Conv{nd}d")
    owner = "algorithms" if algorithm not in ("auto", "native") else "errors"
    if form == "module":
        module_dtype = dtype if dtype.is_floating_point else None

        def make() -> torch.nn.Module:
            return getattr(cnn, f"Conv{nd}d")(c_in, c_out, tuple(k), stride, padding, dilation, groups, b is not None,
                                              mode, dtype=module_dtype if dtype != torch.bool else dtype,
                                              flip=flip, algorithm=algorithm)

        build = _module_runner(make, seed)

        def expect() -> tuple[Any, torch.dtype]:
            try:
                m = build()
            except Exception:  # noqa: BLE001  (the oracle decides from the arguments)
                return O.conv_expect(x, w.double(), None, stride, padding, dilation, groups, mode, flip)
            return O.conv_expect(x, m.weight.detach(), None if m.bias is None else m.bias.detach(), stride, padding,
                                 dilation, groups, mode, flip)

        def scale() -> Tensor:
            m = build()
            y, _ = O.conv_expect(O.f64(x).abs(), m.weight.detach().double().abs(),
                                 None if m.bias is None else m.bias.detach().double().abs(),
                                 stride, padding, dilation, groups, mode, False)
            return y

        case = Case("random", name, ops, CONV_PARAMS, lambda: build()(x), expect, scale, owner)
        built = Built(case, [x], _documented_nan(algorithm))
        built.weight = lambda: build().weight.detach()
        return built
    fn = CF.conv if form == "conv" else getattr(CF, f"conv{nd}d")

    def scale() -> Tensor:
        y, _ = O.conv_expect(O.f64(x).abs(), O.f64(w).abs(), None if b is None else O.f64(b).abs(), stride,
                             padding, dilation, groups, mode, False)
        return y

    case = Case(
        "random", name, ops, CONV_PARAMS,
        lambda: fn(x, w, b, stride, padding, dilation, groups, padding_mode=mode, flip=flip, algorithm=algorithm),
        lambda: O.conv_expect(x, w, b, stride, padding, dilation, groups, mode, flip), scale, owner,
    )
    return Built(case, [x, w], _documented_nan(algorithm), _padded(padding, nd, size, k, stride, dilation))


def conv_transpose_case(draw: Draw, floating_only: bool = False) -> Built:
    nd = draw.int(1, 3)
    groups = draw.pick([1, 1, 2])
    c_in, c_out = groups * draw.int(1, 2), groups * draw.int(1, 2)
    k = [draw.int(1, 4) for _ in range(nd)]
    size = [draw.int(1, 5 if nd < 3 else 3) for _ in range(nd)]
    batch = draw.pick([1, 2, 0])
    stride = per_dim_arg(draw, nd, 1, 3)
    dilation = per_dim_arg(draw, nd, 1, 2)
    padding = padding_arg(draw, nd, same=draw.chance(0.05))
    output_padding = per_dim_arg(draw, nd, 0, 2, (-1, 3))
    algorithm = draw.pick(ALGORITHM_NAMES)
    dtype = dtype_of(draw, floating_only)
    seed = draw.seed()
    x = tensor([batch, c_in] + size, dtype, seed)
    w = tensor([c_in, c_out // groups] + k, dtype, seed + 1)
    b = tensor([c_out], dtype, seed + 2) if draw.chance(0.5) else None
    form = draw.pick(["conv_transpose", "fixed", "fixed"])
    fn = CF.conv_transpose if form == "conv_transpose" else getattr(CF, f"conv_transpose{nd}d")
    name = (f"conv_transpose{nd}d(x{list(x.shape)}, w{list(w.shape)}, bias={b is not None}, stride={stride}, "
            f"padding={padding!r}, output_padding={output_padding}, groups={groups}, dilation={dilation}, "
            f"algorithm={algorithm!r}, {dtype}) via {form}")

    def scale() -> Tensor:
        y, _ = O.conv_transpose_expect(O.f64(x).abs(), O.f64(w).abs(), None if b is None else O.f64(b).abs(),
                                       stride, padding, output_padding, groups, dilation)
        return y

    case = Case(
        "random", name, ("conv_transpose", f"conv_transpose{nd}d"), CONV_PARAMS,
        lambda: fn(x, w, b, stride, padding, output_padding, groups, dilation, algorithm=algorithm),
        lambda: O.conv_transpose_expect(x, w, b, stride, padding, output_padding, groups, dilation), scale,
        "algorithms" if algorithm not in ("auto", "native") else "errors",
    )
    return Built(case, [x, w], _documented_nan(algorithm))


# ----------------------------------------------------------------------------- pooling


def _pool_input(draw: Draw, nd: int, dtype: torch.dtype, seed: int, positive: bool = False) -> Tensor:
    size = [draw.int(1 if draw.chance(0.1) else 2, 7 if nd < 3 else 5) for _ in range(nd)]
    lead = [] if draw.chance(0.08) else [draw.pick([1, 2, 2, 0])]
    return tensor(lead + [draw.int(1, 3)] + size, dtype, seed, positive)


def _max_scale(x: Tensor) -> Callable[[], float]:
    def scale() -> float:
        a = O.f64(x).abs()
        a = a[torch.isfinite(a)]
        return float(a.max()) if a.numel() else 1.0

    return scale


def pool_case(draw: Draw, floating_only: bool = False) -> Built:
    kind = draw.pick(["max", "max", "avg", "avg", "lp", "adaptive_max", "adaptive_avg", "global_max", "global_avg",
                      "pool", "spp", "shuffle", "separable"])
    nd = draw.int(1, 3)
    dtype = dtype_of(draw, floating_only)
    seed = draw.seed()
    form = draw.pick(["generic", "fixed", "fixed", "module"])
    x = _pool_input(draw, nd, dtype, seed, positive=kind == "lp")
    scale = _max_scale(x)
    fixed_nd = None if form == "generic" else nd  # the N-d forms infer it, as the oracle then does
    if kind == "max":
        k = per_dim_arg(draw, nd, 1, 3)
        k = tuple(k) if isinstance(k, tuple) else (k,) * nd if form == "generic" and nd > 1 else k
        stride = None if draw.chance(0.3) else per_dim_arg(draw, nd, 1, 3)
        padding, dilation = padding_arg(draw, nd, 1), per_dim_arg(draw, nd, 1, 2)
        ceil, indices = draw.chance(0.3), draw.chance(0.3)
        ops = ("max_pool", f"max_pool{nd}d", f"MaxPool{nd}d")
        name = (f"max_pool{nd}d(x{list(x.shape)}, {k}, {stride}, {padding!r}, dilation={dilation}, ceil_mode={ceil}, "
                f"return_indices={indices}, {dtype}) via {form}")
        if form == "module":
            build = _module_runner(lambda: getattr(cnn, f"MaxPool{nd}d")(k, stride, padding, dilation, indices, ceil), seed)
            run = lambda: build()(x)  # noqa: E731
        else:
            fn = CF.max_pool if form == "generic" else getattr(CF, f"max_pool{nd}d")
            run = lambda: fn(x, k, stride, padding, dilation, ceil, indices)  # noqa: E731
        expect = lambda: O.max_pool_expect(x, k, stride, padding, dilation, ceil, indices, fixed_nd)  # noqa: E731
    elif kind == "avg":
        k = per_dim_arg(draw, nd, 1, 3)
        k = tuple(k) if isinstance(k, tuple) else (k,) * nd if form == "generic" and nd > 1 else k
        stride = None if draw.chance(0.3) else per_dim_arg(draw, nd, 1, 3)
        padding = padding_arg(draw, nd, 1)
        ceil, cip = draw.chance(0.3), draw.chance(0.5)
        divisor = None if draw.chance(0.8) else draw.pick([1, 2, 3, -2, 0])
        ops = ("avg_pool", f"avg_pool{nd}d", f"AvgPool{nd}d")
        name = (f"avg_pool{nd}d(x{list(x.shape)}, {k}, {stride}, {padding!r}, ceil_mode={ceil}, "
                f"count_include_pad={cip}, divisor_override={divisor}, {dtype}) via {form}")
        if form == "module":
            build = _module_runner(lambda: getattr(cnn, f"AvgPool{nd}d")(k, stride, padding, ceil, cip, divisor), seed)
            run = lambda: build()(x)  # noqa: E731
        else:
            fn = CF.avg_pool if form == "generic" else getattr(CF, f"avg_pool{nd}d")
            run = lambda: fn(x, k, stride, padding, ceil, cip, divisor)  # noqa: E731
        expect = lambda: O.avg_pool_expect(x, k, stride, padding, ceil, cip, divisor, fixed_nd)  # noqa: E731
    elif kind == "lp":
        p = draw.pick([1, 2, 3, 1.5, math.inf, -math.inf, -1, 0])
        k = per_dim_arg(draw, nd, 1, 3)
        k = tuple(k) if isinstance(k, tuple) else (k,) * nd if form == "generic" and nd > 1 else k
        stride = None if draw.chance(0.3) else per_dim_arg(draw, nd, 1, 3)
        ceil = draw.chance(0.2)
        ops = ("lp_pool", f"lp_pool{nd}d", f"LPPool{nd}d")
        name = f"lp_pool{nd}d(x{list(x.shape)}, {p}, {k}, {stride}, ceil_mode={ceil}, {dtype}) via {form}"
        if form == "module":
            build = _module_runner(lambda: getattr(cnn, f"LPPool{nd}d")(p, k, stride, ceil), seed)
            run = lambda: build()(x)  # noqa: E731
        else:
            fn = CF.lp_pool if form == "generic" else getattr(CF, f"lp_pool{nd}d")
            run = lambda: fn(x, p, k, stride, ceil)  # noqa: E731
        expect = lambda: O.lp_pool_expect(x, p, k, stride, ceil, fixed_nd)  # noqa: E731

        def scale() -> float:  # the p-th root of a window sum: relative to the largest such value
            y, _ = O.lp_pool_expect(O.f64(x).abs(), abs(p) if not math.isinf(p) else math.inf, k, stride, ceil,
                                    fixed_nd)
            return float(y[torch.isfinite(y)].max()) if torch.isfinite(y).any() else 1.0
    elif kind in ("adaptive_max", "adaptive_avg"):
        mode = kind.split("_")[1]
        if draw.chance(0.5):
            size = value(draw, 1, 5, (0,), 0.03)
            size = (size,) * nd if form == "generic" and nd > 1 else size
        else:
            size = tuple(None if draw.chance(0.2) else value(draw, 1, 5, (0,), 0.03) for _ in range(nd))
        indices = mode == "max" and draw.chance(0.4)
        cls = f"Adaptive{mode.capitalize()}Pool{nd}d"
        ops = (f"adaptive_{mode}_pool", f"adaptive_{mode}_pool{nd}d", cls)
        name = f"adaptive_{mode}_pool{nd}d(x{list(x.shape)}, {size}, return_indices={indices}, {dtype}) via {form}"
        generic = getattr(CF, f"adaptive_{mode}_pool")
        fixed = getattr(CF, f"adaptive_{mode}_pool{nd}d")
        extra = (indices,) if mode == "max" else ()
        if form == "module":
            build = _module_runner(lambda: getattr(cnn, cls)(size, *extra), seed)
            run = lambda: build()(x)  # noqa: E731
        else:
            fn = generic if form == "generic" else fixed
            run = lambda: fn(x, size, *extra)  # noqa: E731
        expect = lambda: O.adaptive_expect(x, size, mode, indices, fixed_nd)  # noqa: E731
    elif kind in ("global_max", "global_avg"):
        mode, keepdim = kind.split("_")[1], draw.chance(0.5)
        ops = (f"global_{mode}_pool", f"Global{mode.capitalize()}Pool")
        name = f"global_{mode}_pool(x{list(x.shape)}, keepdim={keepdim}, {dtype})"
        fn = getattr(CF, f"global_{mode}_pool")
        run = lambda: fn(x, keepdim)  # noqa: E731
        expect = lambda: O.global_expect(x, mode, keepdim)  # noqa: E731
    elif kind == "pool":
        reduce = draw.pick(["max", "min", "mean", "sum"])
        k = tuple(value(draw, 1, 3) for _ in range(nd)) if x.dim() == nd + 1 else per_dim_arg(draw, nd, 1, 3)
        stride = None if draw.chance(0.3) else per_dim_arg(draw, nd, 1, 3)
        padding, dilation = padding_arg(draw, nd, 1), per_dim_arg(draw, nd, 1, 2)
        ops = ("pool", "Pool")
        name = f"pool(x{list(x.shape)}, {k}, {stride}, {padding!r}, reduce={reduce!r}, dilation={dilation}, {dtype})"
        run = lambda: CF.pool(x, k, stride, padding, reduce=reduce, dilation=dilation)  # noqa: E731
        expect = lambda: O.generic_pool_expect(x, k, stride, padding, reduce=reduce, dilation=dilation)  # noqa: E731
    elif kind == "spp":
        levels = draw.pick([(1,), (1, 2), (1, 2, 4), (2, 3), (0,), ()])
        mode, bins = draw.pick(["max", "avg"]), draw.pick(["adaptive", "paper"])
        ops = ("spatial_pyramid_pool", "SpatialPyramidPool")
        name = f"spatial_pyramid_pool(x{list(x.shape)}, {levels}, {mode!r}, bins={bins!r}, {dtype})"
        run = lambda: CF.spatial_pyramid_pool(x, levels, mode, bins=bins)  # noqa: E731
        expect = lambda: O.spp_expect(x, levels, mode, bins)  # noqa: E731
    elif kind == "shuffle":
        groups = draw.pick([1, 2, 3, 0])
        x = tensor([2, draw.pick([2, 3, 4, 6]), *([3] * (nd - 1))], dtype, seed)
        ops = ("channel_shuffle", "ChannelShuffle")
        name = f"channel_shuffle(x{list(x.shape)}, {groups}, {dtype})"
        run = lambda: CF.channel_shuffle(x, groups)  # noqa: E731
        expect = lambda: O.shuffle_expect(x, groups)  # noqa: E731
    else:
        c = x.shape[-nd - 1]
        m, c_out = draw.int(1, 2), draw.int(1, 3)
        kk = [draw.int(1, 3) for _ in range(nd)]
        dw = tensor([c * m, 1] + kk, dtype, seed + 1)
        pw = tensor([c_out, c * m] + [1] * nd, dtype, seed + 2)
        stride, padding, dilation = per_dim_arg(draw, nd, 1, 2), padding_arg(draw, nd), per_dim_arg(draw, nd, 1, 2)
        ops = ("depthwise_separable_conv", "DepthwiseSeparableConv1d", "DepthwiseSeparableConv2d",
               "DepthwiseSeparableConv3d")
        name = (f"depthwise_separable_conv(x{list(x.shape)}, dw{list(dw.shape)}, pw{list(pw.shape)}, {stride}, "
                f"{padding!r}, {dilation}, {dtype})")
        run = lambda: CF.depthwise_separable_conv(x, dw, pw, None, None, stride, padding, dilation)  # noqa: E731
        expect = lambda: O.depthwise_separable_expect(x, dw, pw, stride, padding, dilation)  # noqa: E731

        def scale() -> Tensor:
            y, _ = O.depthwise_separable_expect(O.f64(x).abs(), O.f64(dw).abs(), O.f64(pw).abs(), stride, padding,
                                                dilation)
            return y

        return Built(Case("random", name, ops, CONV_PARAMS + ("depthwise_weight", "pointwise_weight"), run, expect,
                          scale), [x, dw], padded=_padded(padding, nd, list(x.shape[-nd:]), kk, stride, dilation))
    return Built(Case("random", name, ops, POOL_PARAMS, run, expect, scale), [x])


def random_case(draw: Draw, floating_only: bool = False) -> Built:
    """One random configuration: convolutions about half the time, pooling and the rest otherwise."""
    family = draw.pick(["conv", "conv", "conv_transpose", "pool", "pool", "pool"])
    if family == "conv":
        return conv_case(draw, floating_only)
    if family == "conv_transpose":
        return conv_transpose_case(draw, floating_only)
    return pool_case(draw, floating_only)


def nonfinite_case(draw: Draw) -> Optional[Built]:
    """A valid floating configuration with NaN, +inf or -inf at a few places of its input (and
    of a conv's weight); None when the drawn configuration is not valid."""
    built = random_case(draw, floating_only=True)
    try:
        built.case.expect()
    except O.Invalid:
        return None
    kinds = [math.nan, math.inf, -math.inf]
    for t in built.tensors:
        if t.numel() == 0 or (t is not built.tensors[0] and not draw.chance(0.3)):
            continue
        flat = t.view(-1)
        for _ in range(draw.int(1, 3)):
            flat[draw.int(0, t.numel() - 1)] = draw.pick(kinds)
    case = built.case
    case.category = "nonfinite"
    case.name = "NaN/Inf in " + case.name
    if "conv" in case.ops[0] or "separable" in case.ops[0]:
        case.owner = "algorithms"  # NaN/Inf locality of the algorithms is their part of issue 16
    return built


LARGE = (((1, 16, 64, 64), 21, 16), ((1, 4, 256), 65, 4), ((1, 32, 32, 32), 31, 32), ((2, 16, 48, 48), 15, 1))


def large_kernel_case(draw: Draw, poison: str) -> Built:
    """``algorithm="auto"`` where it may choose a fast algorithm (large kernels): with NaN/Inf in
    the input ("nonfinite"), or one finite value 1e8 ("range": outputs that never read it must
    keep native's error bound)."""
    shape, k, groups = draw.pick(LARGE)
    nd = len(shape) - 2
    dtype = draw.pick([torch.float32, torch.float64])
    seed = draw.seed()
    x = tensor(list(shape), dtype, seed)
    w = tensor([shape[1], shape[1] // groups] + [k] * nd, dtype, seed + 1)
    flat = x.view(-1)
    for _ in range(draw.int(1, 3)):
        where = draw.int(0, x.numel() - 1)
        flat[where] = draw.pick([math.nan, math.inf, -math.inf]) if poison == "nonfinite" else 1e8
    name = f"{'NaN/Inf' if poison == 'nonfinite' else '1e8'} in conv{nd}d(x{list(shape)}, k={k}, groups={groups}, padding='same', {dtype}) auto"

    def scale() -> Tensor:
        return O.conv_expect(O.f64(x).abs(), O.f64(w).abs(), None, 1, "same", 1, groups)[0]

    case = Case(poison, name, (f"conv{nd}d",), CONV_PARAMS, lambda: CF.conv(x, w, padding="same", groups=groups),
                lambda: O.conv_expect(x, w, None, 1, "same", 1, groups), scale, "algorithms")
    return Built(case, [])


def range_case(draw: Draw) -> Optional[Built]:
    """A valid floating random configuration with one input value of 1e8 (dynamic range)."""
    built = random_case(draw, floating_only=True)
    if not any(op.startswith(("conv", "Conv", "depthwise")) for op in built.case.ops):
        return None
    try:
        built.case.expect()
    except O.Invalid:
        return None
    x = built.tensors[0]
    if x.numel() == 0:
        return None
    x.view(-1)[draw.int(0, x.numel() - 1)] = 1e8
    built.case.category = "range"
    built.case.name = "1e8 in " + built.case.name
    return built
