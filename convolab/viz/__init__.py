"""Pictures that explain: animations (GIF and HTML), worked arithmetic as text, figures.

Everything is computed from convolab (the ops' real outputs and
:mod:`convolab.arithmetic`); matplotlib and Pillow are imported only when a
picture is drawn.
"""

from .animate import ANIMATIONS, animate
from .frames import (
    ChannelAnimation,
    Frame,
    Grid,
    GridAnimation,
    PanelAnimation,
    channel_shuffle_animation,
    checkerboard_animation,
    conv_animation,
    conv_transpose_animation,
    deform_conv_animation,
    depthwise_separable_animation,
    grouped_conv_animation,
    pointwise_animation,
    pool_animation,
    roi_align_animation,
    roi_pool_animation,
    roi_spp_animation,
    spp_animation,
)
from .gallery import write_gallery
from .grids import feature_map_grid, kernel_grid
from .overlay import receptive_field_data, receptive_field_overlay
from .patches import TopPatches, top_patch_grid, top_patches

__all__ = [
    "ANIMATIONS",
    "ChannelAnimation",
    "Frame",
    "Grid",
    "GridAnimation",
    "TopPatches",
    "PanelAnimation",
    "animate",
    "channel_shuffle_animation",
    "checkerboard_animation",
    "conv_animation",
    "conv_transpose_animation",
    "deform_conv_animation",
    "depthwise_separable_animation",
    "feature_map_grid",
    "grouped_conv_animation",
    "kernel_grid",
    "pointwise_animation",
    "pool_animation",
    "receptive_field_data",
    "receptive_field_overlay",
    "roi_align_animation",
    "roi_pool_animation",
    "roi_spp_animation",
    "spp_animation",
    "top_patch_grid",
    "top_patches",
    "write_gallery",
]
