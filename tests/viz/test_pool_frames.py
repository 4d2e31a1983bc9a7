"""Pooling and SPP frames against torch's own pooling ops (independent references)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convolab import arithmetic
from convolab.viz.frames import DATA, PAD
from convolab.viz.frames import pool_animation, spp_animation


def _input(a, size):
    """The data cells of the shown grid, in the input's shape."""
    values = [v for row, kinds in zip(a.input.values, a.input.kinds) for v, k in zip(row, kinds) if k == DATA]
    return torch.tensor(values, dtype=torch.float64).reshape(1, 1, *size)


POOL_CASES = [
    # size, kernel, stride, padding, dilation, ceil_mode
    ((4, 4), 2, None, 0, 1, False),
    ((5, 5), 2, None, 0, 1, True),      # the last window hangs over: ceil_mode
    ((5, 6), 3, 2, 1, 1, False),
    ((7, 7), 2, 2, 1, 2, True),         # dilated max pool
    ((9,), 3, 2, 1, 1, False),
]


@pytest.mark.parametrize("size,k,s,p,d,ceil", POOL_CASES)
def test_max_pool_frames(size, k, s, p, d, ceil):
    a = pool_animation(size, k, s, p, d, mode="max", ceil_mode=ceil, seed=2)
    x = _input(a, size)
    fn = F.max_pool2d if len(size) == 2 else F.max_pool1d
    ref = fn(x, k, s, p, d, ceil)[0, 0]
    ref2 = ref.reshape(1, -1) if len(size) == 1 else ref
    assert len(a.frames) == ref.numel() == math.prod(arithmetic.pool_output_shape(size, k, s, p, d, ceil))
    for f in a.frames:
        assert f.values[0] == float(ref2[f.cells[0]])
        (winner,) = f.marked
        assert winner in f.window
        assert a.input.values[winner[0]][winner[1]] == f.values[0]
        assert a.input.kind(winner) == DATA
        assert max(a.input.values[i][j] for i, j in f.window) == f.values[0]
    assert all(a.input.values[i][j] == float("-inf") for i, j in a.input.cells(PAD))


@pytest.mark.parametrize("size,k,s,p,ceil,include", [
    ((4, 4), 2, None, 0, False, True),
    ((5, 5), 3, 2, 1, True, True),
    ((5, 5), 3, 2, 1, True, False),
    ((6,), 4, 3, 2, True, False),
])
def test_avg_pool_frames(size, k, s, p, ceil, include):
    a = pool_animation(size, k, s, p, mode="avg", ceil_mode=ceil, count_include_pad=include, seed=3)
    x = _input(a, size)
    fn = F.avg_pool2d if len(size) == 2 else F.avg_pool1d
    ref = fn(x, k, s, p, ceil, include)[0, 0]
    ref2 = ref.reshape(1, -1) if len(size) == 1 else ref
    assert len(a.frames) == ref.numel()
    for f in a.frames:
        assert f.values[0] == pytest.approx(float(ref2[f.cells[0]]))
        total = sum(a.input.values[i][j] for i, j in f.window)
        divisor = int(f.caption.split(" / ")[1].split(" = ")[0])
        assert total / divisor == pytest.approx(f.values[0])


def test_spp_frames_match_adaptive_pooling():
    size, levels = (7, 5), (1, 2, 3)
    a = spp_animation(size, levels, mode="max", seed=1)
    x = torch.tensor(a.input.values, dtype=torch.float64)[None, None]
    ref = torch.cat([F.adaptive_max_pool2d(x, n).flatten() for n in levels])
    assert len(a.frames) == sum(n * n for n in levels) == ref.numel()
    k = 0
    for n in levels:
        for i in range(n):
            for j in range(n):
                f = a.frames[k]
                # torch's adaptive bin rule, written out independently
                rows = range(math.floor(i * size[0] / n), math.ceil((i + 1) * size[0] / n))
                cols = range(math.floor(j * size[1] / n), math.ceil((j + 1) * size[1] / n))
                assert set(f.window) == {(r, c) for r in rows for c in cols}
                assert f.values[0] == float(ref[k]) and f.caption.endswith(f"-> vector entry {k}")
                # the output is grouped by level: level n is an n x n block, bin (i, j) at its place
                top = sum(levels[:levels.index(n)]) + levels.index(n)
                assert f.cells == ((top + i, j),)
                assert a.output.values[top + i][j] == float(ref[k])
                k += 1
    assert [text for _, text in a.output_labels] == ["level 1x1: entry 0", "level 2x2: entries 1-4",
                                                     "level 3x3: entries 5-13"]
    assert sum(kind == DATA for row in a.output.kinds for kind in row) == 14  # the rest is layout
    avg = spp_animation((4, 4), (2,), mode="avg")
    x = torch.tensor(avg.input.values, dtype=torch.float64)[None, None]
    assert [f.values[0] for f in avg.frames] == pytest.approx(F.adaptive_avg_pool2d(x, 2).flatten().tolist())


def test_pool_errors():
    with pytest.raises(ValueError, match=r"animate pool: mode must be one of 'max', 'avg', got 'min'"):
        pool_animation((4, 4), 2, mode="min")
    with pytest.raises(ValueError, match=r"animate avg_pool: average pooling has no dilation"):
        pool_animation((4, 4), 2, dilation=2, mode="avg")
    with pytest.raises(ValueError, match=r"animate max_pool: output size would be 0"):
        pool_animation((2, 2), 3)
    with pytest.raises(ValueError, match=r"animate spp: levels must be a non-empty sequence of ints"):
        spp_animation((4, 4), ())
    with pytest.raises(ValueError, match=r"animate spp: input_size must be 2-D"):
        spp_animation((4,), (1,))
