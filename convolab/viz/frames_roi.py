"""The sampling-op animations under the module path ``convolab.viz.frames_roi``; they live in :mod:`convolab.viz.frames.roi`."""

from .frames.roi import MAX_PIXELS, NEGLIGIBLE, deform_conv_animation, roi_align_animation, roi_pool_animation

__all__ = ["MAX_PIXELS", "NEGLIGIBLE", "deform_conv_animation", "roi_align_animation", "roi_pool_animation"]
