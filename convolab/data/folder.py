"""Users' own images: one sub-folder per class, PNG/JPEG/BMP/GIF/WebP read with Pillow."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from ._dataset import DataSplit, channel_stats, stratified_split

PathLike = Union[str, "os.PathLike[str]"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


class ImageFolder(Dataset):
    """``root/<class>/<image>`` files as ``(float [C, H, W] in [0, 1], label)`` items.

    Classes are the sub-folder names in sorted order (label = position). Images load lazily,
    are converted to gray (1 channel) or RGB (3) and resized to one size.

    Args:
        root: the folder holding one sub-folder per class.
        size: (H, W) or an int for square images. Default: the first image's size.
        channels: 1 or 3. Default: 1 if the first image is grayscale, else 3.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: fewer than two classes with images, a bad ``size`` or ``channels``.
        ImportError: Pillow is missing.
    """

    def __init__(self, root: PathLike, size: Optional[int | tuple[int, int]] = None, channels: Optional[int] = None) -> None:
        from PIL import Image  # optional dependency: only users of image folders need it

        self._image = Image
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"ImageFolder: no such folder {self.root}")
        self.classes: list[str] = []
        self.samples: list[tuple[Path, int]] = []
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            files = sorted(f for f in d.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if files:
                self.samples += [(f, len(self.classes)) for f in files]
                self.classes.append(d.name)
        if len(self.classes) < 2:
            raise ValueError(
                f"ImageFolder: expected at least 2 class sub-folders with images ({', '.join(IMAGE_SUFFIXES)}) "
                f"in {self.root}, found {len(self.classes)}"
            )
        first = self._open(self.samples[0][0])
        if channels is None:
            channels = 1 if first.mode in _GRAY_MODES else 3
        if channels not in (1, 3):
            raise ValueError(f"ImageFolder: channels must be 1 or 3, got {channels}")
        if size is None:
            size = (first.height, first.width)
        size = (size, size) if isinstance(size, int) else tuple(size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"ImageFolder: size must be a positive int or (H, W), got {size}")
        self.channels, self.size = channels, size

    def _open(self, path: Path):
        try:
            image = self._image.open(path)
            image.load()
        except (OSError, self._image.UnidentifiedImageError) as exc:
            raise ValueError(f"ImageFolder: cannot read image {path} ({exc})") from None
        return image

    @property
    def labels(self) -> Tensor:
        return torch.tensor([label for _, label in self.samples])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        path, label = self.samples[i]
        image = self._open(path).convert("L" if self.channels == 1 else "RGB")
        if (image.height, image.width) != self.size:
            image = image.resize((self.size[1], self.size[0]), self._image.BILINEAR)
        x = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
        x = x.view(self.size[0], self.size[1], self.channels).permute(2, 0, 1)
        return x.float().div_(255), label


def load_folder(
    root: PathLike,
    *,
    size: Optional[int | tuple[int, int]] = None,
    channels: Optional[int] = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> DataSplit:
    """An :class:`ImageFolder` split into train and validation (stratified, by ``seed``)."""
    images = ImageFolder(root, size, channels)
    train_idx, val_idx = stratified_split(images.labels, val_fraction, seed)
    train, val = Subset(images, train_idx.tolist()), Subset(images, val_idx.tolist())
    mean, std = channel_stats(train, images.channels)
    return DataSplit(train, val, images.classes, images.channels, images.size, f"image folder {images.root}", mean, std)
