"""What each frame of an animation shows, as data (no drawing here).

Every number comes from convolab itself: the output values are the op's real output, the
padding cells are where :func:`convolab.arithmetic.resolve_padding` puts them, and the cells
under each window come from the same windowing primitive that the im2col and pooling code
use. The renderers (:mod:`convolab.viz.render_gif`, :mod:`convolab.viz.render_html`) only
draw these records, so a test on the records is a test of the picture.

- :mod:`.records`: the records (:class:`GridAnimation`, :class:`ChannelAnimation`,
  :class:`PanelAnimation` and their parts) and the cell kinds.
- One module per family of builders: :mod:`.conv` (sliding window, transposed, checkerboard),
  :mod:`.channels` (grouped, 1x1, shuffle, depthwise-separable), :mod:`.pool` (max/avg, SPP),
  :mod:`.roi` (deformable, ROI pooling, ROI align).
- What the builders share: :mod:`.example` (checked sizes, seeded values), :mod:`.cells`
  (tensors as grid cells, windows as frames), :mod:`.text` (numbers as written on a picture).
"""

from .channels import channel_shuffle_animation, depthwise_separable_animation, grouped_conv_animation, pointwise_animation
from .conv import checkerboard_animation, conv_animation, conv_transpose_animation
from .pool import POOL_MODES, pool_animation, spp_animation
from .records import (
    BLANK,
    DATA,
    PAD,
    ZERO,
    Animation,
    Cell,
    ChannelAnimation,
    ChannelFrame,
    Frame,
    Grid,
    GridAnimation,
    Panel,
    PanelAnimation,
    PanelCell,
    PanelFrame,
    Stage,
)
from .roi import MAX_PIXELS, NEGLIGIBLE, deform_conv_animation, roi_align_animation, roi_pool_animation, roi_spp_animation
from .text import fmt

__all__ = [
    "BLANK",
    "DATA",
    "MAX_PIXELS",
    "NEGLIGIBLE",
    "PAD",
    "POOL_MODES",
    "ZERO",
    "Animation",
    "Cell",
    "ChannelAnimation",
    "ChannelFrame",
    "Frame",
    "Grid",
    "GridAnimation",
    "Panel",
    "PanelAnimation",
    "PanelCell",
    "PanelFrame",
    "Stage",
    "channel_shuffle_animation",
    "checkerboard_animation",
    "conv_animation",
    "conv_transpose_animation",
    "deform_conv_animation",
    "depthwise_separable_animation",
    "fmt",
    "grouped_conv_animation",
    "pointwise_animation",
    "pool_animation",
    "roi_align_animation",
    "roi_pool_animation",
    "roi_spp_animation",
    "spp_animation",
]
