"""The pooling animations under the module path ``convolab.viz.frames_pool``; they live in :mod:`convolab.viz.frames.pool`."""

from .frames.pool import POOL_MODES, pool_animation, spp_animation

__all__ = ["POOL_MODES", "pool_animation", "spp_animation"]
