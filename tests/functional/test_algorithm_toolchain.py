"""Every explicit algorithm under the PyTorch toolchain, table-driven: torch.func.vmap (over the
input, the weight, both), jacrev, forward-mode AD (jvp, jacfwd), double backward (gradgradcheck
in float64) and torch.compile(fullgraph=True), each against native, for convolutions and, where
the algorithm runs them, transposed convolutions."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch

from convolab.functional import conv, conv_transpose

ALGORITHMS = ("native", "native_cl", "direct", "im2col", "gemm", "fft", "winograd", "winograd_f2")


@dataclass(frozen=True)
class Case:
    """A small float64 problem an algorithm runs: the op, its shapes and arguments."""

    name: str
    transposed: bool
    x: tuple[int, ...]
    w: tuple[int, ...]
    kwargs: dict = field(default_factory=dict)

    def op(self, algorithm: str):
        f = conv_transpose if self.transposed else conv
        return lambda x, w: f(x, w, algorithm=algorithm, **self.kwargs)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(0)
        return (torch.randn(*self.x, generator=gen, dtype=torch.float64),
                torch.randn(*self.w, generator=gen, dtype=torch.float64))


def _cases(algorithm: str) -> list[Case]:
    """A conv in the algorithm's domain (grouped, padded; strided and dilated where it can) and,
    where it runs them, a transposed conv."""
    k = {"gemm": 1, "winograd": 3, "winograd_f2": 3}.get(algorithm, 3)
    general = algorithm not in ("winograd", "winograd_f2")
    cases = [
        Case("conv2d", False, (2, 4, 6, 5), (4, 2, k, k),
             dict(padding=1, groups=2, **(dict(stride=(2, 1)) if general else {}))),
        Case("conv1d", False, (2, 2, 7), (3, 2, k), dict(padding=((1, 0),), **(dict(dilation=2) if general else {}))),
    ]
    if algorithm == "native_cl":  # channels-last formats exist for 2-D and 3-D only
        cases = cases[:1]
    cases.append(Case("conv_transpose2d", True, (2, 4, 4, 3), (4, 1, k, k),
                      dict(padding=1, groups=2, **(dict(stride=2, output_padding=1) if general else {}))))
    return cases


TABLE = [pytest.param(a, c, id=f"{a}-{c.name}") for a in ALGORITHMS for c in _cases(a)]


def _reference(case: Case):
    return case.op("native")


@pytest.mark.parametrize("algorithm,case", TABLE)
@pytest.mark.parametrize("over", ["input", "weight", "both"])
def test_vmap(algorithm, case, over):
    x, w = case.tensors()
    xs, ws = torch.stack([x, x.flip(0)]), torch.stack([w, 2 * w])
    args, dims = {"input": ((xs, w), (0, None)), "weight": ((x, ws), (None, 0)), "both": ((xs, ws), (0, 0))}[over]
    y = torch.func.vmap(case.op(algorithm), in_dims=dims)(*args)
    ref = torch.func.vmap(_reference(case), in_dims=dims)(*args)
    torch.testing.assert_close(y, ref)


@pytest.mark.parametrize("algorithm,case", TABLE)
def test_jacrev(algorithm, case):
    x, w = case.tensors()
    jac = torch.func.jacrev(case.op(algorithm), argnums=(0, 1))(x[:1], w)
    ref = torch.func.jacrev(_reference(case), argnums=(0, 1))(x[:1], w)
    torch.testing.assert_close(jac, ref)


@pytest.mark.parametrize("algorithm,case", TABLE)
def test_jvp_and_jacfwd(algorithm, case):
    x, w = case.tensors()
    tx, tw = torch.randn_like(x), torch.randn_like(w)
    y, t = torch.func.jvp(case.op(algorithm), (x, w), (tx, tw))
    ry, rt = torch.func.jvp(_reference(case), (x, w), (tx, tw))
    torch.testing.assert_close((y, t), (ry, rt))
    jac = torch.func.jacfwd(case.op(algorithm), argnums=1)(x[:1], w)
    torch.testing.assert_close(jac, torch.func.jacfwd(_reference(case), argnums=1)(x[:1], w))


@pytest.mark.parametrize("algorithm,case", TABLE)
def test_gradgradcheck(algorithm, case):
    x, w = case.tensors()
    x, w = x[:1].requires_grad_(), w.requires_grad_()
    assert torch.autograd.gradgradcheck(case.op(algorithm), (x, w), fast_mode=True)


@pytest.mark.parametrize("algorithm,case", TABLE)
def test_compile_fullgraph(algorithm, case):
    torch._dynamo.reset()
    x, w = case.tensors()
    compiled = torch.compile(case.op(algorithm), fullgraph=True, backend="aot_eager")
    xc, wc = x.clone().requires_grad_(), w.clone().requires_grad_()
    y = compiled(xc, wc)
    y.square().sum().backward()
    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
    ref = _reference(case)(xr, wr)
    ref.square().sum().backward()
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close((xc.grad, wc.grad), (xr.grad, wr.grad))


def test_table_covers_every_built_in_algorithm():
    from convolab.functional.algorithms import ALGORITHMS as REGISTERED

    assert set(REGISTERED) == set(ALGORITHMS)
