"""From a dataset to what the model eats: the model built for the data, the input pipeline, batches.

:func:`build_model` creates the registered model for a dataset's classes and channels and
probes it once with blank images, so a model that cannot take the data fails before any
training with a message that says what to change. :class:`InputPipeline` turns batches of
images in [0, 1] into the model's input (random shift, channels, size, normalisation);
:func:`batches` cuts a list of sample indices into batches, in memory or through a
``DataLoader`` for image folders.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ..data import DataSplit, ImageTensors
from ..models import create_model
from .config import TrainConfig

__all__ = ["InputPipeline", "batches", "build_model", "check_data", "first_in_channels", "random_shift"]


class InputPipeline(nn.Module):
    """Batch images in [0, 1] -> what the model eats: optional random shift, channels, size, normalisation.

    Gray images are repeated to 3 channels (or RGB averaged to 1) when the model expects it;
    ``size`` resizes bilinearly. ``shift`` translates every image by its own random offset of up
    to ``shift`` pixels in training mode, drawing from torch's global generator (saved in
    checkpoints), and is a no-op in eval mode.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], channels: int, size: Optional[tuple[int, int]], shift: int = 0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.channels, self.size, self.shift = channels, size, shift

    def forward(self, x: Tensor) -> Tensor:
        if self.training and self.shift:
            x = random_shift(x, self.shift)
        x = (x - self.mean) / self.std
        if x.shape[1] != self.channels:
            x = x.mean(1, keepdim=True) if self.channels == 1 else x.expand(-1, self.channels, -1, -1)
        if self.size is not None and tuple(x.shape[2:]) != tuple(self.size):
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return x


