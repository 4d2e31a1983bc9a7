"""SPP-on-a-region frames against the slow loop of SPP-net's detector (tests/_reference.py)."""

from __future__ import annotations

import math

import pytest
import torch

from convolab.viz.frames import DATA
from convolab.viz.frames import roi_spp_animation
from tests._reference import _round_half_away, roi_spp_reference


@pytest.mark.parametrize("size,box,levels,scale,mode", [
    ((8, 8), (1.0, 1.0, 6.0, 5.0), (1, 2, 3), 1.0, "max"),
    ((7, 9), (3.0, 2.0, 17.0, 15.0), (1, (2, 3)), 0.5, "avg"),
    ((6, 6), (4.0, 4.0, 9.0, 9.0), (2,), 1.0, "max"),  # partly outside: empty bins give 0
])
def test_frames_follow_the_loop_definition(size, box, levels, scale, mode):
    a = roi_spp_animation(size, box, levels, scale, mode=mode, seed=3)
    x = torch.tensor(a.input.values, dtype=torch.float64)
    ref = roi_spp_reference(x[None, None], torch.tensor([[0.0, *box]], dtype=torch.float64), levels, scale, mode)[0]
    assert [f.values[0] for f in a.frames] == pytest.approx(ref.tolist())
    x1, y1, x2, y2 = (_round_half_away(v * scale) for v in box)
    rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
    frames = iter(a.frames)
    for level in levels:
        oh, ow = (level, level) if isinstance(level, int) else level
        for p in range(oh):
            for q in range(ow):
                f = next(frames)
                rows = range(max(y1 + math.floor(p * rh / oh), 0), min(y1 + math.ceil((p + 1) * rh / oh), size[0]))
                cols = range(max(x1 + math.floor(q * rw / ow), 0), min(x1 + math.ceil((q + 1) * rw / ow), size[1]))
                assert set(f.window) == {(r, c) for r, c in ((r, c) for r in rows for c in cols)}
                if mode == "max" and f.window:
                    assert f.marked and float(x[f.marked[0]]) == f.values[0]
    written = [(r, c) for r, row in enumerate(a.output.kinds) for c, k in enumerate(row) if k == DATA]
    assert len(written) == len(a.frames) == sum(math.prod((n, n) if isinstance(n, int) else n) for n in levels)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"animate roi_spp: levels must be a non-empty sequence of bin counts, got \(\)"):
        roi_spp_animation(levels=())
    with pytest.raises(ValueError, match=r"animate roi_spp: mode must be one of 'max', 'avg', got 'sum'"):
        roi_spp_animation(mode="sum")
    with pytest.raises(ValueError, match=r"animate roi_spp: box must be \(x1, y1, x2, y2\), got \(1, 2\)"):
        roi_spp_animation(box=(1, 2))


def test_renders_to_gif(tmp_path):
    from convolab.viz.render_gif import save_gif

    path = save_gif(roi_spp_animation((6, 7), (0.0, 1.0, 5.0, 4.0), (1, 2)), tmp_path / "roi_spp.gif")
    assert path.stat().st_size > 1000
