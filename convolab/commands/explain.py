"""``convolab explain conv|receptive-field|params``: the arithmetic written out, checkable by hand.

Examples::

    convolab explain conv --input 5x5x3 --filters 2 --kernel 3 --stride 2 --padding 1
    convolab explain receptive-field conv:k=3 conv:k=3 pool:k=2 conv:k=3,d=2 --input 32
    convolab explain params conv:c=32,k=3 pool:k=2 fc:n=10 --input 28x28x1
    convolab explain overlay --model seed_cnn --layer layer3 -o field.png
    convolab explain kernels --model seed_cnn --layer layer1.0 -o kernels.png
    convolab explain feature-maps --model seed_cnn --layer layer1 -o maps.png
"""

from __future__ import annotations

import argparse

from ..cli import UsageError

TOPICS = ("conv", "receptive-field", "params", "overlay", "kernels", "feature-maps")
PICTURES = ("overlay", "kernels", "feature-maps")  # topics that draw a registered model's layer
LAYER_HELP = "layers as KIND:key=value,... (conv: k s p d c g bias; pool: k s p d; fc: n bias), e.g. conv:c=32,k=3 pool:k=2"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="write out the arithmetic of a conv layer, a receptive field or parameters; draw a model layer's fields, kernels, maps",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("topic", metavar="TOPIC", help="conv, receptive-field or params")
    p.add_argument("layers", nargs="*", metavar="LAYER", help=LAYER_HELP + " (receptive-field, params)")
    p.add_argument("--input", help="conv/params: HxWxC (e.g. 5x5x3); receptive-field: the input side (e.g. 224)")
    p.add_argument("--filters", help="conv: number of filters (default 2)")
    p.add_argument("--kernel", help="conv: kernel size (default 3)")
    p.add_argument("--stride", help="conv: stride (default 1)")
    p.add_argument("--padding", help="conv: padding: an int, same or valid (default 0)")
    p.add_argument("--dilation", help="conv: dilation (default 1)")
    p.add_argument("--seed", help="conv, pictures: seed of the example values / weights and image (default 0)")
    p.add_argument("--model", help="pictures: a registered model (convolab models)")
    p.add_argument("--layer", help="pictures: a layer name of the model (as in named_modules)")
    p.add_argument("--image-size", dest="image_size", help="pictures: CxHxW of the random input (default 1x28x28)")
    p.add_argument("-o", "--output", help="pictures: the PNG to write")
    p.set_defaults(func=run)


def _int(text: str | None, option: str, default: int, minimum: int) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--{option} must be an int, got {text!r}") from None
    if value < minimum:
        raise UsageError(f"--{option} must be >= {minimum}, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from .._args import check_choice
    from ..viz import explain

    topic = check_choice(args.topic, TOPICS, "TOPIC", "explain")
    picture_only = ("model", "layer", "image_size", "output")
    if topic in PICTURES:
        return _picture(topic, args)
    extra = [f"--{o.replace('_', '-')}" for o in picture_only if getattr(args, o) is not None]
    if extra:
        raise UsageError(f"option {extra[0]} applies to 'explain {'|'.join(PICTURES)}' only")
    conv_only = ("filters", "kernel", "stride", "padding", "dilation", "seed")
    if topic == "conv":
        if args.layers:
            raise UsageError(f"explain conv takes options, not layers (got {' '.join(args.layers)!r})")
        named = args.padding is not None and args.padding.lower() in ("same", "valid")
        text = explain.explain_conv(
            args.input or "5x5x3",
            filters=_int(args.filters, "filters", 2, 1),
            kernel_size=_int(args.kernel, "kernel", 3, 1),
            stride=_int(args.stride, "stride", 1, 1),
            padding=args.padding.lower() if named else _int(args.padding, "padding", 0, 0),
            dilation=_int(args.dilation, "dilation", 1, 1),
            seed=_int(args.seed, "seed", 0, 0),
        )
    else:
        extra = [f"--{o}" for o in conv_only if getattr(args, o) is not None]
        if extra:
            raise UsageError(f"option {extra[0]} applies to 'explain conv' only; {topic} takes layers and --input")
        if not args.layers:
            raise UsageError(f"explain {topic} needs layers, e.g. conv:k=3 conv:k=3,s=2 pool:k=2")
        layers = explain.parse_layers(args.layers)
        if topic == "receptive-field":
            text = explain.explain_receptive_field(layers, _int(args.input, "input", 0, 1) if args.input else None)
        else:
            if args.input is None:
                raise UsageError("explain params needs --input HxWxC (e.g. --input 28x28x1)")
            text = explain.explain_params(layers, args.input)
    print(text)
    return 0


def _picture(topic: str, args: argparse.Namespace) -> int:
    """Draw one picture of a registered model's layer (random weights and input, seeded)."""
    import torch

    from ..models import create_model
    from ..viz import feature_map_grid, kernel_grid, receptive_field_overlay

    if args.layers:
        raise UsageError(f"explain {topic} takes --model and --layer, not layers (got {' '.join(args.layers)!r})")
    extra = [f"--{o}" for o in ("input", "filters", "kernel", "stride", "padding", "dilation")
             if getattr(args, o) is not None]
    if extra:
        raise UsageError(f"option {extra[0]} does not apply to 'explain {topic}' (use --image-size CxHxW)")
    for option in ("model", "layer", "output"):
        if getattr(args, option) is None:
            raise UsageError(f"explain {topic} needs --{option}")
    if not args.output.lower().endswith(".png"):
        raise UsageError(f"-o must end in .png, got {args.output!r}")
    try:
        shape = tuple(int(v) for v in (args.image_size or "1x28x28").lower().split("x"))
    except ValueError:
        raise UsageError(f"--image-size must be CxHxW (e.g. 3x224x224), got {args.image_size!r}") from None
    if len(shape) != 3 or min(shape) < 1 or shape[1] * shape[2] > 512 * 512:
        raise UsageError(f"--image-size must be CxHxW with positive sides, at most 512x512, got {args.image_size!r}")
    torch.manual_seed(_int(args.seed, "seed", 0, 0))
    model = create_model(args.model).eval()
    image = torch.randn(shape)
    if topic == "overlay":
        receptive_field_overlay(model, image, args.layer, path=args.output)
    elif topic == "kernels":
        kernel_grid(model, args.layer, args.output)
    else:
        feature_map_grid(model, image.unsqueeze(0), args.layer, args.output)
    print(f"wrote {args.output}: {topic} of {args.model} layer {args.layer}")
    return 0
