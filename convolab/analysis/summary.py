"""Layer-by-layer summary of any ``nn.Module`` without running it: shapes, receptive fields,
parameters, MACs and activation memory, computed on meta tensors.

The model is called once through :func:`torch.func.functional_call` with meta
copies of its parameters and buffers (the model itself is neither copied nor
changed) under a :class:`~convolab.analysis._tracer.Tracer`, which follows
every aten op by the rules of :mod:`convolab.analysis._rules`; layers registered
by class (:mod:`convolab.analysis.layers`) give their own field and MACs.
Forward hooks give the rows: one per module call, in call order.

Conventions (the numbers in the rows):

- **receptive field** of a unit, per spatial dim, in input pixels: ``size``
  (how many pixels it sees), ``jump`` (distance between adjacent units: the
  effective stride), ``start`` (centre of the first unit's field; negative in
  the padding) and ``padding`` (effective padding, ``(size - 1)/2 - start``).
  A merge (add, concat) takes the union of its branches and reports branches
  whose centres differ; a unit of a globally pooled or fully connected layer
  sees the union over the whole map (its jump is then the map's extent).
  Normalisation statistics and 1-wide
  broadcast gates (squeeze-and-excitation) are treated as constants. After up-sampling the
  field is the smallest window on evenly spaced centres that holds every unit's inputs (a
  unit's exact support can be smaller). Each convention that applies to the model is stated
  in :attr:`Summary.conventions` and the table's legend. Ops whose units do not see a window
  (circular padding, a recurrence over positions) make the field unknown (``?``).
- **MACs** (multiply-accumulates): convolutions and matrix products (linear
  layers), bias excluded: the convention of the published model-zoo "GFLOPS".
  Normalisation (one per element) and average pooling (one per window
  element) are counted separately in ``macs_by_kind`` and not in ``macs``.
- **parameters** of a row are those of its module and its children.
- **activation bytes**: the size of the row's outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn
from torch.utils._pytree import tree_leaves

from .._args import is_int
from ..arithmetic import ReceptiveField
from ._fields import CONVENTIONS, Info
from ._rules import ATEN, PadMode
from ._tracer import Frame, Tracer
from .format import RENDERER
from .layers import LayerRule, layer_rule, register_window_layer, window_info
from .report import Row, Summary

__all__ = [
    "Row",
    "Summary",
    "receptive_field",
    "register_window_layer",
    "summary",
]

InputSize = Union[Sequence[int], Sequence[Sequence[int]], Tensor, Sequence[Tensor]]


def _input_specs(input_size: InputSize, dtype: torch.dtype) -> list[tuple[tuple[int, ...], torch.dtype]]:
    op = "summary"
    if isinstance(input_size, Tensor):
        return [(tuple(input_size.shape), input_size.dtype)]
    if isinstance(input_size, (str, bytes)) or not isinstance(input_size, Sequence) or not input_size:
        raise ValueError(f"{op}: input_size must be a shape like (1, 3, 224, 224), a list of shapes "
                         f"or tensors, got {input_size!r}")
    items = [input_size] if all(isinstance(v, int) for v in input_size) else list(input_size)
    out = []
    for s in items:
        if isinstance(s, Tensor):
            out.append((tuple(s.shape), s.dtype))
            continue
        if not (isinstance(s, Sequence) and not isinstance(s, str) and len(s) >= 1 and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in s)):
            raise ValueError(f"{op}: input_size must be a shape of ints >= 0 like (1, 3, 224, 224) "
                             f"(batch and channels first), got {s!r}")
        out.append((tuple(s), dtype))
    return out


@dataclass
class _Call:
    """One module call of the pass: its frame (MACs, notes), outputs, and, for a layer with a
    rule of its own, that rule with the input and its Info as the call began."""

    module: nn.Module
    name: str
    frame: Frame
    outputs: list[Tensor] = field(default_factory=list)
    layer: Optional[tuple[LayerRule, Optional[Tensor], Optional[Info]]] = None


def _run(
    model: nn.Module, input_size: InputSize, device: Union[str, torch.device], dtype: torch.dtype
) -> tuple[Tracer, list[_Call], list[Tensor]]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary: model must be a torch.nn.Module, got {type(model).__name__}")
    specs = _input_specs(input_size, dtype)
    device = torch.device(device)
    tracer = Tracer(ATEN)
    calls: list[_Call] = []
    names = {id(m): n for n, m in model.named_modules()}
    handles = []

    def pre(module: nn.Module, args: tuple[Any, ...]) -> None:
        name = names[id(module)]
        call = _Call(module, name, tracer.enter(name))
        calls.append(call)
        rule = layer_rule(type(module))
        if rule is not None:
            # the layer's rule sets its output's field: the ops inside only count their MACs
            x = next((a for a in tree_leaves(args) if isinstance(a, Tensor)), None)
            call.layer = (rule, x, tracer.get(x))
            tracer.frozen += 1

    def post(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        frame = tracer.leave()
        call = next(c for c in reversed(calls) if c.frame is frame)
        outs = [t for t in tree_leaves(output) if isinstance(t, Tensor)]
        if call.layer is not None:
            tracer.frozen -= 1
            rule, x, info = call.layer
            if outs and info is not None and x is not None:
                tracer.set(outs[0], window_info(tracer, rule.window, module, x, info))
            if rule.macs is not None and outs and x is not None:
                frame.macs = dict(rule.macs(module, x, outs[0]))
        parent = tracer.frames[-1]
        for k, v in frame.macs.items():
            parent.macs[k] = parent.macs.get(k, 0) + v
        call.outputs = outs

    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    training = [(m, m.training) for m in model.modules()]
    model.eval()  # the inference graph: no batch statistics, dropout is the identity
    try:
        state = {
            k: torch.empty_like(v, device="meta")
            for k, v in (*model.named_parameters(), *model.named_buffers())
        } if device.type == "meta" else {}
        with torch.no_grad(), tracer, PadMode(tracer):
            if device.type == "meta":
                inputs = [torch.empty(s, dtype=dt, device="meta") for s, dt in specs]
                for i, x in enumerate(inputs):
                    tracer.start_input(x, i)
                output = torch.func.functional_call(model, state, tuple(inputs))
            else:
                inputs = [torch.zeros(s, dtype=dt, device=device) for s, dt in specs]
                for i, x in enumerate(inputs):
                    tracer.start_input(x, i)
                output = model(*inputs)
    except (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError) as exc:
        where = tracer.where[-1] or "<model>"
        hint = ""
        if device.type == "meta" and "meta" in str(exc).lower():
            hint = " (the model reads tensor values, which meta tensors do not have: try device='cpu')"
        raise ValueError(
            f"summary: the forward pass of {type(model).__name__} failed in {where!r} for input "
            f"{[list(s) for s, _ in specs]}: {exc}{hint}"
        ) from exc
    finally:
        for h in handles:
            h.remove()
        for m, t in training:
            m.training = t
    del output
    return tracer, calls, inputs


def summary(
    model: nn.Module,
    input_size: InputSize,
    *,
    depth: Optional[int] = 3,
    device: Union[str, torch.device] = "meta",
    dtype: torch.dtype = torch.float32,
) -> Summary:
    """Shapes, receptive fields, parameters and MACs of every layer of ``model``, without running it.

    Args:
        model (nn.Module): any module built from torch or convolab layers, with branches.
        input_size: the input shape including the batch, e.g. ``(1, 3, 224, 224)``; a list of
            shapes (or tensors, whose shapes and dtypes are used) for several inputs. Dims
            after the first two are spatial.
        depth (int or None): deepest module nesting to list (0: the model only). Totals always
            cover the whole model. Default: 3; ``None`` lists every call.
        device (str): ``"meta"`` (default: no arithmetic, no activation memory) or a real device
            for models with ops that have no meta kernel (runs a real forward on zeros).
        dtype: dtype of the inputs (for the activation sizes). Default: float32.

    Returns:
        Summary: rows (one per module call, in call order) and totals; see the module docstring
        for the conventions.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: a malformed ``input_size``, or the forward pass fails for that input (the
            message names the layer).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        >>> s = summary(net, (1, 3, 32, 32))
        >>> [(r.name, r.output_shapes[0], r.fields[0].size, r.fields[0].jump) for r in s.rows[1:]]
        [('0', (1, 8, 32, 32), 3, 1), ('1', (1, 8, 32, 32), 3, 1), ('2', (1, 8, 16, 16), 4, 2)]
        >>> s.macs, s.params
        (221184, 224)
    """
    if depth is not None and (not is_int(depth) or depth < 0):
        raise ValueError(f"summary: depth must be an int >= 0 or None, got {depth!r}")
    tracer, calls, inputs = _run(model, input_size, device, dtype)
    counts: dict[int, tuple[int, int]] = {}

    def count(m: nn.Module) -> tuple[int, int]:
        if id(m) not in counts:
            ps = list(m.parameters())
            counts[id(m)] = (sum(p.numel() for p in ps), sum(p.numel() for p in ps if p.requires_grad))
        return counts[id(m)]

    rows = []
    leaf_bytes = 0
    for call in calls:
        module, name, outs = call.module, call.name, call.outputs
        info = tracer.get(outs[0]) if outs else None
        fields: Optional[tuple[ReceptiveField, ...]] = None
        problem = None
        if info is not None:
            problem = info.problem
            found = info.fields()
            fields = tuple(f.rf for f in found) if found and problem is None else None
        nbytes = sum(t.numel() * t.element_size() for t in outs)
        if not any(True for _ in module.children()):
            leaf_bytes += nbytes
        params, trainable = count(module)
        rows.append(Row(
            name=name,
            type=type(module).__name__,
            depth=0 if not name else name.count(".") + 1,
            output_shapes=tuple(tuple(t.shape) for t in outs),
            fields=fields,
            problem=problem,
            params=params,
            trainable=trainable,
            macs_by_kind=dict(call.frame.macs),
            activation_bytes=nbytes,
            notes=tuple(call.frame.notes),
        ))
    total_p = list(model.parameters())
    shown = tuple(r for r in rows if depth is None or r.depth <= depth)
    return Summary(
        model=type(model).__name__,
        input_shapes=tuple(tuple(x.shape) for x in inputs),
        rows=shown,
        params=sum(p.numel() for p in total_p),
        trainable=sum(p.numel() for p in total_p if p.requires_grad),
        macs_by_kind=dict(tracer.frames[0].macs),
        activation_bytes=leaf_bytes,
        input_bytes=sum(x.numel() * x.element_size() for x in inputs),
        param_bytes=sum(p.numel() * p.element_size() for p in total_p),
        not_analysed=tuple(dict.fromkeys(tracer.not_analysed)),
        warnings=tuple(tracer.warnings),
        depth=depth,
        # the conventions that decide a number of this model's rows, each stated once in the legend
        conventions=tuple(CONVENTIONS[n] for n in dict.fromkeys(n for r in rows for n in r.notes) if n in CONVENTIONS),
        _all_rows=tuple(rows),
        _renderer=RENDERER,
    )


def receptive_field(
    model: nn.Module,
    input_size: InputSize,
    layer: Optional[Union[str, nn.Module]] = None,
    *,
    device: Union[str, torch.device] = "meta",
) -> tuple[ReceptiveField, ...]:
    """Receptive field (size, jump, start) per spatial dim of the units of one layer's output.

    Args:
        model (nn.Module): the network.
        input_size: as in :func:`summary`, e.g. ``(1, 3, 224, 224)``.
        layer (str or nn.Module, optional): qualified name (``"layer4"``) or the module itself;
            default: the model's output. Its first call counts.
        device: as in :func:`summary`.

    Returns:
        tuple[ReceptiveField, ...]: one per spatial dim of the input.

    Raises:
        ValueError: an unknown layer (with the closest names), or a layer whose field is unknown
            (the message says which op was not analysed or which branches do not align).

    Example:
        >>> vgg_block = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1),
        ...                           nn.MaxPool2d(2))
        >>> receptive_field(vgg_block, (1, 3, 32, 32), "1")
        (ReceptiveField(size=5, jump=1, start=0.0), ReceptiveField(size=5, jump=1, start=0.0))
    """
    s = summary(model, input_size, depth=None, device=device)
    if isinstance(layer, nn.Module):
        names = [n for n, m in model.named_modules() if m is layer]
        if not names:
            raise ValueError(f"receptive_field: layer {type(layer).__name__} is not a submodule of the model")
        layer = names[0]
    try:
        row = s.row(layer or "")
    except ValueError as exc:
        raise ValueError(str(exc).replace("summary:", "receptive_field:", 1)) from None
    if row.fields is None:
        why = row.problem or "its output has no spatial dims"
        raise ValueError(f"receptive_field: the field of {layer or '<model>'!r} is unknown: {why}")
    return row.fields
