"""Deformable conv and ROI modules under the PyTorch toolchain, beyond what every module gets.

Every tool (compile, export, ONNX, jit, fx, autocast, vmap) runs over these modules in
``tests/toolchain`` (one registry of subjects). Here: the op stays one fx node, inductor
compiles a deformable block, ``jacrev`` equals autograd's Jacobian, and bf16 modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pytest
import torch

from convolab import nn as cnn

SPATIAL = {1: (9,), 2: (6, 7), 3: (4, 5, 4)}
SMALL = {1: (4,), 2: (3, 4), 3: (3, 2, 3)}
TORCH_CONVS = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
OWNING = {
    "DeformConv1d": cnn.DeformConv1d,
    "DeformConv2d": cnn.DeformConv2d,
    "DeformConv3d": cnn.DeformConv3d,
    "ModulatedDeformConv1d": cnn.ModulatedDeformConv1d,
    "ModulatedDeformConv2d": cnn.ModulatedDeformConv2d,
    "ModulatedDeformConv3d": cnn.ModulatedDeformConv3d,
}
PLAIN = {"PlainDeformConv1d": cnn.PlainDeformConv1d, "PlainDeformConv2d": cnn.PlainDeformConv2d, "PlainDeformConv3d": cnn.PlainDeformConv3d}


@dataclass(frozen=True)
class Subject:
    """A module and its example inputs for batch size ``n``; ``batched`` marks inputs with a batch dim."""

    name: str
    make: Callable[[], torch.nn.Module]
    inputs: Callable[..., tuple]  # (n, small=False): small inputs for Jacobians
    batched: tuple[bool, ...]
    predictor: str = ""  # "convolab" or "torch" for the modules that own an offset predictor
    marks: tuple = field(default=())


def _with_offsets(m: torch.nn.Module, torch_predictor: bool) -> torch.nn.Module:
    """Random (not zero) offset predictor weights, so offsets are fractional and non-zero."""
    if torch_predictor:
        old = m.conv_offset
        m.conv_offset = TORCH_CONVS[m.ndim](old.in_channels, old.out_channels, m.kernel_size, m.stride, m.padding, m.dilation)
    torch.nn.init.normal_(m.conv_offset.weight, std=0.3)
    return m


def _owning(name: str, torch_predictor: bool) -> Subject:
    cls = OWNING[name]
    nd = cls.ndim

    def make():
        torch.manual_seed(0)
        return _with_offsets(cls(4, 6, 3, padding=1, groups=2, offset_groups=2), torch_predictor)

    def inputs(n, small=False):
        return (torch.randn(n, 4, *(SMALL if small else SPATIAL)[nd], generator=torch.Generator().manual_seed(n)),)

    predictor = "torch" if torch_predictor else "convolab"
    return Subject(f"{name}{'-torch-predictor' if torch_predictor else ''}", make, inputs, (True,), predictor)


def _plain(name: str) -> Subject:
    cls = PLAIN[name]
    nd = cls.ndim
    taps = 2**nd

    def make():
        torch.manual_seed(0)
        return cls(4, 6, 2, padding=1, offset_groups=2)

    def inputs(n, small=False):
        g = torch.Generator().manual_seed(n)
        spatial = (SMALL if small else SPATIAL)[nd]
        out = tuple(s + 1 for s in spatial)
        return (
            torch.randn(n, 4, *spatial, generator=g),
            torch.randn(n, nd * 2 * taps, *out, generator=g),
            torch.rand(n, 2 * taps, *out, generator=g),
        )

    return Subject(name, make, inputs, (True, True, True))


def _roi(name: str, make: Callable[[], torch.nn.Module]) -> Subject:
    def inputs(n, small=False):
        g = torch.Generator().manual_seed(n)
        k = 2 * n + 1
        xy = torch.rand(k, 2, generator=g) * 20
        boxes = torch.cat([torch.arange(k).remainder(n).float().view(-1, 1), xy, xy + 2 + torch.rand(k, 2, generator=g) * 12], 1)
        return torch.randn(n, 2 if small else 3, *((6, 7) if small else (12, 14)), generator=g), boxes

    return Subject(name, make, inputs, (True, True))


SUBJECTS = (
    [_owning(name, torch_predictor=False) for name in OWNING]
    + [_owning(name, torch_predictor=True) for name in ("DeformConv1d", "ModulatedDeformConv2d", "DeformConv3d")]
    + [_plain(name) for name in PLAIN]
    + [
        _roi("RoIAlign", lambda: cnn.RoIAlign((3, 2), 0.5, 2, aligned=True)),
        _roi("RoIAlign-adaptive", lambda: cnn.RoIAlign(3, 0.5, 0)),
        _roi("RoIPool", lambda: cnn.RoIPool((3, 2), 0.5)),
    ]
)


def _cases(tool: str) -> list:
    # the torch-predictor variants show the op alone; the tool runs of tests/toolchain cover the rest
    return [pytest.param(s, id=s.name, marks=list(s.marks)) for s in SUBJECTS]


def _close(a, b, tol=1e-5):
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def _grads(m: torch.nn.Module, args: tuple, out: torch.Tensor) -> list:
    ins = [a for a in args if a.requires_grad]
    return torch.autograd.grad(out.square().sum(), [*ins, *m.parameters()])


def _grad_inputs(s: Subject, args: tuple) -> tuple:
    """Every floating input requires grad but the boxes (no gradient flows to them)."""
    roi = s.name.startswith("RoI")
    return tuple(a.clone().requires_grad_(not (roi and i == 1)) for i, a in enumerate(args))


# ----------------------------------------------------------------------------------------------


class _DeformBlock(torch.nn.Module):
    """A DCNv2 block: a torch conv predicts offsets and mask, a deformable conv, BN, ReLU."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.predict = torch.nn.Conv2d(c, 27, 3, padding=1)
        torch.nn.init.normal_(self.predict.weight, std=0.1)
        self.deform = cnn.PlainDeformConv2d(c, c, 3, padding=1)
        self.bn, self.relu = torch.nn.BatchNorm2d(c), torch.nn.ReLU()

    def forward(self, x):
        offset, mask = self.predict(x).split([18, 9], 1)
        return self.relu(self.bn(self.deform(x, offset, mask.sigmoid())))


