"""``convolab explain TOPIC``: the arithmetic of a layer written out, or a picture of a network's layer.

The arithmetic topics print text that can be checked by hand; the picture topics draw one layer
of a network (trained weights when there are some: the checkpoint ``convolab demo`` writes is
used by default) for a real input (a handwritten digit, or ``--image``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..cli import UsageError

TOPICS = ("conv", "receptive-field", "params", "overlay", "kernels", "feature-maps", "top-patches")
PICTURES = ("overlay", "kernels", "feature-maps", "top-patches")  # topics that draw a network's layer
LAYER_HELP = "layers as KIND:key=value,... (conv: k s p d c g bias; pool: k s p d; fc: n bias), e.g. conv:c=32,k=3 pool:k=2"
# where `convolab demo` (default --out) leaves its trained network: the pictures' default weights
DEMO_CHECKPOINT = Path("convolab-demo") / "mnist_cnn" / "last.pt"
DEFAULT_MODEL = "mnist_cnn"

DESCRIPTION = """\
Write out the arithmetic of a layer, checkable by hand, or draw a layer of a network.

Arithmetic (printed):
  conv             a conv layer: output size, every product and sum (CS231n's demo)
  receptive-field  the field of a stack of layers, layer by layer
  params           parameters and MACs of a stack of layers
Pictures (PNG, -o): one layer of a network, by default mnist_cnn with the weights
`convolab demo` trained (convolab-demo/mnist_cnn/last.pt, when present), on a handwritten digit:
  overlay          theoretical and effective receptive field of a unit
  kernels          the layer's kernels
  feature-maps     what the layer outputs for the input (--layer a,b,... or all: one picture per layer)
  top-patches      what the layer's units respond to: for N channels, the input patches (each cut to
                   the unit's receptive field) that excite them most over a dataset's held-out images

Examples:
  convolab explain conv --input 5x5x3 --filters 2 --kernel 3 --stride 2 --padding 1
  convolab explain receptive-field conv:k=3 conv:k=3 pool:k=2 conv:k=3,d=2 --input 32
  convolab explain params conv:c=32,k=3 pool:k=2 fc:n=10 --input 28x28x1
  convolab explain feature-maps --layer layer1 -o maps.png
  convolab explain overlay --layer layer3 --digit 7 -o field.png
  convolab explain kernels --model resnet18 --layer conv1 -o kernels.png
  convolab explain top-patches --layer layer3 --channels 8 --top 9 -o patches.png"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="write out the arithmetic of a conv layer, a receptive field or the parameters; "
                                       "draw a network layer's receptive field, kernels or feature maps",
                       description=DESCRIPTION)
    p.add_argument("topic", metavar="TOPIC", help=", ".join(TOPICS))
    p.add_argument("layers", nargs="*", metavar="LAYER", help=LAYER_HELP + " (receptive-field, params)")
    p.add_argument("--input", help="conv, params: HxWxC (e.g. 5x5x3); receptive-field: the input side (e.g. 224)")
    p.add_argument("--filters", help="conv: number of filters (default 2)")
    p.add_argument("--kernel", help="conv: kernel size (default 3)")
    p.add_argument("--stride", help="conv: stride (default 1)")
    p.add_argument("--padding", help="conv: padding: an int, same or valid (default 0)")
    p.add_argument("--dilation", help="conv: dilation (default 1)")
    p.add_argument("--seed", help="conv: seed of the example values; pictures: of untrained weights (default 0)")
    p.add_argument("--model", help=f"pictures: a registered model (default: the one --weights was trained for, "
                                   f"else {DEFAULT_MODEL})")
    p.add_argument("--weights", metavar="FILE",
                   help=f"pictures: a training checkpoint (last.pt) or weights file (model.pt) (default: {DEMO_CHECKPOINT} "
                        f"when it exists and fits the model; else untrained weights)")
    p.add_argument("--layer", help="pictures: a layer name of the model (as in named_modules, e.g. layer1)")
    p.add_argument("--image", metavar="FILE", help="pictures: an image file (PNG, JPEG, ...) to run the network on "
                                                   "(default: a handwritten digit from the embedded data)")
    p.add_argument("--digit", help="pictures: which digit to show when no --image is given, 0-9 (default 3)")
    p.add_argument("--image-size", dest="image_size", metavar="CxHxW",
                   help="pictures: the input shape the image is converted to (default: what the weights were "
                        "trained on, else 1x28x28)")
    p.add_argument("--channels", metavar="N|C1,C2,...",
                   help="top-patches: the first N channels of the layer, or these channels (default 8)")
    p.add_argument("--top", help="top-patches: patches per channel, 1 to 64 (default 9)")
    p.add_argument("--data", help="top-patches: digits | mnist:PATH | folder:PATH, searched in its held-out images "
                                  "(default: the data the weights were trained on, else digits)")
    p.add_argument("--limit", help="top-patches: search at most this many images (default 1000)")
    p.add_argument("--html", metavar="FILE", help="top-patches: also write a self-contained HTML page with the picture")
    p.add_argument("-o", "--output", metavar="FILE", help="pictures: the PNG to write (its folder must exist)")
    p.set_defaults(func=run)


