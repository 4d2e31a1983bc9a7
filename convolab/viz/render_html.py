"""A self-contained HTML page: inline SVG frames with play/pause/step controls, no network.

Each animation becomes one ``<section>``: one ``<svg>`` whose shapes common to
every frame are drawn once; per step a ``<g class="keep">`` (what the step adds
for good, e.g. the output cell it wrote: shown from that step on) and a
``<g class="frame">`` (shown at that step only). The page grows linearly with
the number of steps. Keys: space plays/pauses, arrows step, Home/End jump; ``#step=N`` in the URL opens step N.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Union

from ._scene import BACKGROUND, POINT, Dot, Line, Rect, Scene, Text, scenes
from .frames.records import Animation, ChannelAnimation, GridAnimation, PanelAnimation

__all__ = ["html_page", "save_html", "svg_shapes"]

_FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def svg_shapes(shapes: Sequence) -> str:
    """SVG markup for a list of layout shapes."""
    out = []
    anchors = {"start": "start", "middle": "middle", "end": "end"}
    for s in shapes:
        if isinstance(s, Rect):
            dash = ' stroke-dasharray="4 4"' if s.dashed else ""
            out.append(
                f'<rect x="{_num(s.x)}" y="{_num(s.y)}" width="{_num(s.w)}" height="{_num(s.h)}" '
                f'fill="{s.fill}" stroke="{s.stroke}" stroke-width="{_num(s.width)}"{dash}/>'
            )
        elif isinstance(s, Text):
            weight = ' font-weight="bold"' if s.bold else ""
            halo = f' stroke="{s.halo}" stroke-width="4" paint-order="stroke"' if s.halo else ""
            out.append(
                f'<text x="{_num(s.x)}" y="{_num(s.y)}" font-size="{s.size}" fill="{s.fill}" '
                f'text-anchor="{anchors[s.anchor]}" dominant-baseline="central"{weight}{halo}>{html.escape(s.text)}</text>'
            )
        elif isinstance(s, Line):
            out.append(
                f'<line x1="{_num(s.x1)}" y1="{_num(s.y1)}" x2="{_num(s.x2)}" y2="{_num(s.y2)}" '
                f'stroke="{s.stroke}" stroke-width="{_num(s.width)}"/>'
            )
        elif isinstance(s, Dot):
            out.append(f'<circle cx="{_num(s.x)}" cy="{_num(s.y)}" r="{_num(s.r)}" fill="{s.fill}" stroke="{POINT}" '
                       f'stroke-width="2"/>')
    return "".join(out)


def _section(index: int, animation: Animation, frames: list[Scene]) -> str:
    first = frames[0]
    static = svg_shapes(first.static)
    hidden = ' style="display:none"'
    # lasting shapes of step n stay from step n on; frame shapes show at step n only
    groups = "\n".join(
        f'<g class="keep" data-step="{n}"{"" if n == 0 else hidden}>{svg_shapes(scene.persist)}</g>'
        f'<g class="frame" data-step="{n}"{"" if n == 0 else hidden}>{svg_shapes(scene.now)}</g>'
        for n, scene in enumerate(frames)
    )
    n = len(frames)
    return f"""<section class="anim" id="anim{index}" data-frames="{n}" aria-label="{html.escape(animation.title)}">
<div class="controls">
  <button class="play" title="play / pause (space)">&#9654; play</button>
  <button class="prev" title="previous step (left arrow)">&#9664; step</button>
  <button class="next" title="next step (right arrow)">step &#9654;</button>
  <input class="slider" type="range" min="0" max="{n - 1}" value="0" aria-label="step">
  <span class="counter">1 / {n}</span>
