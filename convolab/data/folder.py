"""Users' own images: one sub-folder per class, PNG/JPEG/BMP/GIF/WebP read with Pillow.

Every image is checked when the folder is loaded, so a bad file is named before training
starts rather than failing an epoch later: Pillow reads its header (format and size), the
size is checked against a pixel limit (a 30000x30000 image would need gigabytes), and the
data is read through once to find truncated or corrupt files cheaply (PNG: chunk checksums
without decompressing; JPEG: decoded at 1/8 scale; other formats: decoded).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from .._args import positive_int
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
        max_pixels: the largest image accepted, in pixels (width x height). Default: Pillow's
            ``Image.MAX_IMAGE_PIXELS`` (89,478,485), beyond which Pillow itself suspects a
            decompression bomb.
        verify: check every image when the folder is loaded (header, size, data); False checks
            only when an image is read.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: ``root`` is a file; fewer than two classes with images; a bad ``size``,
            ``channels`` or ``max_pixels``; an image that is not an image, truncated, corrupt or
            larger than ``max_pixels`` (the message names the file).
        ImportError: Pillow is missing.
    """

    def __init__(
        self,
        root: PathLike,
        size: Optional[int | tuple[int, int]] = None,
        channels: Optional[int] = None,
        *,
        max_pixels: Optional[int] = None,
        verify: bool = True,
    ) -> None:
        from PIL import Image  # optional dependency: only users of image folders need it

        self._image = Image
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"ImageFolder: {self.root} is a file; expected a folder with one sub-folder per class")
        if not self.root.is_dir():
            raise FileNotFoundError(f"ImageFolder: no such folder {self.root}")
        if max_pixels is None:
            max_pixels = int(Image.MAX_IMAGE_PIXELS or 2**63 - 1)
        self.max_pixels = positive_int(max_pixels, "max_pixels", "ImageFolder")
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
        if verify:
            for path, _ in self.samples:
                self._check(path)
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

    def _too_large(self, path: Path, size: Optional[tuple[int, int]], pixels: Optional[int] = None) -> ValueError:
        shown = f"{size[0]}x{size[1]} ({size[0] * size[1]:,} pixels)" if size else f"{pixels:,} pixels" if pixels else "too large"
        return ValueError(
            f"ImageFolder: image {path} is {shown}, above the limit of {self.max_pixels:,} pixels "
            f"(max_pixels; a picture that large is more likely a decompression bomb than a training image)"
        )

    def _header(self, path: Path) -> Any:
        """Open ``path`` (header only), refusing non-images and images above ``max_pixels``."""
        Image = self._image
        try:
            with warnings.catch_warnings():
                # the size is checked below, against max_pixels, with the file's name
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(path)
        except Image.DecompressionBombError as exc:
            found = re.search(r"\((\d+) pixels\)", str(exc))
            raise self._too_large(path, None, int(found.group(1)) if found else None) from None
        except Image.UnidentifiedImageError:
            raise ValueError(
                f"ImageFolder: {path} is not an image Pillow can read ({', '.join(IMAGE_SUFFIXES)}), "
                f"or its header is truncated or corrupt"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ValueError(f"ImageFolder: image {path} is truncated or corrupt ({exc})") from None
        if image.width * image.height > self.max_pixels:
            image.close()
            raise self._too_large(path, image.size)
        return image

    def _check(self, path: Path) -> None:
        """Read ``path`` through once: a truncated or corrupt file fails here, named."""
        image = self._header(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", self._image.DecompressionBombWarning)
                if image.format == "PNG":
                    image.verify()  # every chunk's CRC, without inflating the pixels
                else:
                    if image.format == "JPEG":
                        image.draft(image.mode, (1, 1))  # decode at 1/8 scale: still reads every byte
                    image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:  # Pillow's ways of saying "damaged"
            raise ValueError(f"ImageFolder: image {path} is truncated or corrupt ({exc})") from None
        finally:
            image.close()

    def _open(self, path: Path):
        image = self._header(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", self._image.DecompressionBombWarning)
                image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ValueError(f"ImageFolder: image {path} is truncated or corrupt ({exc})") from None
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
    max_pixels: Optional[int] = None,
) -> DataSplit:
    """An :class:`ImageFolder` split into train and validation (stratified, by ``seed``).

    Every image is checked first (see :class:`ImageFolder`): a file that is not an image, is
    truncated or corrupt, or has more than ``max_pixels`` pixels is named in a ValueError.
    """
    images = ImageFolder(root, size, channels, max_pixels=max_pixels)
    train_idx, val_idx = stratified_split(images.labels, val_fraction, seed)
    train, val = Subset(images, train_idx.tolist()), Subset(images, val_idx.tolist())
    mean, std = channel_stats(train, images.channels)
    return DataSplit(train, val, images.classes, images.channels, images.size, f"image folder {images.root}", mean, std)