def test_inductor_compiles_a_deformable_block():
    torch._dynamo.reset()
    torch.manual_seed(0)
    m = _DeformBlock()
    x = torch.randn(2, 8, 9, 9, requires_grad=True)
    compiled = torch.compile(m, fullgraph=True, backend="inductor")
    out, ref = compiled(x), m(x)
    _close(out, ref, 1e-4)
    for a, b in zip(_grads(m, (x,), out), _grads(m, (x,), ref)):
        _close(a, b, 1e-3)


@pytest.mark.parametrize("s", _cases("fx"))
def test_fx_symbolic_trace_keeps_the_op_as_one_call(s):
    m = s.make()
    gm = torch.fx.symbolic_trace(m)
    targets = [getattr(n.target, "__name__", "") for n in gm.graph.nodes if n.op == "call_function"]
    assert sum(t in ("deform_conv", "roi_align", "roi_pool") for t in targets) == 1, targets
    args = s.inputs(2)
    _close(gm(*args), m(*args))


@pytest.mark.parametrize("s", _cases("jacrev"))
def test_jacrev_equals_autograd_jacobian(s):
    m = s.make().double()
    args = tuple(a.double() for a in s.inputs(1, small=True))
    fn = lambda x: m(x, *args[1:])  # noqa: E731
    _close(torch.func.jacrev(fn)(args[0]), torch.autograd.functional.jacobian(fn, args[0]), 1e-9)


@pytest.mark.parametrize("s", _cases("bfloat16"))
def test_bfloat16_module(s):
    m = s.make()
    args = s.inputs(2)
    ref = m(*args)
    low = m.bfloat16()
    # the boxes stay float32 (the op keeps them so); every other input goes bf16
    args = _grad_inputs(s, tuple(a if s.name.startswith("RoI") and i == 1 else a.bfloat16() for i, a in enumerate(args)))
    out = low(*args)
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() <= 0.03 * ref.abs().max()
    out.float().sum().backward()
    assert all(t.grad.dtype == torch.bfloat16 for t in (*low.parameters(), args[0]))


def test_every_deform_and_roi_module_is_a_subject():
    names = {s.name for s in SUBJECTS}
    assert set(OWNING) | set(PLAIN) | {"RoIAlign", "RoIPool"} <= names
    assert len(SUBJECTS) == len(names)  # unique ids
