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

Numeric error: the transforms have entries up to 5 (m = 4) and 1/24, so
float32 rounding grows with m. Measured against float64 on unit-normal data,
the max error relative to the largest output is ~3e-7 for F(2, 3) and ~1e-6
for F(4, 3) in 2-D (C up to 256); the documented bound, pinned by the tests,
is ``max|y - y64| <= 1e-5 * max|y64|`` for both.

``"winograd"`` is F(4, 3) (tile 6), ``"winograd_f2"`` is F(2, 3) (tile 4).
Applies to 3-tap kernels, stride 1, no dilation, 1-3 spatial dims, any groups.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional

import torch
from torch import Tensor

from .._windows import pad_pairs, windows
from . import Problem, register_algorithm

# (B^T, G, A^T) for correlation, as in Lavin & Gray's paper.
_MATRICES = {
    2: (
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    4: (
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
}


@lru_cache(maxsize=32)
def winograd_matrices(m: int, dtype: torch.dtype, device: str) -> tuple[Tensor, Tensor, Tensor]:
    """``(B^T [m+2, m+2], G [m+2, 3], A^T [m, m+2])`` of F(m, 3), built in float64 then cast."""
    return tuple(torch.tensor(a, dtype=torch.float64).to(dtype=dtype, device=device) for a in _MATRICES[m])


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
        "float32/float64"
    )

    def __init__(self, name: str, m: int) -> None:
        self.name, self.m = name, m

    def supports(self, p: Problem) -> bool:
        return (
            all(k == 3 for k in p.kernel)
            and all(s == 1 for s in p.stride)
            and all(d == 1 for d in p.dilation)
            and all(f == 1 for f in p.input_dilation)
            and p.dtype in ("torch.float32", "torch.float64")
        )

    def run(self, x: Tensor, weight: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        y = winograd_conv(x, weight, p, self.m)
        if bias is not None:
            y = y + bias.view(-1, *([1] * p.ndim))
        return y


register_algorithm(Winograd("winograd", 4))
register_algorithm(Winograd("winograd_f2", 2))
