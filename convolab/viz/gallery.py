"""A small gallery of animations (GIFs and one HTML page), written by ``convolab demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Union

from . import frames as F
from .frames_pool import pool_animation, spp_animation
from .frames_roi import deform_conv_animation, roi_align_animation, roi_pool_animation

# (file stem, builder): the textbook examples first.
GALLERY: tuple[tuple[str, Callable[[], F.Animation]], ...] = (
    ("conv2d_stride2_pad1", lambda: F.conv_animation((5, 5), 3, stride=2, padding=1)),  # CS231n's demo geometry
    ("conv2d_same", lambda: F.conv_animation((5, 5), 3, padding="same")),
    ("conv2d_valid", lambda: F.conv_animation((5, 5), 3, padding="valid")),
    ("conv2d_dilated", lambda: F.conv_animation((7, 7), 3, dilation=2)),
    ("conv1d_same_stride2", lambda: F.conv_animation(10, 3, stride=2, padding="same")),
    ("conv_transpose2d", lambda: F.conv_transpose_animation((2, 2), 3)),  # Dumoulin & Visin's 2x2 -> 4x4
    ("conv_transpose2d_stride2", lambda: F.conv_transpose_animation((3, 3), 3, stride=2, padding=1, output_padding=1)),
    ("checkerboard", lambda: F.checkerboard_animation((3, 3), 3, 2)),
    ("grouped_shuffle", lambda: F.grouped_conv_animation(4, 4, 2, shuffle=True)),
    ("depthwise_separable", lambda: F.depthwise_separable_animation(3, 4)),
    ("pointwise_1x1", lambda: F.pointwise_animation(4, 3)),
    ("max_pool2d", lambda: pool_animation((5, 5), 2, ceil_mode=True)),
    ("avg_pool2d", lambda: pool_animation((5, 5), 3, 2, padding=1, mode="avg", count_include_pad=False)),
    ("spp", lambda: spp_animation((5, 5), (1, 2, 3))),
    ("deform_conv2d", lambda: deform_conv_animation((5, 5), 3, padding=1)),
    ("roi_pool", lambda: roi_pool_animation((8, 8), (1.0, 1.0, 6.0, 5.0), 2)),
    ("roi_align", lambda: roi_align_animation((8, 8), (1.2, 0.7, 6.1, 5.4), 2, sampling_ratio=2)),
)


def write_gallery(out_dir: Union[str, Path]) -> list[Path]:
    """Write one GIF per gallery entry and ``index.html`` with all of them; return the paths.

    Example:
        >>> import tempfile
        >>> paths = write_gallery(tempfile.mkdtemp())
        >>> sorted(p.suffix for p in paths)[-1], paths[-1].name
        ('.html', 'index.html')
    """
    from .render_gif import save_gif
    from .render_html import save_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    animations = []
    paths = []
    for stem, build in GALLERY:
        animation = build()
        animations.append(animation)
        paths.append(save_gif(animation, out / f"{stem}.gif"))
    paths.append(save_html(animations, out / "index.html", "convolab: every convolution, step by step"))
    return paths
