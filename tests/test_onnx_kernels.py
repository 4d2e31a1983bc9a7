"""ONNX export of convolab's own kernels (DeformConv, RoiAlign, MaxRoiPool) with both exporters, run by onnxruntime.

Parity bar: max |onnxruntime - convolab| <= 1e-4 * max |convolab|. Where onnxruntime has
no kernel (3-D DeformConv) the model still exports and the test pins onnxruntime's refusal.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from typing import Callable

import pytest
import torch

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import convolab.onnx  # noqa: E402  (after the optional-dependency skips)
from convolab import nn as cnn  # noqa: E402


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], torch.nn.Module]
    inputs: Callable[[], tuple]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _plain(cls, *args, **kwargs):
    def make():
        torch.manual_seed(0)
        return cls(*args, **kwargs)

    return make


def _deform_inputs(x_shape, off_shape, mask_shape=None):
    def inputs():
        g = _gen()
        x = torch.randn(*x_shape, generator=g)
        off = torch.randn(*off_shape, generator=g) * 2  # reads outside the input too
        return (x, off) if mask_shape is None else (x, off, torch.rand(*mask_shape, generator=g))

    return inputs


def _boxes() -> torch.Tensor:
    """Boxes of every kind for a [2, C, 12, 14] map at scale 0.5: inside, partly outside, tiny, degenerate, outside."""
    return torch.tensor(
        [
            [0, 1.0, 2.0, 10.0, 12.0],
            [1, 0.0, 0.0, 20.0, 18.0],
            [0, 3.3, 4.1, 5.0, 4.5],
            [1, -3.0, 2.0, 30.0, 40.0],
            [0, 2.0, 2.0, 2.0, 2.0],
            [1, 40.0, 40.0, 50.0, 44.0],
            [1, 7.7, 1.2, 19.9, 23.3],
        ]
    )


def _roi_inputs():
    return torch.randn(2, 4, 12, 14, generator=_gen()), _boxes()


def _owning():
    torch.manual_seed(0)
    m = cnn.ModulatedDeformConv2d(4, 6, 3, padding=1, offset_groups=2)
    torch.nn.init.normal_(m.conv_offset.weight, std=0.3)
    return m


CASES = [
    Case("deform2d-v2-groups-offset-groups", _plain(cnn.PlainDeformConv2d, 4, 6, 3, padding=1, groups=2, offset_groups=2),
         _deform_inputs((2, 4, 7, 7), (2, 36, 7, 7), (2, 18, 7, 7))),
    Case("deform2d-v1-stride-dilation-per-side-padding-no-bias",
         _plain(cnn.PlainDeformConv2d, 4, 6, 3, stride=2, padding=((1, 0), (0, 1)), dilation=(1, 2), bias=False),
         _deform_inputs((2, 4, 8, 9), (2, 18, 4, 3))),
    Case("deform2d-v2-no-bias", _plain(cnn.PlainDeformConv2d, 4, 6, 3, padding=1, bias=False),
         _deform_inputs((2, 4, 7, 7), (2, 18, 7, 7), (2, 9, 7, 7))),
    Case("deform1d-v2-offset-groups", _plain(cnn.PlainDeformConv1d, 4, 6, 3, padding=1, offset_groups=2),
         _deform_inputs((2, 4, 9), (2, 6, 9), (2, 6, 9))),
    Case("deform1d-v1-stride-per-side-padding", _plain(cnn.PlainDeformConv1d, 4, 6, 3, stride=2, padding=((2, 1),)),
         _deform_inputs((2, 4, 9), (2, 3, 5))),
    Case("ModulatedDeformConv2d-module", _owning, lambda: (torch.randn(2, 4, 7, 7, generator=_gen()),)),
    Case("roi_align-legacy-adaptive", lambda: cnn.RoIAlign((3, 2), 0.5, -1, False), _roi_inputs),
    Case("roi_align-legacy-sampling-2", lambda: cnn.RoIAlign((3, 2), 0.5, 2, False), _roi_inputs),
    Case("roi_align-aligned-adaptive-0", lambda: cnn.RoIAlign(3, 0.5, 0, True), _roi_inputs),
    Case("roi_align-aligned-sampling-3", lambda: cnn.RoIAlign(3, 0.5, 3, True), _roi_inputs),
    Case("roi_pool", lambda: cnn.RoIPool((3, 2), 0.5), _roi_inputs),
]


def _export(m: torch.nn.Module, args: tuple, dynamo: bool) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices of the TorchScript exporter
        if dynamo:
            logging.getLogger("torch.onnx").setLevel(logging.ERROR)
            return convolab.onnx.export(m, args, dynamo=True, verbose=False).model_proto.SerializeToString()
        f = io.BytesIO()
        convolab.onnx.export(m, args, f, dynamo=False)
        return f.getvalue()


def _run(model: bytes, args: tuple):
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(model, options)
    return session.run(None, {i.name: a.numpy() for i, a in zip(session.get_inputs(), args)})[0]


def _params():
    for case in CASES:
        for dynamo in (True, False):
            yield pytest.param(case, dynamo, id=f"{case.name}-{'dynamo' if dynamo else 'torchscript'}")


@pytest.mark.parametrize("case,dynamo", list(_params()))
def test_onnxruntime_agrees_with_convolab(case, dynamo):
    m, args = case.make(), case.inputs()
    ref = m(*args).detach()
    out = torch.from_numpy(_run(_export(m, args, dynamo), args))
    assert out.shape == ref.shape
    assert (out - ref).abs().max() <= 1e-4 * ref.abs().max()


def test_the_graph_uses_the_standard_operators():
    import onnx

    ops = {}
    for case in (CASES[0], CASES[3], CASES[6], CASES[-1]):
        m, args = case.make(), case.inputs()
        for dynamo in (True, False):
            model = onnx.load_from_string(_export(m, args, dynamo))
            ops[(case.name, dynamo)] = {n.op_type for n in model.graph.node}
    for dynamo in (True, False):
        assert "DeformConv" in ops[("deform2d-v2-groups-offset-groups", dynamo)]
        assert "DeformConv" in ops[("deform1d-v2-offset-groups", dynamo)]
        assert "RoiAlign" in ops[("roi_align-legacy-adaptive", dynamo)]
        assert "MaxRoiPool" in ops[("roi_pool", dynamo)]


def test_dynamic_batch_and_box_count():
    m, (x, boxes) = cnn.RoIAlign(3, 0.5, 2, True), _roi_inputs()
    dims = ({0: torch.export.Dim("n", min=1, max=16)}, {0: torch.export.Dim("k", min=1, max=256)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convolab.onnx.export(m, (x, boxes), dynamo=True, dynamic_shapes=dims, verbose=False)
    x3 = torch.randn(3, 4, 12, 14)
    boxes3 = torch.cat([_boxes(), _boxes()[:4] + torch.tensor([1.0, 1, 1, 2, 2])])  # images 1, 2
    out = torch.from_numpy(_run(model.model_proto.SerializeToString(), (x3, boxes3)))
    ref = m(x3, boxes3)
    assert (out - ref).abs().max() <= 1e-4 * ref.abs().max()


@pytest.mark.parametrize("dynamo", [True, False])
def test_3d_deform_conv_exports_but_onnxruntime_has_no_3d_kernel(dynamo):
    # valid ONNX (DeformConv is N-d in the spec); onnxruntime 1.32's CPU kernel is 2-D only
    m = _plain(cnn.PlainDeformConv3d, 2, 3, 2, padding=1)()
    args = _deform_inputs((1, 2, 3, 4, 4), (1, 24, 4, 5, 5))()
    model = _export(m, args, dynamo)
    with pytest.raises(Exception, match=r"DeformConv.*Input X must be 4D"):
        _run(model, args)


def test_export_refuses_an_opset_without_deform_conv():
    with pytest.raises(ValueError, match=r"convolab.onnx.export: opset_version must be >= 19 \(DeformConv\), got 18"):
        convolab.onnx.export(cnn.RoIPool(2), _roi_inputs(), opset_version=18)


def test_translation_table_covers_every_forward_op():
    table = convolab.onnx.translation_table()
    assert set(table) == {torch.ops.convolab.deform_conv.default, torch.ops.convolab.roi_align.default,
                          torch.ops.convolab.roi_pool.default}
