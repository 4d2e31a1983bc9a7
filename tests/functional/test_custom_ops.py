"""convolab's own kernels as torch custom ops: schemas, opcheck, derivatives of every order, vmap, autocast.

Every op (forward and backward) goes through ``torch.library.opcheck`` (schema, fake
kernel against the real one, autograd registration, AOT dispatch with dynamic shapes).
Second derivatives are gradgradchecked in float64; forward-mode AD is compared with
reverse mode; vmap rules with a loop; low precision with float32 on the same inputs.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD

from convolab.functional import deform_conv, roi_align, roi_pool

D = torch.float64

SCHEMAS = {
    "deform_conv": "convolab::deform_conv(Tensor input, Tensor offset, Tensor? mask, Tensor weight, Tensor? bias, "
    "int[] stride, int[] padding, int[] dilation, int groups, int offset_groups) -> Tensor",
    "deform_conv_backward": "convolab::deform_conv_backward(Tensor grad_output, Tensor input, Tensor offset, "
    "Tensor? mask, Tensor weight, bool[] output_mask, int[] stride, int[] padding, int[] dilation, int groups, "
    "int offset_groups) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
    "roi_align": "convolab::roi_align(Tensor input, Tensor rois, int[] output_size, float spatial_scale, "
    "int sampling_ratio, bool aligned) -> Tensor",
    "roi_align_backward": "convolab::roi_align_backward(Tensor grad, Tensor rois, SymInt[] input_shape, "
    "float spatial_scale, int sampling_ratio, bool aligned) -> Tensor",
    "roi_pool": "convolab::roi_pool(Tensor input, Tensor rois, int[] output_size, float spatial_scale) "
    "-> (Tensor, Tensor)",
    "roi_pool_backward": "convolab::roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, SymInt[] input_shape) -> Tensor",
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _fractional(shape, seed, scale=0.6):
    """Offsets never on the pixel grid (bilinear derivatives jump there)."""
    g = _gen(seed)
    whole = torch.randint(-1, 2, shape, generator=g).to(D)
    return (whole + 0.2 + 0.6 * torch.rand(shape, generator=g, dtype=D)) * scale


def _deform_inputs(nd=2, modulated=True, groups=2, og=2, n=2, bias=True, seed=0):
    """Tiny float64 problem: 4 channels, kernel 2; 3 pixels a side and padding 1 (3-D: 2, no padding)."""
    g = _gen(seed)
    side, pad = (3, 1) if nd < 3 else (2, 0)
    x = torch.randn(n, 4, *(side,) * nd, generator=g, dtype=D)
    w = torch.randn(4, 4 // groups, *(2,) * nd, generator=g, dtype=D)
    b = torch.randn(4, generator=g, dtype=D) if bias else None
    out = (side + 2 * pad - 1,) * nd
    off = _fractional((n, nd * og * 2**nd, *out), seed + 1)
    mask = torch.rand(n, og * 2**nd, *out, generator=g, dtype=D) if modulated else None
    return x, off, mask, w, b, dict(padding=pad, groups=groups, offset_groups=og)


def _op_args(x, off, mask, w, b, padding=1, groups=1, offset_groups=1):
    nd = w.dim() - 2
    return (x, off, mask, w, b, [1] * nd, [padding] * (2 * nd), [1] * nd, groups, offset_groups)


def _boxes(k=6, batch=2, seed=0):
    """Boxes in a 9x11 map, some partly outside, one degenerate, one fully outside."""
    g = _gen(seed)
    xy = torch.rand(k, 2, generator=g, dtype=D) * 12 - 2
    wh = torch.rand(k, 2, generator=g, dtype=D) * 8
    idx = torch.randint(0, batch, (k, 1), generator=g).to(D)
    boxes = torch.cat([idx, xy, xy + wh], 1)
    boxes[0, 3] = boxes[0, 1]  # zero width
    boxes[1, 1:] = torch.tensor([20.0, 20.0, 25.0, 30.0], dtype=D)  # fully outside
    return boxes


def _feature(c=3, seed=1, size=(9, 11)):
    return torch.randn(2, c, *size, generator=_gen(seed), dtype=D)


# ----------------------------------------------------------------------------------------------
# schemas and opcheck


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schemas_are_the_documented_ones(name):
    assert str(getattr(torch.ops.convolab, name).default._schema) == SCHEMAS[name]


def _grad(t):
    return t.clone().requires_grad_() if isinstance(t, torch.Tensor) and t.is_floating_point() else t


DEFORM_OPCHECK = {
    "2d-v2-groups-offset-groups": lambda: _deform_inputs(),
    "2d-v1-no-bias": lambda: _deform_inputs(modulated=False, groups=1, og=1, bias=False),
    "1d-v2": lambda: _deform_inputs(nd=1, groups=1, og=2),
    "3d-v1": lambda: _deform_inputs(nd=3, modulated=False, groups=1, og=1, n=1),
}


@pytest.mark.parametrize("case", sorted(DEFORM_OPCHECK))
def test_opcheck_deform_conv(case):
    x, off, mask, w, b, kw = DEFORM_OPCHECK[case]()
    args = [_grad(t) for t in _op_args(x, off, mask, w, b, **kw)]
    torch.library.opcheck(torch.ops.convolab.deform_conv.default, args)


def test_opcheck_deform_conv_channels_last_and_batch_zero():
    x, off, mask, w, b, kw = _deform_inputs()
    args = _op_args(x.contiguous(memory_format=torch.channels_last), off, mask, w, b, **kw)
    torch.library.opcheck(torch.ops.convolab.deform_conv.default, [_grad(t) for t in args])
    empty = _op_args(x[:0], off[:0], mask[:0], w, b, **kw)
    torch.library.opcheck(torch.ops.convolab.deform_conv.default, [_grad(t) for t in empty])


@pytest.mark.parametrize("output_mask", [[True] * 5, [True, False, False, True, False], [False, True, True, False, True]])
def test_opcheck_deform_conv_backward(output_mask):
    x, off, mask, w, b, kw = _deform_inputs()
    grad = torch.randn(2, 4, 4, 4, generator=_gen(5), dtype=D)
    args = _op_args(x, off, mask, w, b, **kw)
    backward_args = [grad, *args[:4], output_mask, *args[5:]]
    # its autograd registration refuses (second derivatives come from deform_conv itself)
    torch.library.opcheck(
        torch.ops.convolab.deform_conv_backward.default, backward_args, test_utils=("test_schema", "test_faketensor")
    )


@pytest.mark.parametrize("aligned,sampling_ratio", [(False, -1), (True, 2), (True, 0)])
def test_opcheck_roi_align_and_its_backward(aligned, sampling_ratio):
    x, rois = _feature(), _boxes()
    torch.library.opcheck(torch.ops.convolab.roi_align.default, (_grad(x), rois, [2, 3], 0.6, sampling_ratio, aligned))
    grad = torch.randn(6, 3, 2, 3, generator=_gen(2), dtype=D)
    torch.library.opcheck(
        torch.ops.convolab.roi_align_backward.default, (_grad(grad), rois, [2, 3, 9, 11], 0.6, sampling_ratio, aligned)
    )


def test_opcheck_roi_pool_and_its_backward():
    x, rois = _feature(), _boxes()
    torch.library.opcheck(torch.ops.convolab.roi_pool.default, (_grad(x), rois, [2, 3], 0.6))
    _, argmax = torch.ops.convolab.roi_pool(x, rois, [2, 3], 0.6)
    grad = torch.randn(6, 3, 2, 3, generator=_gen(2), dtype=D)
    torch.library.opcheck(torch.ops.convolab.roi_pool_backward.default, (_grad(grad), rois, argmax, [2, 3, 9, 11]))


def test_roi_pool_argmax_is_the_flat_pixel_of_the_reference_and_minus_one_when_empty():
    from tests._reference import roi_pool_reference

    x, rois = _feature(), _boxes()
    out, argmax = torch.ops.convolab.roi_pool(x, rois, [2, 3], 0.6)
    ref, ref_arg = roi_pool_reference(x, rois, (2, 3), 0.6)
    torch.testing.assert_close(out, ref)
    assert argmax.dtype == torch.int32
    assert torch.equal(argmax.long(), ref_arg)
    assert (argmax[1] == -1).all()  # the box outside the map


# ----------------------------------------------------------------------------------------------
# second derivatives


@pytest.mark.parametrize("aligned,sampling_ratio", [(False, -1), (True, 2), (True, 0)])
def test_roi_align_second_derivatives(aligned, sampling_ratio):
    x = _feature(c=1, size=(5, 6)).requires_grad_()
    rois = _boxes(k=4)
    fn = lambda t: roi_align(t, rois, 2, 0.6, sampling_ratio, aligned)  # noqa: E731
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_roi_align_double_backward_is_not_zero():
    # the old autograd.Function returned zero here, silently
    x = _feature(c=2).requires_grad_()
    rois = _boxes()
    (g,) = torch.autograd.grad(roi_align(x, rois, 2, 0.6).square().sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    assert gg.abs().sum() > 0


def test_roi_pool_second_derivatives():
    x = _feature(c=1, size=(5, 6)).requires_grad_()  # random float64 values: no ties
    rois = _boxes(k=4, seed=5)
    assert torch.autograd.gradgradcheck(lambda t: roi_pool(t, rois, 2, 0.6), (x,))


@pytest.mark.parametrize(
    "nd,modulated,groups,og,bias",
    [(2, True, 2, 2, True), (2, False, 1, 1, False), (1, True, 1, 2, True), (3, False, 1, 1, True)],
)
def test_deform_conv_second_derivatives(nd, modulated, groups, og, bias):
    x, off, mask, w, b, kw = _deform_inputs(nd, modulated, groups, og, n=1, bias=bias)
    tensors = [t.requires_grad_() for t in (x, off, w, mask, b) if t is not None]

    def fn(x, off, w, *rest):
        rest = list(rest)
        m = rest.pop(0) if modulated else None
        bb = rest.pop(0) if bias else None
        return deform_conv(x, off, w, bb, mask=m, **kw)

    assert torch.autograd.gradcheck(fn, tensors)
    assert torch.autograd.gradgradcheck(fn, tensors)


def test_the_raw_deform_backward_refuses_to_be_differentiated():
    x, off, mask, w, b, kw = _deform_inputs()
    grad = torch.randn(2, 4, 4, 4, dtype=D, requires_grad=True)
    args = _op_args(x, off, mask, w, b, **kw)
    gx, *_ = torch.ops.convolab.deform_conv_backward(grad, *args[:4], [True] * 5, *args[5:])
    with pytest.raises(RuntimeError, match=r"convolab::deform_conv_backward: this kernel is not differentiable"):
        gx.sum().backward()


# ----------------------------------------------------------------------------------------------
# forward-mode AD and functorch transforms


def _functions():
    x, off, mask, w, b, kw = _deform_inputs(n=1)
    rois = _boxes()
    return {
        "deform_conv": (lambda t: deform_conv(t, off, w, b, mask=mask, **kw), x),
        "roi_align": (lambda t: roi_align(t, rois, (2, 3), 0.6, 2, True), _feature(c=2)),
        "roi_align_adaptive": (lambda t: roi_align(t, rois, (2, 3), 0.6, 0, False), _feature(c=2)),
        "roi_pool": (lambda t: roi_pool(t, rois, (2, 3), 0.6), _feature(c=2)),
    }


@pytest.mark.parametrize("name", ["deform_conv", "roi_align", "roi_align_adaptive", "roi_pool"])
def test_forward_mode_equals_reverse_mode(name):
    fn, x = _functions()[name]
    torch.testing.assert_close(torch.func.jacfwd(fn)(x), torch.func.jacrev(fn)(x))
    tangent = torch.randn_like(x)
    out, jvp = torch.func.jvp(fn, (x,), (tangent,))
    torch.testing.assert_close(out, fn(x))
    _, vjp_fn = torch.func.vjp(fn, x)
    # <J t, u> = <t, J^T u> for a random u
    u = torch.randn_like(out)
    torch.testing.assert_close((jvp * u).sum(), (tangent * vjp_fn(u)[0]).sum())
    with fwAD.dual_level():
        dual = fn(fwAD.make_dual(x, tangent))
        torch.testing.assert_close(fwAD.unpack_dual(dual).tangent, jvp)


def test_deform_conv_forward_mode_in_offsets_and_weights():
    x, off, mask, w, b, kw = _deform_inputs(n=1)
    fn = lambda off, w: deform_conv(x, off, w, b, mask=mask, **kw)  # noqa: E731
    fwd = torch.func.jacfwd(fn, argnums=(0, 1))(off, w)
    rev = torch.func.jacrev(fn, argnums=(0, 1))(off, w)
    for a, r in zip(fwd, rev):
        torch.testing.assert_close(a, r)


@pytest.mark.parametrize(
    "op,args",
    [
        ("deform_conv", lambda: _op_args(*_deform_inputs()[:5], padding=1, groups=2, offset_groups=2)),
        ("roi_align", lambda: (_feature(), _boxes(), [2, 3], 0.6, 2, False)),
        ("roi_pool", lambda: (_feature(), _boxes(), [2, 3], 0.6)),
    ],
)
def test_raw_ops_refuse_forward_mode_instead_of_a_zero_tangent(op, args):
    args = list(args())
    with fwAD.dual_level():
        args[0] = fwAD.make_dual(args[0], torch.ones_like(args[0]))
        with pytest.raises(RuntimeError, match=rf"convolab::{op}: forward-mode AD .* call convolab.functional.{op} instead"):
            getattr(torch.ops.convolab, op)(*args)


# ----------------------------------------------------------------------------------------------
# vmap rules


@pytest.mark.parametrize("name", ["deform_conv", "roi_align", "roi_align_adaptive", "roi_pool"])
def test_vmap_over_the_input_equals_a_loop(name):
    fn, x = _functions()[name]
    xs = torch.stack([x, 2 * x.flip(-1), -x])
    torch.testing.assert_close(torch.vmap(fn)(xs), torch.stack([fn(t) for t in xs]))
    torch.testing.assert_close(torch.vmap(fn, in_dims=1, out_dims=1)(xs.movedim(0, 1)), torch.stack([fn(t) for t in xs], 1))


def test_vmap_over_boxes_and_weights_uses_the_loop_rule():
    x, rois = _feature(), _boxes()
    many = torch.stack([rois, rois.flip(0), rois + torch.tensor([0, 0.5, 0.2, 0.7, 0.3], dtype=D)])
    for fn in (lambda r: roi_align(x, r, 2, 0.6, 2), lambda r: roi_pool(x, r, 2, 0.6)):
        torch.testing.assert_close(torch.vmap(fn)(many), torch.stack([fn(r) for r in many]))
    xx, off, mask, w, b, kw = _deform_inputs()
    ws = torch.stack([w, -w, w * 0.5])
    fn = lambda w_: deform_conv(xx, off, w_, b, mask=mask, **kw)  # noqa: E731
    torch.testing.assert_close(torch.vmap(fn)(ws), torch.stack([fn(t) for t in ws]))


@pytest.mark.parametrize("name", ["deform_conv", "roi_align", "roi_align_adaptive", "roi_pool"])
def test_batched_gradients_use_the_backward_ops_vmap_rules(name):
    fn, x = _functions()[name]
    x = x.clone().requires_grad_()
    out = fn(x)
    grads = torch.randn(3, *out.shape, dtype=D)
    (batched,) = torch.autograd.grad(out, x, grads, is_grads_batched=True, retain_graph=True)
    one_by_one = torch.stack([torch.autograd.grad(out, x, g, retain_graph=True)[0] for g in grads])
    torch.testing.assert_close(batched, one_by_one)


# ----------------------------------------------------------------------------------------------
# meta tensors, tracing


def test_meta_tensors_give_shapes_without_reading_values():
    x, boxes = _feature().to("meta"), _boxes().to("meta")
    assert roi_align(x, boxes, (2, 3), 0.6).shape == (6, 3, 2, 3)
    assert roi_pool(x, boxes, 4, 0.6).shape == (6, 3, 4, 4)
    for nd in (1, 2, 3):
        xx, off, mask, w, b, kw = _deform_inputs(nd, n=1)
        out = deform_conv(*(t.to("meta") for t in (xx, off, w, b)), mask=mask.to("meta"), **kw)
        assert out.shape == (1, 4, *off.shape[2:]) and out.device.type == "meta"


def test_compiled_training_step_uses_the_fast_backward_op():
    from torch._dynamo.backends.common import aot_autograd

    graphs = []

    def capture(gm, example_inputs):
        graphs.append({str(n.target) for n in gm.graph.nodes if n.op == "call_function"})
        return gm

    torch._dynamo.reset()
    backend = aot_autograd(fw_compiler=capture, bw_compiler=capture)
    x, off, mask, w, b, kw = _deform_inputs()
    x, off, w = (t.clone().requires_grad_() for t in (x, off, w))
    fn = torch.compile(lambda x, off, w: deform_conv(x, off, w, b, mask=mask, **kw).square().sum(), backend=backend, fullgraph=True)
    fn(x, off, w).backward()
    forward, backward = graphs
    assert "convolab.deform_conv.default" in forward
    assert "convolab.deform_conv_backward.default" in backward
    expected = [t.grad for t in (x, off, w)]
    x2, off2, w2 = (t.detach().clone().requires_grad_() for t in (x, off, w))
    deform_conv(x2, off2, w2, b, mask=mask, **kw).square().sum().backward()
    for a, r in zip(expected, (x2.grad, off2.grad, w2.grad)):
        torch.testing.assert_close(a, r)


def test_box_checks_stay_out_of_compiled_graphs_and_in_eager():
    torch._dynamo.reset()
    x, rois = _feature(), _boxes()
    explained = torch._dynamo.explain(lambda t, r: roi_align(t, r, 2, 0.6) + 0)(x, rois)
    assert explained.graph_count == 1 and explained.graph_break_count == 0
    bad = rois.clone()
    bad[2, 3] = bad[2, 1] - 1
    with pytest.raises(ValueError, match=r"roi_align: box 2 has x2 .* < x1"):
        roi_align(x, bad, 2, 0.6)


# ----------------------------------------------------------------------------------------------
# low precision


def _bf16_close(actual, expected):
    """Within bf16 rounding of the output: 2**-8 of the output's largest magnitude."""
    assert actual.dtype == torch.bfloat16
    err = (actual.float() - expected.float()).abs().max()
    assert err <= expected.float().abs().max() * 2**-8, float(err)


