"""A small gallery of animations (GIFs and one HTML page), written by ``convolab demo``."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Union

from .animate import animate
from .frames import Animation
from .render_gif import save_gif
from .render_html import html_page, save_html

# (file stem, builder): the textbook examples first, each through the animate registry.
GALLERY: tuple[tuple[str, Callable[[], Animation]], ...] = (
    ("conv2d_stride2_pad1", lambda: animate("conv", (5, 5), 3, stride=2, padding=1)),  # CS231n's demo geometry
    ("conv2d_same", lambda: animate("conv", (5, 5), 3, padding="same")),
    ("conv2d_valid", lambda: animate("conv", (5, 5), 3, padding="valid")),
    ("conv2d_dilated", lambda: animate("conv", (7, 7), 3, dilation=2)),
    ("conv1d_same_stride2", lambda: animate("conv", 10, 3, stride=2, padding="same")),
    ("conv_transpose2d", lambda: animate("conv_transpose", (2, 2), 3)),  # Dumoulin & Visin's 2x2 -> 4x4
    ("conv_transpose2d_stride2", lambda: animate("conv_transpose", (3, 3), 3, stride=2, padding=1, output_padding=1)),
    ("checkerboard", lambda: animate("checkerboard", (3, 3), 3, 2)),
    ("grouped_shuffle", lambda: animate("grouped", 4, 4, 2, shuffle=True)),
    ("depthwise_separable", lambda: animate("depthwise_separable", 3, 4)),
    ("pointwise_1x1", lambda: animate("pointwise", 4, 3)),
    ("max_pool2d", lambda: animate("pool", (5, 5), 2, ceil_mode=True)),
    ("avg_pool2d", lambda: animate("pool", (5, 5), 3, 2, padding=1, mode="avg", count_include_pad=False)),
    ("spp", lambda: animate("spp", (5, 5), (1, 2, 3))),
    ("deform_conv2d", lambda: animate("deform_conv", (5, 5), 3, padding=1)),
    ("roi_pool", lambda: animate("roi_pool", (8, 8), (1.0, 1.0, 6.0, 5.0), 2)),
    ("roi_align", lambda: animate("roi_align", (8, 8), (1.2, 0.7, 6.1, 5.4), 2, sampling_ratio=2)),
    ("roi_spp", lambda: animate("roi_spp", (8, 8), (1.0, 1.0, 6.0, 5.0), (1, 2))),  # SPP-net on a region
)


Figure = tuple[str, str, Union[str, Path]]  # (heading, caption, PNG file)


def figure_sections(figures: Sequence[Figure]) -> str:
    """HTML sections showing PNG figures (embedded as data, so the page stays self-contained)."""
    out = []
    for heading, caption, png in figures:
        data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        out.append(f'<section><h2>{html.escape(heading)}</h2><p>{html.escape(caption)}</p>'
                   f'<img alt="{html.escape(heading)}" style="max-width:100%" src="data:image/png;base64,{data}"></section>')
    return "\n".join(out)


def figure_page(figures: Sequence[Figure], title: str = "convolab: what a network's units respond to") -> str:
    """A self-contained HTML page of PNG figures (the caller writes it).

    Example:
        >>> import tempfile, os, torch
        >>> from convolab.viz import top_patch_grid, top_patches
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))
        >>> png = os.path.join(tempfile.mkdtemp(), "p.png")
        >>> _ = top_patch_grid(top_patches(net, torch.rand(4, 1, 6, 6), "0", top=2), png)
        >>> figure_page([("layer 0", "two channels", png)]).count("data:image/png;base64,")
        1
    """
    return html_page([], title, figure_sections(figures))


def write_gallery(out_dir: Union[str, Path], figures: Sequence[Figure] = ()) -> list[Path]:
    """Write one GIF per gallery entry and ``index.html`` with all of them; return the paths.

    ``figures`` (heading, caption, PNG file) are shown after the animations, e.g. what a
    trained network's units respond to (:func:`convolab.viz.top_patch_grid`).

    Example:
        >>> import tempfile
        >>> paths = write_gallery(tempfile.mkdtemp())
        >>> sorted(p.suffix for p in paths)[-1], paths[-1].name
        ('.html', 'index.html')
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    animations = []
    paths = []
    for stem, build in GALLERY:
        animation = build()
        animations.append(animation)
        paths.append(save_gif(animation, out / f"{stem}.gif"))
    title = "convolab: every convolution, step by step"
    if figures:
        (out / "index.html").write_text(html_page(animations, title, figure_sections(figures)), encoding="utf-8")
        paths.append(out / "index.html")
    else:
        paths.append(save_html(animations, out / "index.html", title))
    return paths
