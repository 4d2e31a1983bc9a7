"""The compiled kernels (convolab.functional._native) give the pure-PyTorch paths' results, and
everything falls back to those paths when no kernel can be built."""

from __future__ import annotations

import shutil

import pytest
import torch

from convolab.functional import _native, conv2d, deform_conv2d, roi_pool
from tests._reference import roi_pool_reference

needs_compiler = pytest.mark.skipif(shutil.which("c++") is None, reason="no C++ compiler to build the kernels")


def _both(fn):
    """fn() with the compiled kernels, then with the pure-PyTorch paths."""
    fast = fn()
    with _native.disabled():
        slow = fn()
    return fast, slow


def _boxes(k, batch, height, width, scale, seed, dtype=torch.float32):
    """Boxes in image pixels, many partly or wholly outside the map, some degenerate, and
    corners that land on .5 after scaling (where rounding rules differ)."""
    g = torch.Generator().manual_seed(seed)
    lo = torch.rand(k, 2, generator=g, dtype=torch.float64) * torch.tensor([width + 4.0, height + 4.0], dtype=torch.float64) - 3
    side = torch.rand(k, 2, generator=g, dtype=torch.float64) * 12
    boxes = torch.cat([torch.randint(0, batch, (k, 1), generator=g).double(), lo, lo + side], 1) / torch.tensor(
        [1, scale, scale, scale, scale], dtype=torch.float64)
    boxes[: k // 4, 1:] = (torch.randint(-4, 2 * max(height, width), (k // 4, 4), generator=g).double() + 0.5) / scale
    boxes[: k // 4, 3:] = torch.maximum(boxes[: k // 4, 3:], boxes[: k // 4, 1:3])
    boxes[k // 4, 3:] = boxes[k // 4, 1:3]  # a point
    return boxes.to(dtype)


@needs_compiler
def test_the_kernels_build_and_load():
    assert _native.library() is not None, _native.status()
    assert _native.status().startswith("loaded ")


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("size,scale", [((7, 7), 1 / 16), ((2, 3), 0.5), ((5, 4), 1.0)])
def test_roi_pool_kernel_matches_the_torch_path_values_argmax_and_gradients(dtype, size, scale):
    x = torch.randn(3, 5, 13, 17, generator=torch.Generator().manual_seed(0), dtype=dtype)
    boxes = _boxes(40, 3, 13, 17, scale, seed=1, dtype=dtype)
    (out, arg), (out_t, arg_t) = _both(lambda: torch.ops.convolab.roi_pool(x, boxes, list(size), scale))
    assert torch.equal(out, out_t) and torch.equal(arg, arg_t)
    assert out.is_contiguous() and arg.is_contiguous() and arg.dtype == torch.int32
    ref, ref_arg = roi_pool_reference(x, boxes.double(), size, scale)
    torch.testing.assert_close(out, ref.to(dtype))
    assert torch.equal(arg.long(), ref_arg)
    grad = torch.randn_like(out)
    for g in (grad, grad.contiguous(memory_format=torch.channels_last), grad[:, :, :1, :1].expand_as(grad)):
        a, b = _both(lambda: torch.ops.convolab.roi_pool_backward(g, boxes, arg, list(x.shape)))
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
        assert a.stride() == b.stride()


@needs_compiler
def test_roi_pool_kernel_channels_last_input_many_boxes_and_bf16():
    x = torch.randn(2, 64, 20, 30, generator=torch.Generator().manual_seed(2))
    boxes = _boxes(300, 2, 20, 30, 0.25, seed=3)
    for t in (x, x.contiguous(memory_format=torch.channels_last), x.bfloat16()):
        leaf = t.detach().requires_grad_()
        a, b = _both(lambda: torch.autograd.grad(roi_pool(leaf, boxes, 3, 0.25).square().sum(), leaf))
        torch.testing.assert_close(a[0], b[0])


@needs_compiler
def test_roi_pool_nan_wins_and_takes_the_gradient():
    x = torch.arange(36.0).view(1, 1, 6, 6)
    x[0, 0, 1, 2] = x[0, 0, 4, 4] = float("nan")
    x[0, 0, 3:, :2] = float("-inf")
    box = torch.tensor([[0, 0.0, 0.0, 5.0, 5.0], [0, 0.0, 3.0, 1.0, 5.0]])
    for native in (True, False):
        leaf = x.clone().requires_grad_()
        if native:
            out = roi_pool(leaf, box, 2)
        else:
            with _native.disabled():
                out = roi_pool(leaf, box, 2)
        assert out[0, 0].isnan().tolist() == [[True, False], [False, True]]
        assert out[1, 0].tolist() == [[float("-inf")] * 2] * 2
        out.backward(torch.ones_like(out))  # the gradient of each bin lands on its maximum
        hit = leaf.grad[0, 0] != 0
        assert hit[1, 2] and hit[4, 4] and hit[3, 0]


def test_without_a_compiler_every_op_falls_back_to_torch(monkeypatch):
    def no_compiler(path):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(_native, "_state", {"lib": None, "tried": False, "reason": "", "seconds": 0.0, "disabled": 0})
    monkeypatch.setattr(_native, "_cache_dir", lambda: "/nonexistent-convolab-cache")
    monkeypatch.setattr(_native, "_build", no_compiler)
    assert _native.library() is None
    assert _native.status() == "unavailable (RuntimeError: no compiler here)"
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    boxes = torch.tensor([[0, 1.0, 1.0, 6.0, 5.0]])
    roi_pool(x, boxes, 2).sum().backward()
    assert x.grad.count_nonzero() > 0
    off = torch.zeros(1, 18, 8, 8, requires_grad=True)
    deform_conv2d(x, off, torch.randn(2, 3, 3, 3), padding=1).sum().backward()
    assert off.grad is not None


def test_the_switch_turns_the_kernels_off(monkeypatch):
    monkeypatch.setattr(_native, "_state", {"lib": None, "tried": False, "reason": "", "seconds": 0.0, "disabled": 0})
    monkeypatch.setenv("CONVOLAB_NATIVE", "0")
    assert _native.library() is None
    assert _native.status() == "disabled by CONVOLAB_NATIVE=0"
    with _native.disabled():
        assert _native.library() is None


def _deform_case(n, c, c_out, size, groups, offset_groups, stride, dilation, padding, modulated, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, *size, generator=g, dtype=dtype)
    w = torch.randn(c_out, c // groups, 3, 3, generator=g, dtype=dtype)
    b = torch.randn(c_out, generator=g, dtype=dtype)
    out = conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups).shape[2:]
    off = torch.randn(n, 2 * offset_groups * 9, *out, generator=g, dtype=dtype) * 3  # many points outside
    mask = torch.rand(n, offset_groups * 9, *out, generator=g, dtype=dtype) if modulated else None
    return x, off, w, b, mask


def _deform_values_and_grads(x, off, w, b, mask, grad=None, **kw):
    leaves = [t.detach().clone().requires_grad_() for t in (x, off, w, b)]
    m = None if mask is None else mask.detach().clone().requires_grad_()
    y = deform_conv2d(*leaves[:2], leaves[2], leaves[3], mask=m, **kw)
    y.backward(torch.ones_like(y) if grad is None else grad)
    return [y, *(t.grad for t in leaves), *([] if m is None else [m.grad])]


@needs_compiler
@pytest.mark.parametrize(
    "groups,offset_groups,stride,dilation,padding,modulated",
    [(1, 1, 1, 1, 1, False), (1, 1, 1, 1, 1, True), (2, 1, 2, 1, 1, True), (1, 2, 1, 2, 2, True),
     (2, 4, (1, 2), (2, 1), ((1, 0), (2, 1)), True), (4, 2, 2, 1, 0, False)],
)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_deform_kernel_matches_the_torch_path(groups, offset_groups, stride, dilation, padding, modulated, dtype):
    case = _deform_case(2, 8, 12, (9, 11), groups, offset_groups, stride, dilation, padding, modulated, dtype, seed=3)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    fast, slow = _both(lambda: _deform_values_and_grads(*case, **kw))
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
        assert a.stride() == b.stride()


@needs_compiler
def test_deform_kernel_layouts_blocks_nan_and_bf16(monkeypatch):
    x, off, w, b, mask = _deform_case(3, 16, 8, (12, 10), 1, 1, 1, 1, 1, True, torch.float32, seed=4)
    off[1, 0, 2, 3] = float("nan")
    kw = dict(padding=1)
    grad = torch.randn(3, 8, 12, 10, generator=torch.Generator().manual_seed(5))
    from convolab.functional import deform

    for block in (deform.NATIVE_BLOCK, 16 * 9 * 16 * 3):  # blocks that split the samples' positions unevenly
        monkeypatch.setattr(deform, "NATIVE_BLOCK", block)
        for xs, gs in ((x, grad), (x.contiguous(memory_format=torch.channels_last), grad.contiguous(memory_format=torch.channels_last)),
                       (x.transpose(2, 3).contiguous().transpose(2, 3), grad[:, :, :1].expand_as(grad))):
            fast, slow = _both(lambda: _deform_values_and_grads(xs, off, w, b, mask, gs, **kw))
            for a, s in zip(fast, slow):
                assert torch.equal(a.isnan(), s.isnan())
                torch.testing.assert_close(a.nan_to_num(0), s.nan_to_num(0), rtol=2e-5, atol=2e-5)
    fast, slow = _both(lambda: deform_conv2d(x.bfloat16(), off.bfloat16(), w.bfloat16(), mask=mask.bfloat16(), padding=1))
    assert fast.dtype == torch.bfloat16
    torch.testing.assert_close(fast.nan_to_num(0), slow.nan_to_num(0))


@needs_compiler
@pytest.mark.parametrize("threads", [1, 3])
def test_deform_kernel_results_do_not_depend_on_the_thread_count(threads):
    case = _deform_case(4, 8, 8, (10, 10), 1, 2, 1, 1, 1, True, torch.float64, seed=6)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        ours = _deform_values_and_grads(*case, padding=1)
    finally:
        torch.set_num_threads(before)
    with _native.disabled():
        ref = _deform_values_and_grads(*case, padding=1)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sampling_ratio,aligned,size,scale", [(2, False, (7, 7), 1 / 16), (-1, False, (2, 3), 0.5),
                                                                (0, True, (3, 3), 0.5), (1, True, (5, 4), 1.0)])
def test_roi_align_kernel_matches_the_torch_path(dtype, sampling_ratio, aligned, size, scale):
    x = torch.randn(3, 5, 13, 17, generator=torch.Generator().manual_seed(7), dtype=dtype)
    boxes = _boxes(40, 3, 13, 17, scale, seed=8, dtype=dtype)
    args = (list(size), scale, sampling_ratio, aligned)
    out, out_t = _both(lambda: torch.ops.convolab.roi_align(x, boxes, *args))
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(out, out_t, rtol=tol, atol=tol)
    assert out.stride() == out_t.stride()


@needs_compiler
def test_roi_kernels_agree_for_any_thread_count():
    x = torch.randn(2, 40, 16, 16, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    boxes = _boxes(200, 2, 16, 16, 0.5, seed=10, dtype=torch.float64)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 3):
            torch.set_num_threads(threads)
            leaf = x.clone().requires_grad_()
            y = torch.cat([roi_pool(leaf, boxes, 3, 0.5).flatten(1), torch.ops.convolab.roi_align(leaf, boxes, [3, 3], 0.5, 2, False).flatten(1)], 1)
            y.backward(torch.ones_like(y))
            results.append((y, leaf.grad))
    finally:
        torch.set_num_threads(before)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
