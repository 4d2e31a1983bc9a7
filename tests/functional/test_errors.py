"""Clear errors instead of torch's (issue 16): torch's 3-D average pooling bug, the dtype rule,
torch's 32-bit window arguments and the memory estimate, each against what today's torch does."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import convolab.functional as CF
import convolab.nn as cnn
from tests._reference import pool_loop

# --- torch's avg_pool3d refuses an unpadded input smaller than the kernel ----------------------


def _pads(form, nd):
    return {"0": 0, "1": 1, "pairs": tuple((1, 0) if j % 2 else (0, 1) for j in range(nd)), "same": "same",
            "valid": "valid"}[form]


def _valid(size, k, s, pairs, ceil):
    if any(max(p) > k // 2 for p in pairs):
        return False
    for i, (b, a) in zip(size, pairs):
        span = i + b + a - k
        o = (-(-span // s) if ceil else span // s) + 1
        if ceil and (o - 1) * s >= i + b:
            o -= 1
        if o < 1:
            return False
    return True


def _resolve(form, size, k, s):
    from convolab import arithmetic

    return arithmetic.resolve_padding(_pads(form, 3), size, (k,) * 3, (s,) * 3, (1,) * 3)


# every 3-D input with a dim smaller than the kernel whose padded input the windows fit
AVG3D = [
    (size, k, s, form, ceil, cip)
    for size in itertools.product((1, 2), (1, 2), (1, 3))
    for k, s, form, ceil, cip in itertools.product((2, 3), (1, 2), ("0", "1", "pairs", "same", "valid"),
                                                   (False, True), (True, False))
    if any(i < k for i in size) and _valid(size, k, s, _resolve(form, size, k, s), ceil)
]


def test_avg3d_grid_holds_the_issue_case():
    assert ((2, 1, 1), 2, 2, "1", False, True) in AVG3D and len(AVG3D) > 100
    with pytest.raises(RuntimeError, match="smaller than kernel size"):  # torch itself refuses
        F.avg_pool3d(torch.randn(1, 1, 2, 1, 1), 2, padding=1)


@pytest.mark.parametrize("size,k,s,form,ceil,cip", AVG3D)
def test_avg_pool3d_on_inputs_smaller_than_the_kernel(size, k, s, form, ceil, cip):
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    pairs = _resolve(form, size, k, s)
    ref, _ = pool_loop(x.numpy(), (k,) * 3, s, pairs, 1, ceil, mode="avg", count_include_pad=cip)
    y = CF.avg_pool3d(x, k, s, _pads(form, 3), ceil, cip)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)
    module = cnn.AvgPool3d(k, s, _pads(form, 3), ceil, cip)
    torch.testing.assert_close(module(x), y, rtol=0, atol=0)


@pytest.mark.parametrize("ceil", [False, True])
def test_lp_pool3d_and_gradients_on_inputs_smaller_than_the_kernel(ceil):
    x = torch.rand(1, 2, 2, 1, 3, dtype=torch.float64) + 0.5
    ref, _ = pool_loop(x.numpy(), (2, 2, 2), 2, 0, 1, ceil, mode="lp", reduce=2)
    if ceil:  # torch's lp_pool scales a hanging window's mean; convolab sums what it covers
        np.testing.assert_allclose(CF.lp_pool3d(x, 2, 2, 2, ceil).numpy(), ref, rtol=1e-12)
    else:
        with pytest.raises(ValueError, match=r"lp_pool3d: output size would be 0 along dim 3"):
            CF.lp_pool3d(x, 2, 2, 2, ceil)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: CF.avg_pool3d(t, 2, 1, 1, count_include_pad=False), (x,))
    assert torch.autograd.gradcheck(lambda t: CF.avg_pool3d(t, 3, 2, ((1, 1), (0, 1), (1, 0)), True), (x,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_avg_pool3d_in_half_precision(dtype):
    # torch's 3-D CPU kernel has no float16/bfloat16: "avg_pool3d_out_frame" not implemented
    x = torch.randn(1, 2, 4, 5, 6).to(dtype)
    with pytest.raises(NotImplementedError):
        F.avg_pool3d(x, 2)
    for args in [(2,), (3, 2, 1), (2, 1, ((1, 0), (0, 1), (1, 1)))]:
        y = CF.avg_pool3d(x, *args)
        assert y.dtype == dtype
        torch.testing.assert_close(y, CF.avg_pool3d(x.float(), *args).to(dtype), rtol=0, atol=0)
    assert CF.lp_pool3d(x, 2, 2).dtype == dtype
    assert CF.spatial_pyramid_pool(x, (1, 2), "avg", bins="paper").dtype == dtype
    assert cnn.AvgPool3d(2, padding=1).to(dtype)(x).dtype == dtype


# --- the dtype rule ----------------------------------------------------------------------------

FLOATING = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
INTEGER = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]
OTHER = [torch.bool, torch.uint16, torch.uint32, torch.uint64, torch.complex64, torch.complex128]
FLOATING_MSG = r"input dtype must be floating \(float16, bfloat16, float32 or float64\), got "
MAX_MSG = r"input dtype must be floating or integer \(float16, bfloat16, float32, float64, uint8, int8, int16, int32 or int64\), got "


def _x(dtype, *shape):
    x = torch.randint(0, 6, shape)
    return x.to(dtype) if dtype != torch.bool else x > 2


def _w(dtype, *shape):
    return torch.randint(-2, 3, shape).to(dtype)


# name -> (kind, function of (input dtype) returning (run(x), input shape)); "max": floating and integer
DTYPE_OPS = {
    "conv1d": ("floating", lambda d: (lambda x: CF.conv1d(x, _w(d, 2, 3, 3), padding=1), (2, 3, 7))),
    "conv2d": ("floating", lambda d: (lambda x: CF.conv2d(x, _w(d, 2, 3, 3, 3), _w(d, 2), padding=((1, 0), (0, 1))),
                                      (2, 3, 5, 6))),
    "conv3d": ("floating", lambda d: (lambda x: CF.conv3d(x, _w(d, 2, 3, 2, 2, 2)), (1, 3, 3, 4, 3))),
    "conv_transpose2d": ("floating", lambda d: (lambda x: CF.conv_transpose2d(x, _w(d, 3, 2, 3, 3), stride=2),
                                                (2, 3, 4, 5))),
    "max_pool1d": ("max", lambda d: (lambda x: CF.max_pool1d(x, 3, 2, 1), (2, 3, 9))),
    "max_pool2d": ("max", lambda d: (lambda x: CF.max_pool2d(x, 3, 2, "same"), (2, 3, 8, 9))),
    "max_pool3d": ("max", lambda d: (lambda x: CF.max_pool3d(x, 2, 1, ((1, 0), (0, 1), (0, 0)), return_indices=True),
                                     (1, 2, 3, 4, 3))),
    "avg_pool1d": ("floating", lambda d: (lambda x: CF.avg_pool1d(x, 3, 2, 1), (2, 3, 9))),
    "avg_pool2d": ("floating", lambda d: (lambda x: CF.avg_pool2d(x, 3, 2, ((1, 0), (1, 1)), False, False),
                                          (2, 3, 8, 9))),
    "avg_pool3d": ("floating", lambda d: (lambda x: CF.avg_pool3d(x, 2, padding=1), (1, 2, 3, 4, 3))),
    "lp_pool2d": ("floating", lambda d: (lambda x: CF.lp_pool2d(x, 2, 2), (2, 3, 6, 6))),
    "adaptive_max_pool1d": ("max", lambda d: (lambda x: CF.adaptive_max_pool1d(x, 4, return_indices=True), (2, 3, 9))),
    "adaptive_max_pool2d": ("max", lambda d: (lambda x: CF.adaptive_max_pool2d(x, (3, None)), (2, 3, 7, 5))),
    "adaptive_max_pool3d": ("max", lambda d: (lambda x: CF.adaptive_max_pool3d(x, 2, True), (1, 2, 3, 5, 4))),
    "adaptive_avg_pool2d": ("floating", lambda d: (lambda x: CF.adaptive_avg_pool2d(x, 3), (2, 3, 7, 5))),
    "global_max_pool": ("max", lambda d: (lambda x: CF.global_max_pool(x), (2, 3, 4, 5))),
    "global_avg_pool": ("floating", lambda d: (lambda x: CF.global_avg_pool(x), (2, 3, 4, 5))),
    "pool-max": ("max", lambda d: (lambda x: CF.pool(x, 3, 2, "same", reduce="max"), (2, 3, 7, 8))),
    "pool-min": ("max", lambda d: (lambda x: CF.pool(x, (2, 2), 1, 1, reduce="min"), (2, 3, 5, 4))),
    "pool-mean": ("floating", lambda d: (lambda x: CF.pool(x, 2, reduce="mean"), (2, 3, 6, 6))),
    "pool-sum": ("floating", lambda d: (lambda x: CF.pool(x, 2, reduce="sum"), (2, 3, 6, 6))),
    "pool-callable": ("floating", lambda d: (lambda x: CF.pool(x, 2, reduce=torch.logsumexp), (2, 3, 6, 6))),
    "spp-max": ("max", lambda d: (lambda x: CF.spatial_pyramid_pool(x, (1, 2, 3)), (2, 3, 7, 7))),
    "spp-max-paper": ("max", lambda d: (lambda x: CF.spatial_pyramid_pool(x, (1, 2), bins="paper"), (2, 3, 9))),
    "spp-avg": ("floating", lambda d: (lambda x: CF.spatial_pyramid_pool(x, (1, 2), "avg"), (2, 3, 7, 7))),
    "depthwise_separable_conv": ("floating", lambda d: (
        lambda x: CF.depthwise_separable_conv(x, _w(d, 3, 1, 3, 3), _w(d, 4, 3, 1, 1)), (2, 3, 5, 5))),
    "spatially_separable_conv": ("floating", lambda d: (
        lambda x: CF.spatially_separable_conv(x, [_w(d, 2, 3, 3, 1), _w(d, 2, 2, 1, 3)]), (2, 3, 5, 5))),
    "channel_shuffle": ("any", lambda d: (lambda x: CF.channel_shuffle(x, 3), (2, 6, 2, 3))),
}
OP_NAME = {"pool-max": "pool", "pool-min": "pool", "pool-mean": "pool", "pool-sum": "pool", "pool-callable": "pool",
           "spp-max": "spatial_pyramid_pool", "spp-max-paper": "spatial_pyramid_pool",
           "spp-avg": "spatial_pyramid_pool"}


def _supported(kind, dtype):
    return kind == "any" or dtype in FLOATING or (kind == "max" and dtype in INTEGER)


def _first(y):
    return y if isinstance(y, torch.Tensor) else y[0]


def _f64(t):
    return (t.real if t.is_complex() else t).to(torch.float64)


@pytest.mark.parametrize("dtype", FLOATING + INTEGER + OTHER, ids=str)
@pytest.mark.parametrize("name", list(DTYPE_OPS))
def test_dtype_rule(name, dtype):
    kind, make = DTYPE_OPS[name]
    torch.manual_seed(0)
    run, shape = make(dtype)
    x = _x(dtype, *shape)
    if not _supported(kind, dtype):
        msg = FLOATING_MSG if kind == "floating" else MAX_MSG
        with pytest.raises(TypeError, match=rf"^{OP_NAME.get(name, name)}: {msg}{dtype}"):
            run(x)
        return
    torch.manual_seed(1)  # the weights, drawn when the op runs
    y = run(x)
    assert _first(y).dtype == dtype  # one result dtype: the input's, on every path
    # the same values as the op computes in float64 (exact for integers and small-integer floats)
    run64, _ = make(torch.float64)
    torch.manual_seed(1)
    ref = run64(_f64(x))
    tol = 0.05 if dtype in (torch.float16, torch.bfloat16) else 1e-6
    torch.testing.assert_close(_f64(_first(y)), _first(ref), rtol=tol, atol=tol)
    if isinstance(y, tuple):
        torch.testing.assert_close(y[1], ref[1], rtol=0, atol=0)


def test_dtype_rule_names_the_cast_and_module_construction():
    with pytest.raises(TypeError, match=r"avg_pool2d: input dtype must be floating .*got torch.int64 \(cast with input.float\(\)\)"):
        CF.avg_pool2d(torch.ones(1, 1, 4, 4, dtype=torch.int64), 2)
    with pytest.raises(TypeError, match=r"conv2d: input dtype must be floating .*got torch.complex64$"):
        CF.conv2d(torch.ones(1, 1, 4, 4, dtype=torch.complex64), torch.ones(1, 1, 3, 3, dtype=torch.complex64))
    with pytest.raises(TypeError, match=r"conv2d: input dtype \(torch.float32\) must equal weight dtype \(torch.int64\)"):
        CF.conv2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3, dtype=torch.int64))
    for module, args in [(cnn.Conv2d, (2, 2, 3)), (cnn.ConvTranspose1d, (2, 2, 3)), (cnn.PointwiseConv2d, (2, 2)),
                         (cnn.DepthwiseSeparableConv2d, (2, 2, 3)), (cnn.FlattenedConv3d, (2, 2, 3)),
                         (cnn.SpatiallySeparableConv2d, (2, 2, 3))]:
        with pytest.raises(TypeError, match=rf"^{module.__name__}: dtype must be floating \(float16, bfloat16, "
                                            rf"float32 or float64\), got torch.int64"):
            module(*args, dtype=torch.int64)
        assert module(*args, dtype=torch.float64)(torch.randn(1, 2, 5, 5, 5)[(..., *(0,) * (3 - module.ndim))]
                                                  .double()).dtype == torch.float64
    with pytest.raises(TypeError, match=r"Conv2d: dtype must be a torch.dtype or None, got 'float32'"):
        cnn.Conv2d(2, 2, 3, dtype="float32")


@pytest.mark.parametrize("padding", [0, 1, ((1, 0), (0, 1)), "same"], ids=str)
def test_result_dtype_does_not_depend_on_the_padding_form(padding):
    ints = torch.arange(64, dtype=torch.int32).view(1, 1, 8, 8)
    y, i = CF.max_pool2d(ints, 3, 2, padding, return_indices=True)
    ref, ref_i = CF.max_pool2d(ints.double(), 3, 2, padding, return_indices=True)
    assert y.dtype == torch.int32 and i.dtype == torch.int64
    assert torch.equal(y, ref.int()) and torch.equal(i, ref_i)
    for algorithm in ("native", "im2col", "direct", "auto"):
        with pytest.raises(TypeError, match=r"conv2d: input dtype must be floating .*got torch.bool"):
            CF.conv2d(ints > 3, ints[:, :, :3, :3] > 3, padding=padding, algorithm=algorithm)
    for f in (lambda t: CF.avg_pool2d(t, 3, 2, padding), lambda t: CF.lp_pool2d(t, 2, 2)):
        for dtype in (torch.int64, torch.bool):
            with pytest.raises(TypeError, match=r"_pool2d: input dtype must be floating"):
                f(ints.to(dtype))


def test_pool_pad_value_must_fit_an_integer_input():
    ints = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
    assert CF.pool(ints, 3, 1, 1, reduce="max", pad_value=200).max().item() == 200
    assert CF.pool(ints, 3, 1, 1, reduce="min", pad_value=float("-inf")).min().item() == 0
    with pytest.raises(ValueError, match=r"pool: pad_value must be a whole number in \[0, 255\] \(or \+-inf\) for torch.uint8 input, got 0.5"):
        CF.pool(ints, 3, 1, 1, reduce="max", pad_value=0.5)
    with pytest.raises(ValueError, match=r"pool: pad_value must be a whole number in \[0, 255\].*got -1"):
        CF.pool(ints, 3, 1, 1, reduce="max", pad_value=-1)
    with pytest.raises(TypeError, match=r"pool: pad_value must be a number or None, got 'zero'"):
        CF.pool(ints.float(), 3, 1, 1, reduce="max", pad_value="zero")


def test_a_window_that_reads_only_padding_is_refused():
    # torch: -inf with index 1, outside the 1-element input (and -1 on the explicit padding path)
    x = torch.tensor([[[0.5]]])
    assert F.max_pool1d(x, 2, 2, 1, 2, True, True)[1].item() == 1
    message = (r"max_pool1d: dilation \(2\) steps over the whole input along dim 2 \(size 1\): the window of output "
               r"0 \(kernel 2, padding \(1, 1\), stride 2\) reads only padding; use a dilation <= 1 or less padding")
    with pytest.raises(ValueError, match=message):
        CF.max_pool1d(x, 2, 2, 1, 2, True, True)
    with pytest.raises(ValueError, match=r"MaxPool2d: dilation \(3\) steps over the whole input along dim 3 \(size 2\)"):
        cnn.MaxPool2d(2, 1, 1, 3)(torch.randn(1, 1, 5, 2))
    with pytest.raises(ValueError, match=r"pool: dilation \(3\) steps over"):
        CF.pool(torch.randn(1, 1, 2), 2, 1, 1, reduce="mean", dilation=3)
    # a dilation larger than the input is fine while every window still reads it
    assert CF.max_pool1d(torch.tensor([[[1.0, 2.0]]]), 2, 1, 1, 2).tolist() == [[[2.0, 1.0]]]


def test_min_pooling_pads_int64_with_its_maximum():
    # F.pad takes its value as a double: int64's maximum wrapped around to its minimum
    x = torch.arange(1, 17, dtype=torch.int64).view(1, 1, 4, 4)
    ref = CF.pool(x.double(), 2, 1, 1, reduce="min")
    assert torch.equal(CF.pool(x, 2, 1, 1, reduce="min"), ref.long())
    big = 2**62 + 1  # no double holds it
    assert CF.pool(x, 3, 1, 1, reduce="max", pad_value=big)[0, 0, 0, 0].item() == big
    assert CF.pool(x, (2, 2), 1, ((1, 0), (0, 1)), reduce="min").tolist() == ref[..., :4, 1:].long().tolist()


def test_channel_shuffle_takes_every_dtype():
    for dtype in FLOATING + INTEGER + OTHER:
        x = _x(dtype, 1, 6, 2)
        y = CF.channel_shuffle(x, 2)
        assert y.dtype == dtype and torch.equal(_f64(y[0, :, 0]), _f64(x[0, [0, 3, 1, 4, 2, 5], 0]))
    with pytest.raises(TypeError, match=r"channel_shuffle: input must be a torch.Tensor, got list"):
        CF.channel_shuffle([1, 2], 2)


# --- arguments torch's kernels cannot hold -----------------------------------------------------


def test_conv_transpose_accepts_numpy_groups():
    x, w = torch.randn(1, 4, 3, 3), torch.randn(4, 1, 3, 3)
    y = CF.conv_transpose2d(x, w, groups=np.int64(2))
    torch.testing.assert_close(y, F.conv_transpose2d(x, w, groups=2))
    assert cnn.ConvTranspose2d(4, 2, 3, groups=np.int64(2))(x).shape == (1, 2, 5, 5)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_adaptive_pool1d_keeps_a_dim_given_as_none(mode):
    x = torch.randn(2, 3, 7)
    op = CF.adaptive_max_pool1d if mode == "max" else CF.adaptive_avg_pool1d
    for size in [(None,), None]:
        torch.testing.assert_close(op(x, size), x)
    module = cnn.AdaptiveMaxPool1d((None,)) if mode == "max" else cnn.AdaptiveAvgPool1d((None,))
    torch.testing.assert_close(module(x), x)


def test_malformed_arguments_the_campaign_found():
    # each gave a Python or torch error from deep inside before
    x, w = torch.randn(1, 4, 3, 4), torch.randn(4, 3, 3, 3)
    for size in ["68", (6.0, 8.0), 7]:
        with pytest.raises(TypeError, match=r"conv_transpose2d: output_size must be a sequence of ints \(the spatial "
                                            r"sizes, or \[N, C, \*spatial\]\), got "):
            CF.conv_transpose2d(x, w, stride=2, output_size=size)
    assert CF.conv_transpose2d(x, w, stride=2, output_size=torch.Size([1, 3, 8, 9])).shape == (1, 3, 8, 9)
    with pytest.raises(ValueError, match=r"avg_pool2d: divisor_override must be within \+-\(2\*\*63 - 1\), got 9223372036854775808"):
        CF.avg_pool2d(x, 2, divisor_override=2**63)
    with pytest.raises(ValueError, match=r"AvgPool2d: divisor_override must be within"):
        cnn.AvgPool2d(2, divisor_override=-(2**63))
    with pytest.raises(TypeError, match=r"SpatialPyramidPool: levels must be an int or a sequence of ints, got 1.5"):
        cnn.SpatialPyramidPool((1.5,))


def test_window_arguments_beyond_32_bits():
    x, w = torch.randn(1, 1, 2), torch.randn(1, 1, 3)
    with pytest.raises(ValueError, match=r"conv_transpose1d: stride must be at most 2\*\*31 - 1 = 2147483647 in every dim \(torch's kernels hold it in a 32-bit int\), got 1000000000000"):
        CF.conv_transpose1d(x, w, stride=10**12, algorithm="native")
    with pytest.raises(ValueError, match=r"conv2d: padding must be at most 2\*\*31 - 1 .*got \(\(0, 0\), \(0, 4294967296\)\)"):
        CF.conv2d(torch.randn(1, 1, 3, 3), torch.randn(1, 1, 3, 3), padding=((0, 0), (0, 2**32)))
    with pytest.raises(ValueError, match=r"conv1d: dilation must be at most 2\*\*31 - 1"):
        CF.conv1d(x, w, dilation=2**31)
    with pytest.raises(ValueError, match=r"max_pool2d: kernel_size must be at most 2\*\*31 - 1 .*got \(2, 2147483648\)"):
        CF.max_pool2d(torch.randn(1, 1, 3, 3), (2, 2**31))
    with pytest.raises(ValueError, match=r"adaptive_avg_pool1d: output_size must be at most 2\*\*31 - 1 .*got 4294967296"):
        CF.adaptive_avg_pool1d(x, 2**32)
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding must be at most 2\*\*31 - 1"):
        CF.conv_transpose2d(torch.randn(1, 1, 2, 2), torch.randn(1, 1, 3, 3), output_padding=2**40)
    with pytest.raises(ValueError, match=r"MaxPool1d: stride must be at most 2\*\*31 - 1"):
        cnn.MaxPool1d(2, stride=2**31)
    with pytest.raises(ValueError, match=r"Conv2d: padding must be at most 2\*\*31 - 1"):
        cnn.Conv2d(1, 1, 3, padding=((2**31, 0), (0, 0)))
    # the largest value still goes through: a stride of 2**31 - 1 gives one window
    assert CF.conv1d(torch.randn(1, 1, 5), w, stride=2**31 - 1).shape == (1, 1, 1)


# --- the memory estimate -----------------------------------------------------------------------


def test_memory_limit_is_this_machines():
    from convolab.functional import _checks

    limit = _checks.memory_limit()
    assert limit is not None and limit > 2**26
    assert _checks.format_bytes(1536) == "1.5 KiB" and _checks.format_bytes(3 * 2**40) == "3.0 TiB"


def test_small_outputs_skip_the_memory_check(monkeypatch):
    from convolab.functional import _checks

    monkeypatch.setattr(_checks, "memory_limit", lambda: 4096)  # 64 MiB are always allowed
    assert CF.conv2d(torch.randn(1, 2, 16, 16), torch.randn(4, 2, 3, 3), padding=1).shape == (1, 4, 16, 16)


def test_memory_limit_respects_the_address_space_limit(monkeypatch):
    import resource

    from convolab.functional import _checks

    monkeypatch.setattr(resource, "getrlimit", lambda which: (12345, resource.RLIM_INFINITY))
    assert _checks.memory_limit() == 12345


# what torch does today: the allocator's message after the work began (or a 32-bit overflow);
# every one needs terabytes, so that it is refused on any machine
BOMBS = {
    "conv2d-padding": (lambda: CF.conv2d(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 3, 3), padding=10**6),
                       r"conv2d: input \[1, 1, 4, 4\], kernel \(3, 3\), stride=\(1, 1\), padding=\(\(1000000, 1000000\), "
                       r"\(1000000, 1000000\)\), dilation=\(1, 1\) give output \[1, 1, 2000002, 2000002\], 14.6 TiB of "
                       r"float32 in all, more than the .* of memory this process can use"),
    "conv2d-padding-direct": (lambda: CF.conv2d(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 3, 3), padding=10**6,
                                                algorithm="direct"),
                              r"conv2d: .* give output \[1, 1, 2000002, 2000002\] and padded input \[1, 1, 2000004, "
                              r"2000004\], 29.1 TiB"),
    "conv3d-replicate": (lambda: CF.conv3d(torch.randn(1, 1, 4, 4, 4), torch.randn(64, 1, 1, 1, 1),
                                              padding=((0, 0), (0, 0), (0, 2**31 - 1)), padding_mode="replicate"),
                            r"conv3d: .*padding=\(\(0, 0\), \(0, 0\), \(0, 2147483647\)\).* give output \[1, 64, 4, 4, 2147483651\]"),
    "conv_transpose1d-stride": (lambda: CF.conv_transpose1d(torch.randn(1, 1, 1025), torch.randn(1, 1, 3),
                                                            stride=2**31 - 1),
                                r"conv_transpose1d: input \[1, 1, 1025\], kernel \(3,\), stride=\(2147483647,\), .* give "
                                r"output \[1, 1, 2199023254531\], 8.0 TiB"),
    "conv_transpose1d-stride-fft": (lambda: CF.conv_transpose1d(torch.randn(1, 1, 1025), torch.randn(1, 1, 3),
                                                                stride=2**31 - 1, algorithm="fft"),
                                    r"conv_transpose1d: .* give output \[1, 1, 2199023254531\] and zero-inserted padded "
                                    r"input \[1, 1, 2199023254533\], 16.0 TiB"),
    "conv_transpose2d-dilation": (lambda: CF.conv_transpose2d(torch.randn(1, 1, 8, 8), torch.randn(1, 2, 2, 2),
                                                              dilation=2**30),
                                  r"conv_transpose2d: .*dilation=\(1073741824, 1073741824\) give output \[1, 2, 1073741832, 1073741832\]"),
    "adaptive_max_pool3d": (lambda: CF.adaptive_max_pool3d(torch.randn(1, 1, 2, 2, 2), 10**6, return_indices=True),
                            r"adaptive_max_pool3d: input \[1, 1, 2, 2, 2\], output_size=1000000 give output "
                            r"\[1, 1, 1000000, 1000000, 1000000\] and .* of working memory"),
    "adaptive_avg_pool2d": (lambda: CF.adaptive_avg_pool2d(torch.randn(1, 1, 2, 2), (2**31 - 1, 2**31 - 1)),
                            r"adaptive_avg_pool2d: input \[1, 1, 2, 2\], output_size=\(2147483647, 2147483647\) give output"),
    "pool-callable": (lambda: CF.pool(torch.randn(1, 1, 2**10, 2**10), (2**10, 2**9), 1, "same", reduce=torch.logsumexp),
                      r"pool: input \[1, 1, 1024, 1024\], kernel_size=\(1024, 512\), stride=\(1, 1\), padding="
                      r"\(\(511, 512\), \(255, 256\)\), dilation=\(1, 1\) give output \[1, 1, 1024, 1024\] and "
                      r"padded input \[1, 1, 2047, 1535\] and 2.0 TiB of working memory"),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_outputs_too_large_for_memory_are_refused_before_any_work(name):
    run, message = BOMBS[name]
    with pytest.raises(ValueError, match=message):
        run()


def test_memory_check_runs_only_in_plain_eager_mode(monkeypatch):
    from convolab.functional import _checks

    monkeypatch.setattr(_checks, "memory_limit", lambda: 4096)
    monkeypatch.setattr(_checks, "ALWAYS_ALLOWED", 0)
    x, w = torch.randn(1, 2, 16, 16), torch.randn(4, 2, 3, 3)
    with pytest.raises(ValueError, match=r"conv2d: .* give output \[1, 4, 16, 16\] and padded input \[1, 2, 18, 18\], "
                                         r"6.5 KiB of float32 in all, more than the 4.0 KiB of memory"):
        CF.conv2d(x, w, padding=1, algorithm="im2col")
    with pytest.raises(ValueError, match=r"conv2d: .* give output \[1, 4, 17, 16\], 4.2 KiB of float32 in all"):
        CF.conv2d(x, w, padding=((1, 2), (1, 1)))  # torch's kernel pads implicitly: the output alone
    with pytest.raises(ValueError, match=r"max_pool2d: input \[1, 2, 64, 64\], kernel_size=\(2, 2\), stride=\(1, 1\), "
                                         r"padding=\(\(0, 0\), \(0, 0\)\), dilation=\(1, 1\) give output \[1, 2, 63, 63\]"):
        CF.max_pool2d(torch.randn(1, 2, 64, 64), 2, 1)
    assert CF.conv2d(x.to("meta"), w.to("meta"), padding=1).shape == (1, 4, 16, 16)  # nothing allocated
    module = cnn.Conv2d(2, 4, 3, padding=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, (x,), check_trace=False)  # tracers see torch's op; torch checks at run time
    torch.testing.assert_close(traced(x), F.conv2d(x, module.weight, module.bias, padding=1))
    gm = torch.fx.symbolic_trace(module)
    assert "convolab_functional_convolution_conv(" in gm.code  # one node: the op, not the Python inside it

