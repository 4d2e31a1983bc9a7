"""convolab.arithmetic: properties (hypothesis), the seeds' worked examples, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from convolab import arithmetic as A
from convolab.functional import conv, conv_transpose

# --- properties --------------------------------------------------------------------------


@st.composite
def conv_configs(draw, valid=True):
    nd = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    kind = draw(st.sampled_from(["int", "pairs", "same", "valid"]))
    if kind == "int":
        padding = draw(st.integers(0, 3))
    elif kind == "pairs":
        padding = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(nd))
    else:
        padding = kind
    size = tuple(draw(st.integers(1, 9)) for _ in range(nd))
    return nd, size, kernel, stride, dilation, padding


@settings(max_examples=150, deadline=None)
@given(conv_configs())
def test_op_output_shape_equals_arithmetic(cfg):
    nd, size, kernel, stride, dilation, padding = cfg
    x, w = torch.zeros(1, 1, *size), torch.zeros(2, 1, *kernel)
    try:
        predicted = A.conv_output_shape(size, kernel, stride, padding, dilation)
    except ValueError as exc:  # arithmetic and the op must agree on what is invalid too
        with pytest.raises(ValueError, match="output size would be"):
            conv(x, w, stride=stride, padding=padding, dilation=dilation)
        assert "output size would be" in str(exc)
        return
    assert conv(x, w, stride=stride, padding=padding, dilation=dilation).shape[2:] == predicted
    if padding == "same":
        assert predicted == tuple(math.ceil(s / st_) for s, st_ in zip(size, stride))
    elif padding != "valid" and not isinstance(padding, tuple):
        # torch agrees wherever torch has the op
        ref = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd](x, w, stride=stride, padding=padding, dilation=dilation)
        assert ref.shape[2:] == predicted


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 6), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), st.integers(1, 3), st.integers(0, 2)
)
def test_transposed_size_matches_torch_and_inverts_conv_shape(n, k, s, p, d, op):
    if op >= max(s, d):
        with pytest.raises(ValueError, match="output_padding"):
            A.conv_transpose_output_size(n, k, s, p, op, d)
        return
    try:
        out = A.conv_transpose_output_size(n, k, s, p, op, d)
    except ValueError:
        assert (n - 1) * s - 2 * p + d * (k - 1) + op + 1 < 1
        return
    y = conv_transpose(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p, output_padding=op, dilation=d)
    assert y.shape[-1] == out == F.conv_transpose1d(
        torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p, output_padding=op, dilation=d
    ).shape[-1]
    # the conv with the same arguments maps the size back: n + floor(output_padding / stride)
    assert A.conv_output_size(out, k, s, p, d) == n + op // s


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 64), st.integers(1, 7), st.integers(1, 4), st.integers(1, 3))
def test_same_padding_rule(n, k, s, d):
    before, after = A.same_padding(n, k, s, d)
    assert 0 <= before <= after <= before + 1
    assert A.conv_output_size(n, k, s, (before, after), d) == math.ceil(n / s)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 7), st.integers(1, 3), st.integers(0, 3), st.integers(1, 3)), min_size=1, max_size=6))
def test_receptive_field_recursion_matches_seed_formula_and_brute_force(layers):
    fields = A.receptive_fields(layers)
    # the seeds' formula: R_i = (k_i - 1) * prod(strides before i) + R_{i-1} (with dilated kernels)
    r, jump = 1, 1
    for (k, s, p, d), rf in zip(layers, fields):
        r += (d * (k - 1)) * jump
        jump *= s
        assert (rf.size, rf.jump) == (r, jump)
    # brute force on 1-D index sets: which input positions reach output unit 0 (ignoring
    # whether they fall in the padding), and where its centre is
    lo, hi = 0, 0
    for k, s, p, d in reversed(layers):
        lo, hi = lo * s - p, hi * s - p + d * (k - 1)
    assert hi - lo + 1 == fields[-1].size
    assert (lo + hi) / 2 == fields[-1].start


@settings(max_examples=80, deadline=None)
@given(st.integers(-3, 0), st.sampled_from(["in_size", "kernel", "stride", "dilation", "padding"]))
def test_invalid_values_name_the_parameter(bad, which):
    args = dict(in_size=5, kernel_size=3, stride=1, padding=0, dilation=1)
    key = {"kernel": "kernel_size"}.get(which, which)
    if which in ("kernel", "stride", "dilation") or bad < 0:
        args[key] = bad
        name = {"in_size": "input size", "padding": "padding"}.get(which, key)
        with pytest.raises(ValueError, match=name):
            A.conv_output_size(**args)


# --- the seeds' worked examples ---------------------------------------------------------------


def test_seed_conv_layer_demo_5x5x3_two_filters_stride2_pad1():
    """CS231n's demo (seed 003): W=5, F=3, S=2, P=1 -> (5 - 3 + 2)/2 + 1 = 3, two filters -> 3x3x2."""
    assert A.conv_output_size(5, 3, stride=2, padding=1) == 3
    x, w, b = torch.randint(0, 3, (1, 3, 5, 5)).double(), torch.randint(-1, 2, (2, 3, 3, 3)).double(), torch.tensor([1.0, 0.0]).double()
    y = conv(x, w, b, stride=2, padding=1)
    assert y.shape == (1, 2, 3, 3)
    # each output element is the sum of the element-wise products of its window, plus bias
    xp = F.pad(x, (1, 1, 1, 1))
    for o in range(2):
        for i in range(3):
            for j in range(3):
                assert y[0, o, i, j] == (xp[0, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3] * w[o]).sum() + b[o]


