"""One entry point for every animation: ``animate(op, ...)`` and the registry behind it."""

from __future__ import annotations

from typing import Callable

from .._args import check_choice
from .frames import (
    Animation,
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

__all__ = ["ANIMATIONS", "animate"]

ANIMATIONS: dict[str, Callable[..., Animation]] = {
    "conv": conv_animation,
    "conv_transpose": conv_transpose_animation,
    "checkerboard": checkerboard_animation,
    "grouped": grouped_conv_animation,
    "channel_shuffle": channel_shuffle_animation,
    "depthwise_separable": depthwise_separable_animation,
    "pointwise": pointwise_animation,
    "pool": pool_animation,
    "spp": spp_animation,
    "deform_conv": deform_conv_animation,
    "roi_pool": roi_pool_animation,
    "roi_align": roi_align_animation,
    "roi_spp": roi_spp_animation,
}


def animate(op: str, *args, **kwargs) -> Animation:
    """Build the animation of ``op`` (a key of :data:`ANIMATIONS`) with that builder's arguments.

    Example:
        >>> len(animate("conv", (5, 5), 3, stride=2, padding=1).frames)
        9
        >>> animate("conv2d", 5)
        Traceback (most recent call last):
        ...
        ValueError: animate: op must be one of 'conv', ..., got 'conv2d'; did you mean 'conv'?
    """
    check_choice(op, ANIMATIONS, "op", "animate")
    return ANIMATIONS[op](*args, **kwargs)
