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
    compare(compiled(*inputs), module(*inputs), subject.atol)


def _dynamic_batch(module: nn.Module, inputs: tuple[Tensor, ...], subject: Subject):  # type: ignore[no-untyped-def]
    names = list(__import__("inspect").signature(module.forward).parameters)
    batch = Dim("batch", min=1, max=1024)
    return {names[0]: {0: batch}, **{n: None for n in names[1:len(inputs)]}} if subject.batched else None


def _other_batch(inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    first = inputs[0]
    return (torch.cat([first, first[:1] * 0.5]), *inputs[1:])


def run_export(module: nn.Module, inputs: tuple[Tensor, ...], subject: Subject) -> None:
    """``torch.export`` with a dynamic batch; the program runs at another batch size."""
    program = torch.export.export(module, inputs, dynamic_shapes=_dynamic_batch(module, inputs, subject))
    other = _other_batch(inputs) if subject.batched else inputs
    compare(program.module()(*other), module(*other), subject.atol)


def run_onnx(module: nn.Module, inputs: tuple[Tensor, ...], subject: Subject, dynamo: bool = True) -> None:
    """ONNX export (the dynamo or the TorchScript exporter), run by onnxruntime."""
    import onnxruntime

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(module, inputs, buffer, dynamo=True, verbose=False,
                              dynamic_shapes=_dynamic_batch(module, inputs, subject))
        else:
            names = [f"input{i}" for i in range(len(inputs))]
            axes = {"input0": {0: "batch"}} if subject.batched else None
            torch.onnx.export(module, inputs, buffer, dynamo=False, input_names=names, dynamic_axes=axes)
    session = onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    other = _other_batch(inputs) if subject.batched else inputs
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
    xs = tuple(t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs)
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
    """``torch.func.vmap`` over the batch (one sample at a time) and ``jacrev`` of a sum."""
    first, rest = inputs[0], inputs[1:]

    def one(sample: Tensor) -> Tensor:
        return _outputs(module(sample.unsqueeze(0), *rest))[0].squeeze(0)

    compare(torch.func.vmap(one)(first), _outputs(module(*inputs))[0], subject.atol)
    jac = torch.func.jacrev(lambda t: _outputs(module(t, *rest))[0].sum())(first[:1])
    assert jac.shape == first[:1].shape


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
