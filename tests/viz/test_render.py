"""The drawn pictures show the frames' data: colours where the layout puts cells, values in the SVG."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from convolab.viz import checkerboard_animation, conv_animation, grouped_conv_animation
from convolab.viz._scene import FILL, OUT_DONE, OUT_NOW, Rect, Text, scenes
from convolab.viz.frames import PAD, fmt
from convolab.viz.render_gif import render_frames, save_gif, save_png
from convolab.viz.render_html import html_page, save_html


def _close(pixel, colour: str, tol: int = 12) -> bool:
    want = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return all(abs(a - b) <= tol for a, b in zip(pixel[:3], want))


def _rects(scene, fill):
    return [s for s in scene.shapes[len(scene.static):] if isinstance(s, Rect) and s.fill == fill]


def test_gif_frames_show_the_frame_data(tmp_path):
    a = conv_animation((4, 4), 3, stride=1, padding=1)
    path = save_gif(a, tmp_path / "c.gif", duration_ms=100)
    gif = Image.open(path)
    assert gif.n_frames == len(a.frames) == 16
    sc = scenes(a)
    for n in (0, 5, 15):
        gif.seek(n)
        image = gif.convert("RGB")
        assert image.size == (sc[n].width, sc[n].height)
        # the output cell being written is orange, exactly one of them
        now = _rects(sc[n], OUT_NOW)
        assert len(now) == 1
        assert _close(image.getpixel((int(now[0].x) + 4, int(now[0].y) + 4)), OUT_NOW)
        assert len(_rects(sc[n], OUT_DONE)) == n + 1  # every position so far stays written (the current on top)
        assert [r for r in sc[n].now if isinstance(r, Rect) and r.fill == OUT_NOW] == now
        # padding cells are grey where the grid says
        pad = next(iter(a.input.cells(PAD)))
        cell = [r for r in sc[n].static if isinstance(r, Rect) and r.fill == FILL[PAD]][0]
        assert _close(image.getpixel((int(cell.x) + 5, int(cell.y) + 5)), FILL[PAD])
        assert pad  # the set is not empty
        # the written value is printed on the orange cell
        texts = [t.text for t in sc[n].shapes if isinstance(t, Text) and t.bold and abs(t.x - (now[0].x + now[0].w / 2)) < 1]
        assert texts == [f"{a.frames[n].values[0]:g}"]


def test_png_and_frame_index(tmp_path):
    a = checkerboard_animation()
    p = save_png(a, tmp_path / "cb.png", frame=0)
    assert Image.open(p).size == render_frames(a)[0].size
    with pytest.raises(ValueError, match=r"save_png: frame must be an int in \[-9, 8\], got 9"):
        save_png(a, tmp_path / "x.png", frame=9)
    with pytest.raises(ValueError, match=r"save_gif: duration_ms must be an int >= 20, got 5"):
        save_gif(a, tmp_path / "x.gif", duration_ms=5)


def test_html_page_has_every_frame_and_value(tmp_path):
    a = conv_animation((5, 5), 3, stride=2, padding=1)
    b = grouped_conv_animation(4, 4, 2)
    page = html_page([a, b])
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no network
    assert "https://" not in page
    sections = page.split('<section class="anim"')[1:]
    assert len(sections) == 2
    groups = re.findall(r'<g class="frame" data-step="(\d+)"[^>]*>(.*?)</g>', sections[0], re.S)
    assert [int(g[0]) for g in groups] == list(range(9))
    for (step, body), frame in zip(groups, a.frames):
        bold = re.findall(r'font-weight="bold">([^<]*)</text>', body)
        assert bold == [f"{frame.values[0]:g}"]
    channel_groups = re.findall(r'<g class="frame" data-step="(\d+)"', sections[1])
    assert len(channel_groups) == len(b.frames)
    path = save_html(a, tmp_path / "one.html")
    assert path.read_text().count('class="frame"') == 9
    with pytest.raises(ValueError, match="html_page: animations must not be empty"):
        html_page([])


def _legend_labels(scene) -> list[str]:
    """The texts of the legend: the static texts below the last grid cell."""
    cells = [r for r in scene.static if isinstance(r, Rect) and r.w == r.h and r.w > 20]
    bottom = max(r.y + r.h for r in cells)
    return [t.text for t in scene.static if isinstance(t, Text) and t.y > bottom]


def test_every_mark_has_a_legend_entry():
    from convolab.viz import depthwise_separable_animation, roi_align_animation
    from convolab.viz._scene import REGION, WINDOW, Dot

    ra = roi_align_animation((8, 8), (1.2, 0.7, 6.1, 5.4), 2, sampling_ratio=2)
    sc = scenes(ra)
    labels = _legend_labels(sc[0])
    assert {"sampling point", "box (real coordinates)", "bin", "window",
            "pixel's bilinear weight in the bin (bar length)"} <= set(labels)
    # the weight bars are drawn, and keyed by a bar of the same colour
    bars = [r for r in sc[0].now if isinstance(r, Rect) and r.h == 4 and r.fill == WINDOW]
    assert len(bars) == sum(w > 0 for w in ra.frames[0].shade)
    assert any(isinstance(r, Rect) and r.h == 4 and r.fill == WINDOW for r in sc[0].static)
    assert any(isinstance(r, Rect) and r.stroke == REGION for r in sc[0].static)
    shuffle = scenes(grouped_conv_animation(4, 4, 2, shuffle=True))[0]
    labels = [t.text for t in shuffle.static if isinstance(t, Text)]
    assert "group 0" in labels and any(t.startswith("group 1") for t in labels)
    assert "connection (non-zero weight)" in labels and "read now (×w: its weight)" in labels
    ds = scenes(depthwise_separable_animation(2, 3))[0]
    assert {"weight", "cells read / weights used", "output being written"} <= {
        t.text for t in ds.static if isinstance(t, Text)}


def test_sampling_points_leave_the_numbers_readable(tmp_path):
    from convolab.viz import roi_align_animation
    from convolab.viz._scene import Dot

    a = roi_align_animation((8, 8), (1.2, 0.7, 6.1, 5.4), 2, sampling_ratio=2)
    sc = scenes(a)[3]
    dots = [d for d in sc.now if isinstance(d, Dot)]
    assert dots and all(d.fill == "none" for d in dots)  # rings: nothing under them is painted over
    # every number of the map is written again on top of the rings and outlines, with a halo
    last_dot = max(i for i, s in enumerate(sc.now) if isinstance(s, Dot))
    on_top = [t for t in sc.now[last_dot:] if isinstance(t, Text) and t.halo]
    assert sorted(t.text for t in on_top) == sorted(fmt(v) for row in a.input.values for v in row)
    html = html_page([a])
    assert 'paint-order="stroke"' in html and 'fill="none" stroke="#d62728"' in html
    save_png(a, tmp_path / "ra.png")  # Pillow draws halos and rings too


def test_spp_output_is_grouped_and_labelled_by_level():
    from convolab.viz import spp_animation

    sc = scenes(spp_animation((7, 7), (1, 2, 4)))[0]
    texts = [t.text for t in sc.static if isinstance(t, Text)]
    assert {"level 1x1: entry 0", "level 2x2: entries 1-4", "level 4x4: entries 5-20"} <= set(texts)
    assert "pyramid: 21 numbers by level" in texts
    out_cells = [r for r in sc.static if isinstance(r, Rect) and r.fill == FILL["data"] and r.x > 300]
    assert len(out_cells) == 21  # blank layout cells are not drawn
