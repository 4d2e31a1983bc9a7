"""Draw animations with Pillow: one image per frame, saved as an animated GIF or a PNG."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Union

from ._scene import BACKGROUND, POINT, Dot, Line, Rect, Scene, Text, scenes
from .frames.records import Animation

__all__ = ["render_frames", "save_gif", "save_png"]

_FONTS: dict = {}


def _font(size: int, bold: bool):
    """DejaVu Sans Mono from matplotlib's data (always there with the viz extra), else Pillow's default."""
    from PIL import ImageFont

    key = (size, bold)
    if key not in _FONTS:
        name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
        spec = importlib.util.find_spec("matplotlib")
        path = (
            os.path.join(spec.submodule_search_locations[0], "mpl-data", "fonts", "ttf", name)
            if spec and spec.submodule_search_locations else ""
        )
        _FONTS[key] = ImageFont.truetype(path, size) if os.path.exists(path) else ImageFont.load_default(size)
    return _FONTS[key]


def _dashed_rect(draw, x0, y0, x1, y1, colour, width, dash=4):
    for a, b, horizontal, fixed in ((x0, x1, True, y0), (x0, x1, True, y1), (y0, y1, False, x0), (y0, y1, False, x1)):
        t = a
        while t < b:
            e = min(t + dash, b)
            draw.line([(t, fixed), (e, fixed)] if horizontal else [(fixed, t), (fixed, e)], fill=colour, width=width)
            t += 2 * dash


def _draw(image, shapes) -> None:
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    anchors = {"start": "lm", "middle": "mm", "end": "rm"}
    for s in shapes:
        if isinstance(s, Rect):
            box = [s.x, s.y, s.x + s.w, s.y + s.h]
            if s.fill != "none":
                draw.rectangle(box, fill=s.fill)
            if s.dashed:
                _dashed_rect(draw, *box, s.stroke, int(s.width))
            else:
                draw.rectangle(box, outline=s.stroke, width=int(s.width))
        elif isinstance(s, Text):
            halo = {"stroke_width": 2, "stroke_fill": s.halo} if s.halo else {}
            draw.text((s.x, s.y), s.text, fill=s.fill, font=_font(s.size, s.bold), anchor=anchors[s.anchor], **halo)
        elif isinstance(s, Line):
            draw.line([(s.x1, s.y1), (s.x2, s.y2)], fill=s.stroke, width=int(s.width))
        elif isinstance(s, Dot):
            draw.ellipse([s.x - s.r, s.y - s.r, s.x + s.r, s.y + s.r], fill=None if s.fill == "none" else s.fill,
                         outline=POINT, width=2)


def draw_scene(scene: Scene):
    """One scene (its full picture) as a Pillow RGB image."""
    from PIL import Image

    image = Image.new("RGB", (scene.width, scene.height), BACKGROUND)
    _draw(image, scene.shapes)
    return image


def render_frames(animation: Animation) -> list:
    """Every frame of ``animation`` as a Pillow RGB image (all the same size).

    Drawn in layers: the static picture once, each frame's lasting shapes onto
    a running image, the frame-only shapes onto a copy.
    """
    from PIL import Image

    all_scenes = scenes(animation)
    first = all_scenes[0]
    running = Image.new("RGB", (first.width, first.height), BACKGROUND)
    _draw(running, first.static)
    images = []
    for scene in all_scenes:
        _draw(running, scene.persist)
        image = running.copy()
        _draw(image, scene.now)
        images.append(image)
    return images


def _palette_frames(images: list) -> list:
    """Quantise every frame to one shared palette, learnt once from the first and last frames."""
    from PIL import Image

    first, last = images[0], images[-1]
    sample = Image.new("RGB", (first.width, first.height * 2))
    sample.paste(first, (0, 0))
    sample.paste(last, (0, first.height))
    palette = sample.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    return [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]


def save_gif(animation: Animation, path: Union[str, Path], duration_ms: int = 900) -> Path:
    """Write ``animation`` as a looping GIF (the last frame is held twice as long).

    Example:
        >>> import tempfile, os
        >>> from convolab.viz import conv_animation
        >>> p = save_gif(conv_animation(4, 3), os.path.join(tempfile.mkdtemp(), "c.gif"))
        >>> from PIL import Image; Image.open(p).n_frames
        2
    """
    if not isinstance(duration_ms, int) or duration_ms < 20:
        raise ValueError(f"save_gif: duration_ms must be an int >= 20, got {duration_ms!r}")
    path = Path(path)
    images = _palette_frames(render_frames(animation))
    durations = [duration_ms] * len(images)
    durations[-1] = 2 * duration_ms
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


def save_png(animation: Animation, path: Union[str, Path], frame: int = -1) -> Path:
    """Write one frame (default: the last) as a PNG."""
    n = len(animation.frames)
    if not isinstance(frame, int) or not -n <= frame < n:
        raise ValueError(f"save_png: frame must be an int in [{-n}, {n - 1}], got {frame!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    draw_scene(scenes(animation)[frame]).save(path, format="PNG")
    return path