def _int(text: str | None, option: str, default: int, minimum: int, maximum: Optional[int] = None) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--{option} must be an int, got {text!r}") from None
    if value < minimum:
        raise UsageError(f"--{option} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise UsageError(f"--{option} must be <= {maximum}, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from .._args import check_choice
    from ..viz import explain

    topic = check_choice(args.topic, TOPICS, "TOPIC", "explain")
    picture_only = ("model", "weights", "layer", "image", "digit", "image_size", "output")
    patches_only = ("channels", "top", "data", "limit", "html")
    if topic != "top-patches":
        extra = [f"--{o}" for o in patches_only if getattr(args, o) is not None]
        if extra:
            raise UsageError(f"option {extra[0]} applies to 'explain top-patches' only")
    if topic == "top-patches":
        return _top_patches(args)
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


# --------------------------------------------------------------------------- pictures


@dataclass
class _Weights:
    """What a --weights file holds: the state_dict, and from a training checkpoint its run's facts."""

    path: Path
    state: dict
    config: Optional[dict] = None  # TrainConfig as saved
    data: Optional[dict] = None  # classes, channels, size, mean, std, source
    history: Optional[list] = None

    def describe(self) -> str:
        epochs = f"{len(self.history)} epoch{'s' * (len(self.history) != 1)}" if self.history else "trained"
        accuracy = self.history[-1].get("val_accuracy") if self.history else None
        held_out = f", {accuracy:.1%} held-out" if isinstance(accuracy, float) else ""
        return f"trained {epochs}{held_out} ({self.path})"


def _read_weights(path: Path) -> _Weights:
    """A checkpoint (``last.pt``) or a bare state_dict (``model.pt``, run facts from a ``last.pt`` beside it)."""
    import torch

    if not path.is_file():
        raise UsageError(f"--weights: no such file {str(path)!r}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a foreign or damaged file
        raise UsageError(f"--weights: {str(path)!r} is not a checkpoint or weights file "
                         f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict) and isinstance(state.get("config"), dict):
        return _Weights(path, state["model"], state["config"], state.get("data"), state.get("history"))
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UsageError(f"--weights: {str(path)!r} holds neither a training checkpoint nor a state_dict")
    beside = path.with_name("last.pt")
    if beside != path and beside.is_file():
        try:
            run = _read_weights(beside)
        except UsageError:
            run = None
        if run is not None and run.config is not None:
            return _Weights(path, state, run.config, run.data, run.history)
    return _Weights(path, state)


def _load_model(name: str, weights: Optional[_Weights], seed: int):
    """The model with its weights, and the pipeline that turns a [0, 1] image into its input."""
    import torch

    from ..data._dataset import DataSplit
    from ..models import create_model
    from ..train import TrainConfig, build_model

    if weights is not None and weights.config is not None and weights.data is not None:
        config = TrainConfig(**{k: v for k, v in weights.config.items() if k in TrainConfig.__dataclass_fields__})
        info = weights.data
        split = DataSplit(None, None, list(info["classes"]), int(info["channels"]), tuple(info["size"]),  # type: ignore[arg-type]
                          str(info.get("source", "")), list(info["mean"]), list(info["std"]))
        torch.manual_seed(seed)
        model, pipeline = build_model(config, split)
    else:
        torch.manual_seed(seed)
        kwargs: dict[str, Any] = {}
        if weights is not None:  # a bare state_dict: its classifier's width is the number of classes
            last = [v for k, v in weights.state.items() if k.endswith(".weight") and v.dim() == 2]
            if last:
                kwargs["num_classes"] = last[-1].shape[0]
        model, pipeline = create_model(name, **kwargs), None
    if weights is not None:
        try:
            model.load_state_dict(weights.state)
        except RuntimeError as exc:
            raise UsageError(f"--weights: {str(weights.path)!r} does not fit model {name!r} "
                             f"({str(exc).strip().splitlines()[0]})") from None
    return model.eval(), pipeline


def _first_conv(model) -> tuple[Optional[int], Optional[int]]:
    """(in_channels, spatial dims) of the first convolution, or (None, None) without one."""
    for m in model.modules():
        weight = getattr(m, "weight", None)
        if isinstance(getattr(m, "in_channels", None), int) and getattr(weight, "dim", lambda: 0)() >= 3:
            return m.in_channels, weight.dim() - 2
    return None, None


def _digit(digit: int):
    """The first embedded handwritten digit ``digit``, float [1, 28, 28] in [0, 1], and where it is from."""
    from ..data import load_digits

    try:
        images, source = load_digits()
    except ImportError as exc:
        raise UsageError(f"{exc} (or pass --image FILE)") from None
    index = int((images.labels == digit).nonzero()[0])
    return images[index][0], f"a handwritten {digit} (embedded digits, image {index})"


def _read_image(path: Path):
    """An image file as float [C, H, W] in [0, 1] (C = 1 for gray, else 3)."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise UsageError(f"--image: no such file {str(path)!r}")
    try:
        with Image.open(path) as im:
            im = im.convert("L" if im.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB")
            pixels = np.asarray(im, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise UsageError(f"--image: cannot read {str(path)!r} as an image ({exc})") from None
    x = torch.from_numpy(pixels.copy())
    return x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1)


def _shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1 or shape[1] * shape[2] > 512 * 512:
        raise UsageError(f"--image-size must be CxHxW with positive sides, at most 512x512, got {text!r}")
    return shape  # type: ignore[return-value]


def _model_input(image, shape: tuple[int, int, int], pipeline):
    """``image`` [C, H, W] in [0, 1] -> the model's input [1, *shape]: channels, size, normalisation.

    With a training run's pipeline, exactly what training fed the network; without one the image
    is standardised by its own statistics (what an untrained network's init assumes).
    """
    import torch.nn.functional as F

    x = image.unsqueeze(0)
    if x.shape[1] != shape[0]:
        x = x.mean(1, keepdim=True) if shape[0] == 1 else x.mean(1, keepdim=True).expand(-1, shape[0], -1, -1)
    if tuple(x.shape[2:]) != shape[1:]:
        x = F.interpolate(x, size=shape[1:], mode="bilinear", align_corners=False, antialias=True)
    if pipeline is not None:
        pipeline.eval()
        return pipeline(x)
    return (x - x.mean()) / x.std().clamp_min(1e-6)


def _picture(topic: str, args: argparse.Namespace) -> int:
    """Draw one picture of a network's layer for a real input (validated before anything is drawn)."""
    import torch

    from ..models import canonical_name, list_models
    from ..viz import feature_map_grid, kernel_grid, receptive_field_overlay
    from ._output import check_output_file

    if args.layers:
        raise UsageError(f"explain {topic} takes --layer, not layers (got {' '.join(args.layers)!r})")
    extra = [f"--{o}" for o in ("input", "filters", "kernel", "stride", "padding", "dilation")
             if getattr(args, o) is not None]
    if extra:
        raise UsageError(f"option {extra[0]} does not apply to 'explain {topic}' (use --image-size CxHxW)")
    for option in ("layer", "output"):
        if getattr(args, option) is None:
            raise UsageError(f"explain {topic} needs --{option}" + (" FILE.png" if option == "output" else ""))
    output = check_output_file(args.output, "-o", (".png",))
    if args.image is not None and args.digit is not None:
        raise UsageError("give --image or --digit, not both")
    digit = _int(args.digit, "digit", 3, 0, 9)
    seed = _int(args.seed, "seed", 0, 0)
    if args.model is not None and args.model not in list_models(aliases=True):
        from .._args import suggest

        raise UsageError(f"unknown model {args.model!r}{suggest(args.model, list_models(aliases=True))} "
                         f"(`convolab models` lists all)")

    weights_path = Path(args.weights) if args.weights is not None else None
    if weights_path is None and DEMO_CHECKPOINT.is_file() and canonical_name(args.model or DEFAULT_MODEL) == DEFAULT_MODEL:
        weights_path = DEMO_CHECKPOINT
    weights = _read_weights(weights_path) if weights_path is not None else None
    trained_for = weights.config.get("model") if weights is not None and weights.config else None
    name = args.model or trained_for or DEFAULT_MODEL
    if trained_for is not None and canonical_name(str(trained_for)) != canonical_name(name):
        raise UsageError(f"--weights {str(weights_path)!r} were trained for model {trained_for!r}, not {name!r}")

    model, pipeline = _load_model(name, weights, seed)
    if args.image_size is not None:
        shape = _shape(args.image_size)
    elif weights is not None and weights.data is not None:
        size = weights.config.get("image_size") if weights.config else None
        if isinstance(size, list):  # trained at several sizes: the first is the one it was measured at
            size = size[0]
        channels = _first_conv(model)[0] or int(weights.data["channels"])
        shape = (channels, *((size, size) if size else tuple(weights.data["size"])))
    else:
        shape = (_first_conv(model)[0] or 1, 28, 28)
    if args.image is not None:
        image, what = _read_image(Path(args.image)), f"{Path(args.image).name}"
    else:
        image, what = _digit(digit)
    with torch.no_grad():
        x = _model_input(image, shape, pipeline)[0].detach()
    who = weights.describe() if weights is not None else f"untrained (random weights, seed {seed})"
    title = f"{name}, {who}\ninput: {what}"
    if topic == "overlay":
        receptive_field_overlay(model, x, args.layer, path=output, title=title)
    elif topic == "kernels":
        kernel_grid(model, args.layer, output, title=f"{name}, {who}")
    elif "," in args.layer or args.layer == "all":
        # layer by layer: one picture per layer, named after it (maps.png -> maps_layer1.png, ...)
        layers = _map_layers(model, x) if args.layer == "all" else [v.strip() for v in args.layer.split(",") if v.strip()]
        paths = [output.with_name(f"{output.stem}_{layer.replace('.', '-')}{output.suffix}") for layer in layers]
        from ..viz.grids import layer_names

        for layer in layers:  # every name before any picture
            if layer not in layer_names(model):
                from .._args import check_choice

                check_choice(layer, layer_names(model), "layer", "explain feature-maps")
        for layer, path in zip(layers, paths):
            feature_map_grid(model, x.unsqueeze(0), layer, path, show_input=True, title=title)
        print(f"wrote {', '.join(map(str, paths))}: feature maps of {name} layer by layer ({', '.join(layers)}); "
              f"weights: {who}; input: {what}")
        return 0
    else:
        feature_map_grid(model, x.unsqueeze(0), args.layer, output, show_input=True, title=title)
    print(f"wrote {output}: {topic} of {name} layer {args.layer}; weights: {who}"
          + ("" if topic == "kernels" else f"; input: {what}"))
    if weights is None:
        print("(untrained: run `convolab demo` first, or pass --weights FILE, to see what a trained network learnt)")
    return 0


def _map_layers(model, x) -> list[str]:
    """The model's direct children that output feature maps ``[N, C, H, W]``, in call order."""
    import torch

    found: list[str] = []
    handles = [child.register_forward_hook(
        lambda m, a, out, name=name: found.append(name) if isinstance(out, torch.Tensor) and out.dim() == 4
        and name not in found else None) for name, child in model.named_children()]
    try:
        with torch.no_grad():
            model(x.unsqueeze(0))
    finally:
        for h in handles:
            h.remove()
    return found


def _weights_and_model(args: argparse.Namespace, seed: int):
    """--model and --weights (the demo's checkpoint by default): (name, model, pipeline, weights or None)."""
    from ..models import canonical_name, list_models

    if args.model is not None and args.model not in list_models(aliases=True):
        from .._args import suggest

        raise UsageError(f"unknown model {args.model!r}{suggest(args.model, list_models(aliases=True))} "
                         f"(`convolab models` lists all)")
    weights_path = Path(args.weights) if args.weights is not None else None
    if weights_path is None and DEMO_CHECKPOINT.is_file() and canonical_name(args.model or DEFAULT_MODEL) == DEFAULT_MODEL:
        weights_path = DEMO_CHECKPOINT
    weights = _read_weights(weights_path) if weights_path is not None else None
    trained_for = weights.config.get("model") if weights is not None and weights.config else None
    name = args.model or trained_for or DEFAULT_MODEL
    if trained_for is not None and canonical_name(str(trained_for)) != canonical_name(name):
        raise UsageError(f"--weights {str(weights_path)!r} were trained for model {trained_for!r}, not {name!r}")
    model, pipeline = _load_model(name, weights, seed)
    return name, model, pipeline, weights


def _channels(text: Optional[str]):
    if text is None:
        return 8
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--channels must be a count N or channel indices C1,C2,..., got {text!r}") from None
    if len(values) == 1:
        if values[0] < 1:
            raise UsageError(f"--channels must be a count >= 1, got {values[0]}")
        return values[0]
    return values


def _top_patches(args: argparse.Namespace) -> int:
    """``explain top-patches``: every option checked before the network runs."""
    import torch

    from ..viz import top_patch_grid, top_patches
    from ._output import check_output_file

    if args.layers:
        raise UsageError(f"explain top-patches takes --layer, not layers (got {' '.join(args.layers)!r})")
    extra = [f"--{o.replace('_', '-')}" for o in ("input", "filters", "kernel", "stride", "padding", "dilation",
                                                  "image", "digit", "image_size") if getattr(args, o) is not None]
    if extra:
        raise UsageError(f"option {extra[0]} does not apply to 'explain top-patches' (it searches --data)")
    for option in ("layer", "output"):
        if getattr(args, option) is None:
            raise UsageError(f"explain top-patches needs --{option}" + (" FILE.png" if option == "output" else ""))
    output = check_output_file(args.output, "-o", (".png",))
    html = check_output_file(args.html, "--html", (".html",)) if args.html is not None else None
    channels = _channels(args.channels)
    top = _int(args.top, "top", 9, 1, 64)
    limit = _int(args.limit, "limit", 1000, 1)
    seed = _int(args.seed, "seed", 0, 0)
    name, model, pipeline, weights = _weights_and_model(args, seed)
    spec = args.data or (weights.config.get("data") if weights is not None and weights.config else None) or "digits"
    from ..data import load_dataset

    run = weights.config if weights is not None and weights.config else {}
    try:
        split = load_dataset(spec, val_fraction=run.get("val_fraction", 0.2), seed=run.get("seed", 0), limit=limit)
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(f"--data: {exc}") from None
    images = torch.stack([split.val[i][0] for i in range(len(split.val))]) if len(split.val) else None
    if images is None:
        raise UsageError(f"--data {spec!r} has no held-out images to search")
    if pipeline is None:  # untrained or bare weights: standardise each batch as the pictures do
        from ..train.pipeline import InputPipeline

        channels_in = _first_conv(model)[0] or images.shape[1]
        pipeline = InputPipeline([float(images.mean())] * images.shape[1], [float(images.std())] * images.shape[1],
                                 channels_in, None)
    try:
        found = top_patches(model, images, args.layer, channels=channels, top=top, pipeline=pipeline)
    except ValueError as exc:
        raise UsageError(str(exc).replace("top_patches: ", "", 1)) from None
    who = weights.describe() if weights is not None else f"untrained (random weights, seed {seed})"
    title = f"{name}, {who}; searched: {len(images):,} held-out images of {split.source}"
    figure = top_patch_grid(found, title=title)
    from ..train.atomic import atomic_write, atomic_write_text

    atomic_write(output, lambda f: figure.savefig(f, format="png", bbox_inches="tight", pad_inches=0.08))
    if html is not None:
        from ..viz.gallery import figure_page

        atomic_write_text(html, figure_page([(f"What {name} {args.layer}'s units respond to", title, output)]))
    size = "x".join(f"{f.size:g}" for f in found.fields)
    print(f"wrote {output}: the {top} strongest patches ({size}, the units' receptive field) of "
          f"{len(found.channels)} channels of {name} layer {args.layer}; weights: {who}"
          + (f"; page: {html}" if html is not None else ""))
    if weights is None:
        print("(untrained: run `convolab demo` first, or pass --weights FILE, to see what a trained network learnt)")
    del figure
    return 0
