"""ONNX export of convolab's own kernels: deformable conv, roi_align and roi_pool.

convolab's kernels are torch custom ops (``convolab::deform_conv``, ``convolab::roi_align``,
``convolab::roi_pool``); ONNX has a standard operator for each, and this module maps them
for both of torch's exporters:

- the dynamo exporter (``torch.onnx.export(..., dynamo=True)``): pass
  ``custom_translation_table=convolab.onnx.translation_table()``, or call
  :func:`convolab.onnx.export`, which does it and picks an opset of at least 19;
- the TorchScript exporter (``dynamo=False``): the symbolic functions are registered
  when this module is imported (:func:`register_torchscript_symbolics` does it again,
  e.g. after ``torch.onnx.unregister_custom_op_symbolic``).

The mappings:

================================  =========================================================
``convolab::deform_conv``         ``DeformConv`` (opset 19): 2-D as it is; 1-D as a 2-D
                                  DeformConv over a height of 1 (zero ``dy`` offsets); 3-D
                                  as the N-d DeformConv of the ONNX spec
``convolab::roi_align``           ``RoiAlign`` (opset 16, ``mode="avg"``): ``aligned=True`` is
                                  ``coordinate_transformation_mode="half_pixel"``, False is
                                  ``"output_half_pixel"``; ``sampling_ratio <= 0`` is 0 (adaptive)
``convolab::roi_pool``            ``MaxRoiPool`` (opset 1)
================================  =========================================================

What onnxruntime (1.32, CPU) does with them, checked by ``tests/test_onnx_kernels.py``:
``DeformConv`` 1-D and 2-D, ``RoiAlign`` (both modes, fixed and adaptive sampling) and
``MaxRoiPool`` agree with convolab to float32 rounding. onnxruntime's ``DeformConv``
kernel is 2-D only: a 3-D model exports (valid ONNX) but onnxruntime refuses to run it.

The graph computes in the exported dtype: convolab's float32 sampling under autocast or
for bf16 inputs is not reproduced by these standard operators.

Example:
    >>> import torch, convolab.nn, convolab.onnx
    >>> m = convolab.nn.RoIAlign(2, spatial_scale=0.5, sampling_ratio=2, aligned=True)
    >>> x, boxes = torch.randn(1, 3, 8, 8), torch.tensor([[0, 0.0, 0.0, 10.0, 12.0]])
    >>> program = convolab.onnx.export(m, (x, boxes))  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

import torch

from . import functional  # noqa: F401  (registers the convolab:: custom ops)

__all__ = ["OPSET", "export", "register_torchscript_symbolics", "translation_table"]

#: The lowest opset that has every operator used here (DeformConv came in opset 19).
OPSET = 19


# ----------------------------------------------------------------------------------------------
# the dynamo exporter: onnxscript translations (trace-only functions: attributes are Python values)


def _deform_conv(input, offset, mask, weight, bias, stride, padding, dilation, groups, offset_groups):
    from onnxscript import opset19 as op

    nd = len(stride)
    if nd != 1:
        return op.DeformConv(
            input, weight, offset, bias, mask,
            dilations=list(dilation), group=groups, offset_group=offset_groups, pads=list(padding), strides=list(stride),
        )
    import onnx_ir as ir

    # 1-D: a 2-D deformable conv over a height of 1. Each tap's dx gains a dy of 0 in front,
    # so the offsets [N, G*K, L] become [N, G*K, 2, L] -> [N, G*K*2, 1, L] ((dy, dx) per tap).
    dx = op.Unsqueeze(offset, [2])
    dy = op.ConstantOfShape(op.Shape(dx), value=ir.tensor([0], dtype=offset.dtype))
    offset_2d = op.Reshape(op.Concat(dy, dx, axis=2), [0, -1, 1, 0])
    out = op.DeformConv(
        op.Unsqueeze(input, [2]),
        op.Unsqueeze(weight, [2]),
        offset_2d,
        bias,
        None if mask is None else op.Unsqueeze(mask, [2]),
        dilations=[1, dilation[0]], group=groups, offset_group=offset_groups,
        pads=[0, padding[0], 0, padding[1]], strides=[1, stride[0]],
    )
    return op.Squeeze(out, [2])


def _roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned):
    from onnxscript import opset16 as op

    batch = op.Cast(op.Squeeze(op.Slice(rois, [0], [1], [1]), [1]), to=7)  # 7: INT64
    return op.RoiAlign(
        input,
        op.Slice(rois, [1], [5], [1]),
        batch,
        coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel",
        mode="avg",
        output_height=output_size[0],
        output_width=output_size[1],
        sampling_ratio=max(sampling_ratio, 0),
        spatial_scale=spatial_scale,
    )


def _roi_pool(input, rois, output_size, spatial_scale):
    from onnxscript import opset16 as op

    import onnx_ir as ir

    out = op.MaxRoiPool(input, rois, pooled_shape=list(output_size), spatial_scale=spatial_scale)
    # MaxRoiPool has no argmax output (it only serves convolab's backward): -1 everywhere
    # stands in for it, and the graph optimiser drops it when nothing reads it
    return out, op.ConstantOfShape(op.Shape(out), value=ir.tensor([-1], dtype=ir.DataType.INT32))


def translation_table() -> dict[Any, Any]:
    """``custom_translation_table`` for ``torch.onnx.export(..., dynamo=True)``: convolab's ops to ONNX.

    Returns:
        dict: ``{torch.ops.convolab.<op>.default: onnxscript function}`` for deform_conv,
        roi_align and roi_pool. Merge it with a table of your own if you have one.
    """
    return {
        torch.ops.convolab.deform_conv.default: _deform_conv,
        torch.ops.convolab.roi_align.default: _roi_align,
        torch.ops.convolab.roi_pool.default: _roi_pool,
    }


def export(model: Any, args: tuple, f: Any = None, *, dynamo: bool = True, opset_version: Optional[int] = None, **kwargs: Any) -> Any:
    """``torch.onnx.export`` with convolab's mappings and an opset that has them (>= 19).

    Args:
        model: the ``nn.Module`` (or function) to export.
        args (tuple): example inputs.
        f: where to write the model (path or file object), or None to only return it.
        dynamo (bool): the dynamo exporter (True) or the TorchScript one. Default: True.
        opset_version (int, optional): Default: torch's default, raised to :data:`OPSET`.
        **kwargs: passed on to ``torch.onnx.export`` (``dynamic_shapes``, ``input_names``, ...);
            a ``custom_translation_table`` of yours is merged with convolab's.

    Returns:
        What ``torch.onnx.export`` returns (an ``ONNXProgram`` for the dynamo exporter).

    Raises:
        ValueError: ``opset_version`` below 19.
    """
    if opset_version is None:
        opset_version = max(OPSET, torch.onnx._constants.ONNX_DEFAULT_OPSET)
    if opset_version < OPSET:
        raise ValueError(f"convolab.onnx.export: opset_version must be >= {OPSET} (DeformConv), got {opset_version}")
    if dynamo:
        kwargs["custom_translation_table"] = {**translation_table(), **kwargs.get("custom_translation_table", {})}
    else:
        register_torchscript_symbolics()
    return torch.onnx.export(model, args, f, dynamo=dynamo, opset_version=opset_version, **kwargs)


# ----------------------------------------------------------------------------------------------
# the TorchScript exporter: symbolic functions


def _is_none(value: Any) -> bool:
    return value is None or value.node().mustBeNone()


def _ints(value: Any) -> list[int]:
    from torch.onnx import symbolic_helper

    return [int(v) for v in symbolic_helper._parse_arg(value, "is")]


def _deform_conv_symbolic(g, input, offset, mask, weight, bias, stride, padding, dilation, groups, offset_groups):
    from torch.onnx import symbolic_helper

    stride, padding, dilation = _ints(stride), _ints(padding), _ints(dilation)
    groups, offset_groups = symbolic_helper._parse_arg(groups, "i"), symbolic_helper._parse_arg(offset_groups, "i")
    nd = len(stride)
    if nd == 1:
        # as in the dynamo translation: 2-D over a height of 1, a dy of 0 before each tap's dx
        axes = g.op("Constant", value_t=torch.tensor([2]))
        dx = g.op("Unsqueeze", offset, axes)
        dtype = offset.type().dtype() or torch.float32
        dy = g.op("ConstantOfShape", g.op("Shape", dx), value_t=torch.zeros(1, dtype=dtype))
        offset = g.op("Reshape", g.op("Concat", dy, dx, axis_i=2), g.op("Constant", value_t=torch.tensor([0, -1, 1, 0])))
        input, weight = g.op("Unsqueeze", input, axes), g.op("Unsqueeze", weight, axes)
        mask = mask if _is_none(mask) else g.op("Unsqueeze", mask, axes)
        stride, dilation, padding = [1, stride[0]], [1, dilation[0]], [0, padding[0], 0, padding[1]]
    inputs = [input, weight, offset]
    if not _is_none(mask):
        # the optional bias comes before the optional mask: an absent bias is an empty input
        inputs += [symbolic_helper._optional_input_placeholder_tensor(g) if _is_none(bias) else bias, mask]
    elif not _is_none(bias):
        inputs.append(bias)
    out = g.op(
        "DeformConv", *inputs,
        dilations_i=dilation, group_i=groups, offset_group_i=offset_groups, pads_i=padding, strides_i=stride,
    )
    return g.op("Squeeze", out, g.op("Constant", value_t=torch.tensor([2]))) if nd == 1 else out


def _roi_align_symbolic(g, input, rois, output_size, spatial_scale, sampling_ratio, aligned):
    from torch.onnx import symbolic_helper

    oh, ow = _ints(output_size)
    scale = symbolic_helper._parse_arg(spatial_scale, "f")
    ratio = symbolic_helper._parse_arg(sampling_ratio, "i")
    aligned = symbolic_helper._parse_arg(aligned, "b")
    const = lambda v: g.op("Constant", value_t=torch.tensor(v))  # noqa: E731
    batch = g.op("Cast", g.op("Squeeze", g.op("Slice", rois, const([0]), const([1]), const([1])), const([1])), to_i=7)
    coords = g.op("Slice", rois, const([1]), const([5]), const([1]))
    return g.op(
        "RoiAlign", input, coords, batch,
        coordinate_transformation_mode_s="half_pixel" if aligned else "output_half_pixel",
        mode_s="avg", output_height_i=oh, output_width_i=ow, sampling_ratio_i=max(ratio, 0), spatial_scale_f=scale,
    )


def _roi_pool_symbolic(g, input, rois, output_size, spatial_scale):
    from torch.onnx import symbolic_helper

    pooled = _ints(output_size)
    scale = symbolic_helper._parse_arg(spatial_scale, "f")
    # the argmax output only serves convolab's backward: MaxRoiPool has none
    return g.op("MaxRoiPool", input, rois, pooled_shape_i=pooled, spatial_scale_f=scale), None


def register_torchscript_symbolics(opset_version: int = OPSET) -> None:
    """Register convolab's ops with the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``).

    Done on ``import convolab.onnx``; call it again after unregistering. The mapping holds
    for every opset from ``opset_version`` (default 19, the first with DeformConv) up.
    """
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of dynamo; its registry still works
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
        for name, fn in (
            ("convolab::deform_conv", _deform_conv_symbolic),
            ("convolab::roi_align", _roi_align_symbolic),
            ("convolab::roi_pool", _roi_pool_symbolic),
        ):
            torch.onnx.register_custom_op_symbolic(name, fn, opset_version)


register_torchscript_symbolics()