def test_seed_googlenet_3a_parameter_totals():
    naive = sum(A.conv_params(192, c, k, bias=False) for c, k in ((64, 1), (128, 3), (32, 5)))
    reduced = (
        A.conv_params(192, 64, 1, bias=False)
        + A.conv_params(192, 96, 1, bias=False) + A.conv_params(96, 128, 3, bias=False)
        + A.conv_params(192, 16, 1, bias=False) + A.conv_params(16, 32, 5, bias=False)
    )
    assert (naive, reduced) == (387_072, 157_184)


def test_seed_resnet_bottleneck_macs_per_pixel():
    assert A.conv_macs(256, 256, 3, (1, 1)) == 589_824
    bottleneck = A.conv_macs(256, 64, 1, (1, 1)) + A.conv_macs(64, 64, 3, (1, 1)) + A.conv_macs(64, 256, 1, (1, 1))
    assert bottleneck == 69_632
    w, h = 14, 14
    assert A.conv_macs(256, 256, 3, (h, w)) == 589_824 * w * h


def test_seed_linear_versus_conv_parameters():
    m, n, k1, k2 = 1000, 500, 5, 3
    assert A.linear_params(m, n) == m * n + n
    # N features from a shared K1 x K2 window: (K1*K2 + 1) * N
    assert A.conv_params(1, n, (k1, k2)) == (k1 * k2 + 1) * n


def test_seed_stacked_3x3_receptive_fields():
    assert [rf.size for rf in A.receptive_fields([(3, 1, 1)] * 3)] == [3, 5, 7]
    # and 5x5 -> two 3x3 keeps the field with 18/25 of the weights (Inception v2)
    assert A.receptive_fields([(3, 1, 1)] * 2)[-1].size == A.receptive_fields([(5, 1, 2)])[-1].size
    assert 2 * A.conv_params(1, 1, 3, bias=False) / A.conv_params(1, 1, 5, bias=False) == 18 / 25


def test_seed_output_size_formula_and_same_valid():
    # output = (input + 2*padding - kernel)/stride + 1, rounded down
    assert A.conv_output_size(32, 5, stride=2, padding=0) == (32 - 5) // 2 + 1
    # 'same' at stride 1: 2*padding = kernel - 1; 'valid': padding 0
    assert A.resolve_padding("same", (9,), 5) == ((2, 2),)
    assert A.resolve_padding("valid", (9,), 5) == ((0, 0),)
    # valid convolution shrinks to (H - k1 + 1) x (W - k2 + 1)
    assert A.conv_output_shape((10, 12), (3, 5)) == (8, 8)
    # the seeds' transposed example: 2x2 input, 3x3 kernel -> 4x4
    assert A.conv_transpose_output_shape((2, 2), 3) == (4, 4)


def test_seed_dilated_kernel_has_r_minus_1_holes():
    for r in (1, 2, 3):
        assert A.effective_kernel_size(3, r) == 3 + 2 * (r - 1)


# --- clear errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: A.conv_output_size(3, 5), r"conv: output size would be 0 \(in=3, kernel=5"),
        (lambda: A.conv_output_size(5, 0), r"conv: kernel_size must be an int >= 1, got 0"),
        (lambda: A.conv_output_size(5, 3, stride=0), r"conv: stride must be an int >= 1, got 0"),
        (lambda: A.conv_output_size(5, 3, padding=(1, -1)), r"conv: padding after must be an int >= 0, got -1"),
        (lambda: A.conv_output_shape((5, 5), (3, 3, 3)), r"conv: kernel_size must be an int or a sequence of 2 ints"),
        (lambda: A.resolve_padding("full", (5,), 3), r"padding must be .* got 'full'"),
        (lambda: A.conv_params(6, 4, 3, groups=4), r"conv_params: groups \(4\) must divide in_channels \(6\) and out_channels \(4\)"),
        (lambda: A.linear_params(0, 3), r"linear_params: in_features must be an int >= 1, got 0"),
        (lambda: A.conv_transpose_output_size(3, 3, stride=2, output_padding=2), r"output_padding \(2\) must be smaller than stride \(2\) or dilation \(1\)"),
        (lambda: A.transpose_output_padding((3,), (9,), 3, 2, 1), r"requested output_size \(9,\) is invalid along dim 2: must be between 5 and 6"),
        (lambda: A.receptive_fields([(3, 1, 0, 1, 9)]), r"receptive_fields: layer 0 must be \(kernel, stride, padding\[, dilation\]\)"),
        (lambda: A.effective_kernel_size(3, 0), r"effective_kernel_size: dilation must be an int >= 1, got 0"),
    ],
)
def test_arithmetic_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_arithmetic_imports_no_torch(tmp_path):
    """arithmetic and _args are pure Python: they load and work with torch made unimportable."""
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(A.__file__).parents[1]  # convolab/ (arithmetic is a package)
    code = f"""
import sys, types, importlib
sys.modules["torch"] = None  # any 'import torch' now raises ImportError
pkg = types.ModuleType("convolab"); pkg.__path__ = [{str(root)!r}]; sys.modules["convolab"] = pkg
A = importlib.import_module("convolab.arithmetic")  # and its modules, and _args; not convolab/__init__
print(A.conv_output_size(5, 3, 2, 1), A.receptive_fields([(3, 1, 0)])[0].size, A.conv_params(1, 1, 3), A.spp_features(1, (1, 2)))
print(sorted(m for m in sys.modules if m.startswith("convolab.")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    values, modules = out.stdout.strip().splitlines()
    assert values == "3 3 10 5"
    assert "convolab._args" in modules and "convolab.arithmetic.sizes" in modules
