"""One function per tool of the PyTorch toolchain: put a module through it and compare with eager.

Each takes ``(module, inputs, subject)`` and raises when the tool fails or disagrees; the test
modules call them over the registry of subjects.
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import Tensor, nn
from torch.export import Dim

from .subjects import Subject, built, relative_close


def _outputs(y: object) -> list[Tensor]:
    if isinstance(y, Tensor):
        return [y]
    if isinstance(y, (tuple, list)):
        return [t for t in y if isinstance(t, Tensor)]
    if hasattr(y, "_fields"):  # named tuples of models (InceptionOutputs)
        return [t for t in y if isinstance(t, Tensor)]
    raise TypeError(f"unexpected output {type(y).__name__}")


def compare(actual: object, expected: object, atol: float) -> None:
    for a, e in zip(_outputs(actual), _outputs(expected), strict=True):
        if e.is_floating_point():
            relative_close(a, e, atol)
        else:
            assert torch.equal(a, e)


def run_compile(module: nn.Module, inputs: tuple[Tensor, ...], subject: Subject, backend: str = "aot_eager") -> None:
    """``torch.compile(fullgraph=True)``: one graph, no break, the same output."""
    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=True, backend=backend)
    out, ref = compiled(*inputs), module(*inputs)
    compare(out, ref, subject.atol)
    params = [p for p in module.parameters() if p.requires_grad]
    if params and any(o.requires_grad for o in _outputs(ref)):  # the compiled backward gives eager's gradients
        loss = [sum(o.float().square().sum() for o in _outputs(y) if o.is_floating_point()) for y in (out, ref)]
        for a, b in zip(torch.autograd.grad(loss[0], params), torch.autograd.grad(loss[1], params)):
            relative_close(a, b, max(subject.atol, 1e-4))


def _dynamic_batch(module: nn.Module, subject: Subject):  # type: ignore[no-untyped-def]
    """One dynamic batch dim shared by every batched argument (the offsets' batch is the input's)."""
    batch = Dim("batch", min=1, max=1024)
    return tuple({0: batch} if b is True else {0: Dim(f"rows{i}", min=1)} if b else None
                 for i, b in enumerate(subject.batched))


def run_export(module: nn.Module, inputs: tuple[Tensor, ...], subject: Subject) -> None:
    """``torch.export`` with a dynamic batch; the program runs at other batch sizes."""
    program = torch.export.export(module, inputs, dynamic_shapes=_dynamic_batch(module, subject))
    for n in (3, 1):
        other = subject.inputs(n)
        compare(program.module()(*other), module(*other), subject.atol)


def run_onnx(module: nn.Module, inputs: tuple[Tensor, ...], subject: Subject, dynamo: bool = True) -> None:
    """ONNX export (the dynamo or the TorchScript exporter, convolab's kernels mapped by
    :mod:`convolab.onnx`), run by onnxruntime at another batch size."""
    import onnxruntime

    import convolab.onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            convolab.onnx.export(module, inputs, buffer, dynamo=True, verbose=False,
                                 dynamic_shapes=_dynamic_batch(module, subject))
        else:
            names = [f"input{i}" for i in range(len(inputs))]
            axes = {name: {0: "batch" if b is True else f"rows{i}"}
                    for i, (name, b) in enumerate(zip(names, subject.batched)) if b}
            convolab.onnx.export(module, inputs, buffer, dynamo=False, input_names=names, dynamic_axes=axes)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    other = subject.inputs(3)
    feed = {arg.name: t.numpy() for arg, t in zip(session.get_inputs(), other)}
    got = [torch.from_numpy(a) for a in session.run(None, feed)]
    want = _outputs(module(*other))
    for g, w in zip(got, want):
        relative_close(g.to(w.dtype), w, max(subject.atol, 1e-4))


def run_onnx_ts(module: nn.Module, inputs: tuple[Tensor, ...], subject: Subject) -> None:
    run_onnx(module, inputs, subject, dynamo=False)


def run_jit_trace(module: nn.Module, inputs: tuple[Tensor, ...], subject: Subject) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, inputs, check_trace=False)
    compare(traced(*inputs), module(*inputs), subject.atol)


def run_jit_script(module: nn.Module, inputs: tuple[Tensor, ...], subject: Subject) -> None:
    scripted = torch.jit.script(module)
    compare(scripted(*inputs), module(*inputs), subject.atol)


def run_fx(module: nn.Module, inputs: tuple[Tensor, ...], subject: Subject) -> None:
    """``torch.fx.symbolic_trace`` (what feature extractors and graph rewriters use)."""
    graph = torch.fx.symbolic_trace(module)
    compare(graph(*inputs), module(*inputs), subject.atol)


def run_autocast(module: nn.Module, inputs: tuple[Tensor, ...], subject: Subject) -> None:
    """Forward and backward under ``torch.autocast('cpu', torch.bfloat16)``; outputs close to float32."""
    module = module.train(False)
    xs = tuple(t.detach().clone().requires_grad_(t.is_floating_point() and b is True)
               for t, b in zip(inputs, subject.batched))
    with torch.autocast("cpu", torch.bfloat16):
        y = module(*xs)
    outs = _outputs(y)
    sum(o.float().sum() for o in outs if o.is_floating_point()).backward()
    reference = _outputs(module(*inputs))
    for o, r in zip(outs, reference):
        if r.is_floating_point():  # bfloat16 has 8 significant bits
            relative_close(o.float(), r, 0.1)
    assert all(x.grad is not None and torch.isfinite(x.grad).all() for x in xs if x.requires_grad)


def run_vmap(module: nn.Module, inputs: tuple[Tensor, ...], subject: Subject) -> None:
    """``torch.func.vmap`` over a stack of batches, and ``jacrev`` of a sum at batch 1."""
    stacks = [inputs, subject.inputs(2)]
    mapped = [b is True for b in subject.batched]
    stacked = tuple(torch.stack([s[i] * (k + 1) for k, s in enumerate(stacks)]) if m else inputs[i]
                    for i, m in enumerate(mapped))
    in_dims = tuple(0 if m else None for m in mapped)
    expected = torch.stack([
        _outputs(module(*(s[i] * (k + 1) if m else inputs[i] for i, m in enumerate(mapped))))[0]
        for k, s in enumerate(stacks)
    ])
    got = torch.func.vmap(lambda *a: _outputs(module(*a))[0], in_dims=in_dims)(*stacked)
    compare(got, expected, subject.atol)
    first, *rest = subject.inputs(1)
    jac = torch.func.jacrev(lambda t: _outputs(module(t, *rest))[0].sum())(first)
    assert jac.shape == first.shape


RUNNERS = {
    "compile": run_compile,
    "export": run_export,
    "onnx": run_onnx,
    "onnx_ts": run_onnx_ts,
    "jit_trace": run_jit_trace,
    "jit_script": run_jit_script,
    "fx": run_fx,
    "autocast": run_autocast,
    "vmap": run_vmap,
}


def check(tool: str, subject: Subject) -> None:
    """Put ``subject`` through ``tool``: it must work, or refuse with the clear error it declares."""
    import pytest

    module, inputs = built(subject)
    run = RUNNERS[tool]
    if tool in subject.refuses:
        with pytest.raises(Exception, match=subject.refuses[tool]):
            run(module, inputs, subject)
    else:
        run(module, inputs, subject)