def random_shift(x: Tensor, s: int) -> Tensor:
    """Translate each image of ``x`` ``[N, C, H, W]`` by its own random offset of up to ``s`` pixels, zero-filled.

    The offsets come from torch's global CPU generator, the one checkpoints save, so a
    resumed run draws the same shifts.
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (s, s, s, s))
    # drawn on the CPU generator (the one checkpoints save) whatever the device of x
    dy, dx = torch.randint(0, 2 * s + 1, (2, n, 1, 1)).to(x.device)
    rows = (dy + torch.arange(h, device=x.device).view(1, h, 1)).expand(n, h, w)
    cols = (dx + torch.arange(w, device=x.device).view(1, 1, w)).expand(n, h, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1).expand(n, h, w)
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)


def batches(dataset: Dataset, indices: list[int], batch_size: int, workers: int, drop_last: bool) -> Iterator[tuple[Tensor, Tensor]]:
    """``(images, labels)`` of ``indices`` in order, ``batch_size`` at a time.

    In-memory data is sliced directly; other datasets (image folders) load through a
    ``DataLoader`` with ``workers`` processes. ``drop_last`` leaves out a short last batch.
    """
    chunks = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    if drop_last and chunks and len(chunks[-1]) < batch_size:
        chunks.pop()
    if isinstance(dataset, ImageTensors):
        for chunk in chunks:
            yield dataset.batch(torch.tensor(chunk, dtype=torch.long))
    else:
        yield from DataLoader(dataset, batch_sampler=chunks, num_workers=workers)


def check_data(config: TrainConfig, data: DataSplit) -> None:
    """Check the settings that depend on the data: the shift against the image size, a held-out set.

    Raises:
        ValueError: ``augment_shift`` above a quarter of the images' smaller side (a larger shift
            moves much of the image out of view), or an empty held-out or training set.
    """
    h, w = data.size
    most = min(h, w) // 4
    if config.augment_shift > most:
        raise ValueError(
            f"train: augment_shift must be at most {most} for {h}x{w} images (a quarter of the smaller side: "
            f"a larger shift moves much of the image out of view), got {config.augment_shift}"
        )
    if len(data.train) == 0:
        raise ValueError(f"train: the training set of {data.source} is empty")
    if len(data.val) == 0:
        raise ValueError(
            f"train: the held-out set is empty: {data.source} has no test set of its own and val_fraction "
            f"is {config.val_fraction}; hold out a share of the images (--val-fraction in (0, 1), e.g. 0.2) "
            f"to measure the accuracy"
        )


def first_in_channels(model: nn.Module) -> Optional[int]:
    """The ``in_channels`` of the first module that has one: the channels a model without that argument expects."""
    for m in model.modules():
        if isinstance(getattr(m, "in_channels", None), int):
            return m.in_channels
    return None


def build_model(config: TrainConfig, data: DataSplit) -> tuple[nn.Module, InputPipeline]:
    """Create the registered model for this data and the pipeline that feeds it.

    The model is asked for ``num_classes`` and ``in_channels`` of the data; a model that
    does not take ``in_channels`` gets converted images (gray <-> RGB). One probe forward on
    two blank images checks that the model takes the input size and returns
    ``[N, num_classes]``.

    Raises:
        ValueError: the model cannot take the data (the message says what to change).
    """
    try:
        model = create_model(config.model, num_classes=data.num_classes, in_channels=data.channels)
        channels = data.channels
    except TypeError:
        try:
            model = create_model(config.model, num_classes=data.num_classes)
        except TypeError as exc:
            raise ValueError(f"train: model {config.model!r} does not take num_classes ({exc})") from None
        channels = first_in_channels(model) or data.channels
    sizes = config.sizes
    size = (sizes[0], sizes[0]) if sizes else None
    h, w = size or data.size
    pipeline = InputPipeline(data.mean, data.std, channels, size, config.augment_shift)
    was_training = model.training
    model.eval()
    try:
        for side in (sizes or [None]):
            ph, pw = (side, side) if side else (h, w)
            failing: list[str] = []
            try:
                with torch.no_grad(), _InnermostModule(model, failing):
                    out = model(torch.zeros(2, channels, ph, pw))
            except Exception as exc:  # any failure of the probe means these inputs do not fit
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                if sizes and len(sizes) > 1:
                    raise ValueError(_not_any_size(config, model, failing, f"{ph}x{pw}", reason)) from None
                works = None if config.image_size else _working_size(model, channels, max(ph, pw))
                hint = f"--image-size {works} works" if works else "pass an image size it accepts with --image-size"
                raise ValueError(
                    f"train: model {config.model!r} cannot take {channels}x{ph}x{pw} images ({reason}); {hint}"
                ) from None
            if not isinstance(out, Tensor) or tuple(out.shape) != (2, data.num_classes):
                got = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
                if sizes and len(sizes) > 1 and side != sizes[0]:
                    raise ValueError(_not_any_size(config, model, [], f"{ph}x{pw}", f"it returns {got}"))
                raise ValueError(f"train: model {config.model!r} must return logits [N, {data.num_classes}], got {got}")
    finally:
        model.train(was_training)
    return model, pipeline


class _InnermostModule:
    """While active, ``failing`` holds the qualified name of the innermost module still running
    (after an exception: the module that raised it)."""

    def __init__(self, model: nn.Module, failing: list[str]) -> None:
        self.model, self.failing, self.handles = model, failing, []

    def __enter__(self) -> "_InnermostModule":
        stack: list[str] = []
        for name, module in self.model.named_modules():
            def pre(m: nn.Module, args: Any, name: str = name) -> None:
                stack.append(name)
                self.failing[:] = [name]

            def post(m: nn.Module, args: Any, out: Any) -> None:
                stack.pop()
                self.failing[:] = stack[-1:]

            self.handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self.handles:
            h.remove()


def _not_any_size(config: TrainConfig, model: nn.Module, failing: list[str], size: str, reason: str) -> str:
    """The error for several training sizes on a model whose head takes one size: it names the head."""
    if failing and failing[0]:
        module = model.get_submodule(failing[0])
        head = f"its head {failing[0]} ({type(module).__name__}{_shape_of(module)})"
    else:
        head = "its head"
    sizes = ", ".join(map(str, config.sizes or []))
    return (
        f"train: image sizes {sizes} train at several sizes, which needs a head that takes any size (spatial "
        f"pyramid or global pooling before the classifier); model {config.model!r} cannot take {size} images: "
        f"{head} fails ({reason}). Use a model with such a head, e.g. mnist_spp, or one image size"
    )


def _shape_of(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return f", {module.in_features} inputs"
    return ""


def _working_size(model: nn.Module, channels: int, above: int) -> Optional[int]:
    """The smallest usual square input size larger than ``above`` that ``model`` accepts, if any."""
    for size in (32, 64, 96, 128, 160, 224, 299):
        if size <= above:
            continue
        try:
            with torch.no_grad():
                model(torch.zeros(1, channels, size, size))
            return size
        except Exception:  # noqa: BLE001  (any failure: try the next size)
            continue
    return None
