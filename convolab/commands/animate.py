"""``convolab animate OP [options] -o out.gif|out.html|out.png``: the sliding window, drawn.

Options are read as text and checked here, so every mistake is one clear line
(exit status 2) naming the option, the value and the rule.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from .._args import check_choice
from ..cli import UsageError

# CLI option -> builder keyword, per op; the options an op does not list are rejected.
_CONV = {"input": "input_size", "kernel": "kernel_size", "stride": "stride", "padding": "padding",
         "dilation": "dilation", "seed": "seed"}
_POOL = {"input": "input_size", "kernel": "kernel_size", "stride": "stride", "padding": "padding",
         "ceil_mode": "ceil_mode", "seed": "seed"}
_ROI = {"input": "input_size", "box": "box", "output_size": "output_size", "scale": "spatial_scale", "seed": "seed"}
OPS: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
    # op: (viz builder, option -> keyword, fixed keywords)
    "conv1d": ("conv", _CONV, {}),
    "conv2d": ("conv", _CONV, {}),
    "dilated": ("conv", _CONV, {"dilation": 2}),
    "conv_transpose1d": ("conv_transpose", {**_CONV, "output_padding": "output_padding"}, {}),
    "conv_transpose2d": ("conv_transpose", {**_CONV, "output_padding": "output_padding"}, {}),
    "checkerboard": ("checkerboard", {"input": "input_size", "kernel": "kernel_size", "stride": "stride"}, {}),
    "grouped": ("grouped", {"in_channels": "in_channels", "out_channels": "out_channels", "groups": "groups",
                            "seed": "seed"}, {}),
    "shuffle": ("grouped", {"in_channels": "in_channels", "out_channels": "out_channels", "groups": "groups",
                            "seed": "seed"}, {"shuffle": True}),
    "channel_shuffle": ("channel_shuffle", {"channels": "channels", "groups": "groups", "seed": "seed"}, {}),
    "depthwise_separable": ("depthwise_separable", {"in_channels": "in_channels", "out_channels": "out_channels",
                                                    "kernel": "kernel_size", "input": "input_size", "seed": "seed"}, {}),
    "pointwise": ("pointwise", {"in_channels": "in_channels", "out_channels": "out_channels", "seed": "seed"}, {}),
    "max_pool1d": ("pool", {**_CONV, "ceil_mode": "ceil_mode"}, {"mode": "max"}),
    "max_pool2d": ("pool", {**_CONV, "ceil_mode": "ceil_mode"}, {"mode": "max"}),
    "avg_pool1d": ("pool", {**_POOL, "exclude_pad": "count_include_pad"}, {"mode": "avg"}),
    "avg_pool2d": ("pool", {**_POOL, "exclude_pad": "count_include_pad"}, {"mode": "avg"}),
    "spp": ("spp", {"input": "input_size", "levels": "levels", "mode": "mode", "seed": "seed"}, {}),
    "deform_conv1d": ("deform_conv", {**_CONV, "max_offset": "max_offset"}, {}),
    "deform_conv2d": ("deform_conv", {**_CONV, "max_offset": "max_offset"}, {}),
    "roi_pool": ("roi_pool", _ROI, {}),
    "roi_align": ("roi_align", {**_ROI, "sampling_ratio": "sampling_ratio", "aligned": "aligned"}, {}),
    "roi_spp": ("roi_spp", {"input": "input_size", "box": "box", "levels": "levels", "scale": "spatial_scale",
                            "mode": "mode", "seed": "seed"}, {}),
}
FORMATS = (".gif", ".html", ".png")
MAX_SIDE = 24  # a bigger grid is unreadable in a picture and slow to draw


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "animate",
        help="animate a convolution, pooling or ROI op (GIF, HTML page or PNG of the last frame)",
        description="Animate OP frame by frame; every value is the op's real output. OPs: " + ", ".join(OPS),
    )
    p.add_argument("op", metavar="OP", help="one of: " + ", ".join(OPS))
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="output file: .gif, .html or .png (the last frame); its folder must exist")
    p.add_argument("--input", help="input size: 8 (1-D), 5 or 5x6 (2-D; depthwise_separable: at most 8)")
    p.add_argument("--kernel", help="kernel size: 3 or 3x2")
    p.add_argument("--stride", help="stride: 2 or 2x1")
    p.add_argument("--padding", help="padding: 1, 1x2, same or valid")
    p.add_argument("--dilation", help="dilation: 2 or 2x1")
    p.add_argument("--output-padding", dest="output_padding", help="transposed conv output padding")
    p.add_argument("--in-channels", dest="in_channels", help="input channels (channel diagrams)")
    p.add_argument("--out-channels", dest="out_channels", help="output channels (channel diagrams)")
    p.add_argument("--channels", help="channels (channel_shuffle)")
    p.add_argument("--groups", help="groups (grouped, shuffle, channel_shuffle)")
    p.add_argument("--ceil-mode", dest="ceil_mode", action="store_true", help="pooling: round the output size up")
    p.add_argument("--exclude-pad", dest="exclude_pad", action="store_true",
                   help="avg pooling: divide by the input cells only (count_include_pad=False)")
    p.add_argument("--levels", help="spp, roi_spp: bins per side of each level, e.g. 1,2,4")
    p.add_argument("--mode", help="spp, roi_spp: max or avg (default max)")
    p.add_argument("--max-offset", dest="max_offset", help="deform_conv: range of the random offsets (default 1)")
    p.add_argument("--box", help="roi ops: x1,y1,x2,y2 in image coordinates (default 1,1,6,5 / 1.2,0.7,6.1,5.4)")
    p.add_argument("--output-size", dest="output_size", help="roi ops: bins, e.g. 2 or 2x3 (default 2)")
    p.add_argument("--scale", help="roi ops: spatial_scale, image to map (default 1)")
    p.add_argument("--sampling-ratio", dest="sampling_ratio", help="roi_align: samples per bin side (default 2)")
    p.add_argument("--aligned", action="store_true", help="roi_align: half-pixel aligned boxes")
    p.add_argument("--seed", help="seed of the example values (default 0)")
    p.add_argument("--duration", default="900", help="GIF milliseconds per frame (default 900)")
    p.set_defaults(func=run)


def _ints(text: str, option: str, ndim: int | None, minimum: int) -> tuple[int, ...]:
    """'5' or '5x6' as a tuple of ints >= minimum, expanded to ``ndim`` entries when one is given."""
    try:
        values = tuple(int(t) for t in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--{option} must be an int or ints joined by 'x' (e.g. 3 or 3x2), got {text!r}") from None
    if any(v < minimum for v in values):
        raise UsageError(f"--{option} must be >= {minimum}, got {text!r}")
    if ndim is not None:
        if len(values) == 1:
            values = values * ndim
        if len(values) != ndim:
            raise UsageError(f"--{option} must have {'1 entry' if ndim == 1 else f'1 or {ndim} entries'} for this op, "
                             f"got {text!r}")
    return values


def _ndim(op: str) -> int | None:
    spatial_2d = ("dilated", "checkerboard", "spp", "roi_spp", "depthwise_separable")
    return 1 if op.endswith("1d") else (2 if op.endswith("2d") or op in spatial_2d else None)


def _value(option: str, text: str, op: str) -> Any:
    nd = _ndim(op)
    if option == "padding":
        if text.lower() in ("same", "valid"):
            if op.startswith("conv_transpose"):
                raise UsageError(f"--padding {text!r} is not defined for transposed convolution; give ints")
            return text.lower()
        return _ints(text, option, nd, 0)
    if option == "output_padding":
        return _ints(text, "output-padding", nd, 0)
    if option == "input":
        size = _ints(text, option, nd, 1)
        if max(size) > MAX_SIDE:
            raise UsageError(f"--input sides must be <= {MAX_SIDE} to stay readable, got {text!r}")
        return size
    if option in ("kernel", "stride", "dilation"):
        if op == "depthwise_separable":  # a square kernel: one int
            return _ints(text, option, 1, 1)[0]
        return _ints(text, option, nd, 1)
    if option == "seed":
        return _ints(text, option, 1, 0)[0]
    if option == "ceil_mode":
        return True
    if option == "exclude_pad":
        return False  # count_include_pad
    if option == "levels":
        try:
            levels = tuple(int(t) for t in text.split(","))
        except ValueError:
            raise UsageError(f"--levels must be ints joined by ',' (e.g. 1,2,4), got {text!r}") from None
        if not levels or min(levels) < 1 or max(levels) > MAX_SIDE:
            raise UsageError(f"--levels must be ints in [1, {MAX_SIDE}], got {text!r}")
        return levels
    if option in ("max_offset", "scale", "box"):
        flag = "--" + option.replace("_", "-")
        rule = "numbers joined by ',' (x1,y1,x2,y2)" if option == "box" else "a number"
        try:
            numbers = tuple(float(t) for t in text.split(","))
        except ValueError:
            raise UsageError(f"{flag} must be {rule}, got {text!r}") from None
        if option == "box":
            return numbers  # the builder and the op check it (4 numbers, x1 <= x2, y1 <= y2)
        if len(numbers) != 1:
            raise UsageError(f"{flag} must be {rule}, got {text!r}")
        return numbers[0]
    if option == "output_size":
        return _ints(text, "output-size", 2, 1)
    if option == "sampling_ratio":
        return _ints(text, "sampling-ratio", 1, 1)[0]
    if option == "aligned":
        return True
    if option == "mode":
        return check_choice(text, ("max", "avg"), "--mode", f"animate {op}")
    return _ints(text, option.replace("_", "-"), 1, 1)[0]  # channel counts and groups


def build(args: argparse.Namespace) -> Any:
    """The animation the arguments ask for (validated)."""
    from ..viz.animate import animate

    op = check_choice(args.op, OPS, "OP", "animate")
    builder, options, fixed = OPS[op]
    kwargs: dict[str, Any] = dict(fixed)
    given = [name for name in ("input", "kernel", "stride", "padding", "dilation", "output_padding", "in_channels",
                               "out_channels", "channels", "groups", "ceil_mode", "exclude_pad", "levels", "mode",
                               "max_offset", "box", "output_size", "scale", "sampling_ratio", "aligned", "seed") if getattr(args, name) not in (None, False)]
    for name in given:
        if name not in options:
            flags = ", ".join("--" + o.replace("_", "-") for o in options)
            raise UsageError(f"option --{name.replace('_', '-')} does not apply to {op} (its options: {flags})")
        kwargs[options[name]] = _value(name, getattr(args, name), op)
    if "input_size" in options.values() and "input_size" not in kwargs:
        if builder not in ("checkerboard", "spp", "roi_pool", "roi_align", "roi_spp", "depthwise_separable"):
            raise UsageError(f"{op} needs --input (e.g. --input {'8' if _ndim(op) == 1 else '5x5'})")
    return animate(builder, **kwargs)


def _writer(path: Path) -> Callable:
    from ..viz import render_gif, render_html

    return {".gif": render_gif.save_gif, ".html": render_html.save_html, ".png": render_gif.save_png}[path.suffix.lower()]


def run(args: argparse.Namespace) -> int:
    from ._output import check_output_file

    path = check_output_file(args.output, "-o", FORMATS)
    duration = _ints(args.duration, "duration", 1, 20)[0]
    animation = build(args)
    write = _writer(path)
    n = len(animation.frames)
    if path.suffix.lower() == ".gif":
        write(animation, path, duration_ms=duration)
    else:
        write(animation, path)
    what = f"the last of {n} frames" if path.suffix.lower() == ".png" and n > 1 else f"{n} frame{'s' * (n != 1)}"
    print(f"wrote {path} ({what}): {animation.title}")
    return 0