</div>
<svg xmlns="http://www.w3.org/2000/svg" width="{first.width}" height="{first.height}" viewBox="0 0 {first.width} {first.height}" font-family="{_FONT}" role="img">
<rect width="100%" height="100%" fill="{BACKGROUND}"/>
{static}
{groups}
</svg>
</section>"""


_SCRIPT = r"""
document.querySelectorAll('section.anim').forEach(function (sec) {
  var frames = sec.querySelectorAll('g.frame'), keeps = sec.querySelectorAll('g.keep');
  var n = frames.length, cur = 0, timer = null;
  var play = sec.querySelector('.play'), slider = sec.querySelector('.slider'), counter = sec.querySelector('.counter');
  function show(i) {
    frames[cur].style.display = 'none';
    cur = (i + n) % n;
    for (var k = 0; k < n; k++) { keeps[k].style.display = k <= cur ? '' : 'none'; }
    frames[cur].style.display = '';
    slider.value = cur;
    counter.textContent = (cur + 1) + ' / ' + n;
  }
  function stop() { if (timer) { clearInterval(timer); timer = null; play.innerHTML = '&#9654; play'; } }
  function toggle() {
    if (timer) { stop(); return; }
    timer = setInterval(function () { show(cur + 1); }, 800);
    play.innerHTML = '&#10074;&#10074; pause';
  }
  play.addEventListener('click', toggle);
  sec.querySelector('.prev').addEventListener('click', function () { stop(); show(cur - 1); });
  sec.querySelector('.next').addEventListener('click', function () { stop(); show(cur + 1); });
  slider.addEventListener('input', function () { stop(); show(parseInt(slider.value, 10)); });
  // '#step=N' opens every animation at step N (a link can point at a step; the tests use it too)
  var m = /step=(\d+)/.exec(location.hash);
  if (m) { show(Math.min(parseInt(m[1], 10), n - 1)); }
  sec.tabIndex = 0;
  sec.addEventListener('keydown', function (e) {
    if (e.key === ' ') { toggle(); e.preventDefault(); }
    else if (e.key === 'ArrowRight') { stop(); show(cur + 1); }
    else if (e.key === 'ArrowLeft') { stop(); show(cur - 1); }
    else if (e.key === 'Home') { stop(); show(0); }
    else if (e.key === 'End') { stop(); show(n - 1); }
  });
});
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #1a1a1a; background: #f6f6f6; }
h1 { font-size: 22px; }
section.anim { background: #ffffff; border: 1px solid #d0d0d0; padding: 12px; margin-bottom: 24px; display: inline-block; }
section.anim:focus { outline: 2px solid #1f5fbf; }
.controls { margin-bottom: 8px; display: flex; gap: 8px; align-items: center; }
.controls button { font-size: 14px; padding: 4px 10px; }
.counter { font-family: monospace; }
"""


def html_page(animations: Sequence[Animation], title: str = "convolab: pictures that explain", extra: str = "") -> str:
    """The full HTML text of a page showing ``animations`` (one section each), then ``extra``
    (more sections, e.g. :func:`convolab.viz.gallery.figure_sections`)."""
    if not animations and not extra:
        raise ValueError("html_page: animations must not be empty")
    sections = "\n".join(_section(i, a, scenes(a)) for i, a in enumerate(animations)) + extra
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>Every number is computed by convolab: the op's real output and convolab.arithmetic. Space plays/pauses the focused animation, arrows step.</p>
{sections}
<script>{_SCRIPT}</script>
</body>
</html>
"""


def save_html(
    animations: Union[Animation, Sequence[Animation]], path: Union[str, Path], title: str | None = None
) -> Path:
    """Write one animation or several to a self-contained HTML page.

    Example:
        >>> import tempfile, os
        >>> from convolab.viz import conv_animation
        >>> p = save_html(conv_animation(4, 3), os.path.join(tempfile.mkdtemp(), "c.html"))
        >>> open(p).read().count('class="frame"')
        2
    """
    items = [animations] if isinstance(animations, (GridAnimation, ChannelAnimation, PanelAnimation)) else list(animations)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_page(items, title or (items[0].title if len(items) == 1 else "convolab: pictures that explain")),
                    encoding="utf-8")
    return path