def test_bfloat16_inputs_compute_in_float32_and_return_bfloat16():
    x, off, mask, w, b, kw = (t.float() if isinstance(t, torch.Tensor) else t for t in _deform_inputs())
    xb, offb, maskb, wb, bb = (t.bfloat16().requires_grad_() for t in (x, off, mask, w, b))
    out = deform_conv(xb, offb, wb, bb, mask=maskb, **kw)
    ref = deform_conv(*(t.detach().float() for t in (xb, offb, wb, bb)), mask=maskb.detach().float(), **kw)
    _bf16_close(out, ref)
    out.sum().backward()
    assert all(t.grad.dtype == torch.bfloat16 for t in (xb, offb, maskb, wb, bb))
    feat, boxes = _feature().float().bfloat16().requires_grad_(), _boxes().float()
    for op in (roi_align, roi_pool):
        y = op(feat, boxes, 3, 0.6)
        _bf16_close(y, op(feat.detach().float(), boxes, 3, 0.6))  # the boxes keep float32
        y.sum().backward()
        assert feat.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_runs_the_ops_in_float32(dtype):
    x, off, mask, w, b, kw = (t.float() if isinstance(t, torch.Tensor) else t for t in _deform_inputs())
    x, w = x.requires_grad_(), w.requires_grad_()
    low = off.to(dtype).requires_grad_()  # e.g. an offset predictor's output under autocast
    with torch.autocast("cpu", dtype):
        out = deform_conv(x, low, w, b, mask=mask.to(dtype), **kw)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, deform_conv(x, low.float(), w, b, mask=mask.to(dtype).float(), **kw))
    out.sum().backward()
    assert low.grad.dtype == dtype and x.grad.dtype == torch.float32
    feat = _feature().float().to(dtype).requires_grad_()
    for op in (roi_align, roi_pool):
        with torch.autocast("cpu", dtype):
            y = op(feat, _boxes(), 3, 0.6)
        assert y.dtype == torch.float32
        torch.testing.assert_close(y, op(feat.detach().float(), _boxes().float(), 3, 0.6))
        y.sum().backward()
