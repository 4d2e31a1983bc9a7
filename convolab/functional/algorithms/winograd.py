"""``"winograd"`` / ``"winograd_f2"``: minimal filtering F(m, 3) for 3-tap kernels (Lavin & Gray, 2016).

An output tile of ``m`` samples of a 3-tap correlation needs ``m + 2`` inputs and
``m * 3`` multiplications done directly; Winograd's algorithm needs only
``m + 2``: ``y = A^T [(G g) * (B^T d)]``. Nested per dim it gives F(m x m, 3 x 3)
with ``(m + 2)^2`` multiplications per ``m^2`` outputs instead of ``9 m^2``
(2.25x fewer for m = 2, 4x for m = 4), and the same for 1-D and 3-D.

Here the input tiles are a strided view (the shared windowing primitive), the
transforms ``B^T``, ``G``, ``A^T`` are matrix products applied along each tile
axis, and the channel reduction is one batched GEMM per transformed position
(``[(m+2)^nd, groups]`` batches of ``[O/g, C/g] @ [C/g, tiles]``). Autograd
differentiates the whole chain (every step is linear), so the backward is
the transposed chain.

Numerics — not native's (``"auto"`` runs winograd only behind the checks of
:mod:`._numerics`): the transforms mix a whole tile. A NaN or +-Inf input value
makes NaN every output of each tile whose ``(m + 2)``-wide input window holds
it (within ``2m`` outputs of those torch's kernels reach, per dim, in its sample
and channel group); a NaN or +-Inf weight makes every output of its output
channel NaN (an Inf weight gives NaN where torch gives +-Inf, through
``Inf - Inf`` in ``A^T``). The error of an output is bounded by its tile, not
its window: ``|y_p - exact_p| <~ c_m u ||x_tile||_inf ||w||_1`` with ``c_m`` the
growth of the transforms (a value of 1e8 in a tile shifts its other outputs).

Numeric error: the transforms mix inputs with weights of very different size,
so float32 rounding grows with m. Measured against float64 on unit-normal data,
the max error relative to the largest output is ~5e-7 for F(2, 3) and ~3e-6
for F(4, 3) in 2-D (C up to 256; Lavin's points 0, +-1, +-2 gave ~7e-6, the
points 0, +-1, 1/2, -2 used here ~3e-6); the documented bound, pinned by the
tests, is ``max|y - y64| <= 1e-5 * max|y64|``.

``"winograd"`` is F(4, 3) (tile 6) in 1-D and 2-D and F(2, 3) in 3-D, where
F(4, 3) nested three times measured ~2e-5, beyond the bound; ``"winograd_f2"``
is F(2, 3) (tile 4) everywhere.
Applies to 3-tap kernels, stride 1, no dilation, 1-3 spatial dims, any groups.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from .._windows import pad_pairs, windows
from . import _machine
from .registry import Problem, register_algorithm
from ._machine import bytes_in, bytes_out
from ._numerics import CHECKED

# Interpolation points of the Toom-Cook construction (plus the point at infinity). For
# F(4, 3), 1/2 and -2 instead of Lavin's +-2 cut the float32 error ~3x (Barabasz et al., 2020).
POINTS = {2: (0.0, 1.0, -1.0), 4: (0.0, 1.0, -1.0, 0.5, -2.0)}


def _toom_cook(m: int) -> tuple[list[list[float]], ...]:
    """``(B^T, G, A^T)`` of F(m, 3) in float64, as nested lists (see :func:`winograd_matrices`)."""
    points, r = POINTS[m], 3
    n = m + r - 1
    at = torch.zeros(m, n, dtype=torch.float64)
    gm = torch.zeros(n, r, dtype=torch.float64)
    for j, a in enumerate(points):
        scale = math.prod(a - b for b in points if b != a)
        at[:, j] = torch.tensor([a**i for i in range(m)], dtype=torch.float64)
        gm[j] = torch.tensor([a**k / scale for k in range(r)], dtype=torch.float64)
    at[m - 1, n - 1] = gm[n - 1, r - 1] = 1.0  # the point at infinity
    system = (at[:, None, :] * gm.t()[None, :, :]).reshape(m * r, n)  # rows (i, k), columns j
    target = torch.zeros(m * r, n, dtype=torch.float64)
    for i in range(m):
        for k in range(r):
            target[i * r + k, i + k] = 1.0
    bt = torch.linalg.lstsq(system, target).solution
    return tuple(t.tolist() for t in (bt, gm, at))


# Built once at import, kept as Python numbers: a cache of tensors would hand the same tensor
# objects to every caller, which tracers (dynamo) cannot put in a graph, and a compiled graph
# would otherwise trace the least-squares solve. torch.tensor of constants traces as a constant.
_MATRICES = {m: _toom_cook(m) for m in POINTS}


def winograd_matrices(m: int, dtype: torch.dtype, device: str) -> tuple[Tensor, Tensor, Tensor]:
    """``(B^T [n, n], G [n, 3], A^T [m, n])`` of F(m, 3), ``n = m + 2``, built in float64 then cast.

    Toom-Cook on the points ``POINTS[m]`` and infinity: ``A^T[i, j] = a_j^i``,
    ``G[j, k] = a_j^k / prod_{l != j}(a_j - a_l)``, and ``B^T`` solves the identity
    ``sum_j A^T[i, j] G[j, k] B^T[j, l] = [l == i + k]`` that makes
    ``A^T [(G g) * (B^T d)]`` the correlation of ``d`` with ``g`` (exact up to rounding).
    """
    return tuple(torch.tensor(t, dtype=torch.float64).to(dtype=dtype, device=device) for t in _MATRICES[m])


def _along(t: Tensor, mat: Tensor, dims: range) -> Tensor:
    """Apply ``mat`` along each of ``dims`` of ``t`` (the separable N-d transform)."""
    for d in dims:
        t = (t.movedim(d, -1) @ mat.t()).movedim(-1, d)
    return t


def winograd_conv(x: Tensor, weight: Tensor, p: Problem, m: int) -> Tensor:
    """F(m, 3)^nd correlation of the unpadded ``x`` with the 3-tap ``weight`` (no bias)."""
    nd, g, o = p.ndim, p.groups, p.out_channels
    a = m + 2
    bt, gm, at = winograd_matrices(m, x.dtype, str(x.device))
    tiles = tuple(math.ceil(s / m) for s in p.output_size)
    x = pad_pairs(x, p.padding)
    # pad (or crop) so the tiles exactly cover the output: tiles*m + 2 inputs per dim
    x = pad_pairs(x, [(0, t * m + 2 - s) for t, s in zip(tiles, x.shape[2:])])
    n, c = x.shape[:2]
    d = windows(x, (a,) * nd, (m,) * nd, (1,) * nd)  # [N, C, *tiles, *a] (a view)
    v = _along(d, bt, range(2 + nd, 2 + 2 * nd))  # B^T d B
    u = _along(weight, gm, range(2, 2 + nd))  # G g G^T: [O, C/g, *a]
    count = math.prod(tiles)
    # -> [a^nd, g, C/g, N * tiles] and [a^nd, g, O/g, C/g]
    v = v.reshape(n, g, c // g, count, a**nd).permute(4, 1, 2, 0, 3).reshape(a**nd, g, c // g, n * count)
    u = u.reshape(g, o // g, c // g, a**nd).permute(3, 0, 1, 2)
    mm = u * v if c // g == 1 else u @ v  # depthwise: a broadcast product, not a GEMM
    mm = mm.reshape(*(a,) * nd, o, n, *tiles)
    y = _along(mm, at, range(nd))  # A^T M A: [*m, O, N, *tiles]
    # -> [N, O, tile_1, m, tile_2, m, ...]
    perm = (nd + 1, nd, *(i for j in range(nd) for i in (nd + 2 + j, j)))
    y = y.permute(perm).reshape(n, o, *(t * m for t in tiles))
    return y[(Ellipsis, *(slice(0, s) for s in p.output_size))]


class Winograd:
    requirement = (
        "winograd needs 3-tap kernels in every dim, stride 1, dilation 1, no input dilation, "
        "a floating-point dtype"
    )

    def __init__(self, name: str, tiles: dict[int, int]) -> None:
        self.name, self.tiles = name, tiles  # output tile size m per number of spatial dims

    def supports(self, p: Problem) -> bool:
        return (
            all(k == 3 for k in p.kernel)
            and all(s == 1 for s in p.stride)
            and all(d == 1 for d in p.dilation)
            and all(f == 1 for f in p.input_dilation)
            and p.dtype in ("torch.float32", "torch.float64", "torch.float16", "torch.bfloat16")
        )

    def estimate(self, p: Problem, backward: bool) -> float:
        m = _machine.MACHINE
        tile = self.tiles[p.ndim]
        growth = ((tile + 2) / tile) ** p.ndim
        macs = p.macs * growth / 3**p.ndim
        # one small GEMM per transformed position, and the tiles are copied ~8 times on the way
        seconds = macs / (0.15 * m.gemm_gmacs * 1e9)
        seconds += 8 * growth * (bytes_in(p) + bytes_out(p)) / (m.bandwidth_gbs * 1e9)
        return seconds * (3 if backward else 1)

    def workspace(self, p: Problem, backward: bool) -> float:
        tile = self.tiles[p.ndim]
        growth = ((tile + 2) / tile) ** p.ndim
        # transformed input and output tiles, each through two intermediate products
        return 2 * growth * (bytes_in(p) + bytes_out(p)) * (2 if backward else 1)

    def numerics(self, p: Problem) -> str:
        return CHECKED  # the transforms mix a tile: NaN/Inf fill it, its norm sets the error

    def run(self, x: Tensor, weight: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        if x.dtype in (torch.float16, torch.bfloat16):
            # the transforms in half precision would lose 3-4 bits more: float32, rounded once
            y = winograd_conv(x.float(), weight.float(), p, self.tiles[p.ndim]).to(x.dtype)
        else:
            y = winograd_conv(x, weight, p, self.tiles[p.ndim])
        if bias is not None:
            y = y + bias.view(-1, *([1] * p.ndim))
        return y


# F(4,3) nested three times loses too much float32 accuracy (~2e-5): 3-D uses F(2,3).
register_algorithm(Winograd("winograd", {1: 4, 2: 4, 3: 2}))
register_algorithm(Winograd("winograd_f2", {1: 2, 2: 2, 3: 2}))
