"""In-memory image datasets and the seeded train/validation split shared by every source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset


class ImageTensors(Dataset):
    """Images held in memory as uint8 ``[N, C, H, W]`` with int64 labels.

    Items (and :meth:`batch`) are float32 in [0, 1]; keeping uint8 in memory costs a quarter
    of float32, and :meth:`batch` gathers a whole batch with one indexing op instead of
    collating N items.

    Args:
        images (Tensor[N, C, H, W], uint8): pixels 0..255.
        labels (Tensor[N], int64): class indices.

    Raises:
        ValueError: wrong ranks/dtypes or a length mismatch.

    Example:
        >>> ds = ImageTensors(torch.zeros(4, 1, 5, 5, dtype=torch.uint8), torch.arange(4))
        >>> len(ds), ds[1][0].shape, ds.batch(torch.tensor([0, 2]))[0].shape
        (4, torch.Size([1, 5, 5]), torch.Size([2, 1, 5, 5]))
    """

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if images.dim() != 4 or images.dtype != torch.uint8:
            raise ValueError(
                f"ImageTensors: expected uint8 images [N, C, H, W], got {images.dtype} {list(images.shape)}"
            )
        if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"ImageTensors: expected {images.shape[0]} labels (one per image), got shape {list(labels.shape)}"
            )
        self.images = images
        self.labels = labels.long()

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.images[i].float().div_(255), int(self.labels[i])

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """Images (float32 in [0, 1]) and labels at ``index``."""
        return self.images[index].float().div_(255), self.labels[index]

    def subset(self, index: Tensor) -> "ImageTensors":
        return ImageTensors(self.images[index], self.labels[index])


def stratified_split(labels: Sequence[int] | Tensor, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Split indices into (train, val), the same fraction of every class, reproducibly by ``seed``.

    Every class with at least two samples keeps at least one sample on each side.

    Args:
        labels: class index of every sample.
        val_fraction: share of each class that goes to validation, in [0, 1).
        seed: the permutation's seed; the same seed always gives the same split.

    Returns:
        (train_indices, val_indices), each sorted, int64.

    Raises:
        ValueError: ``val_fraction`` outside [0, 1).

    Example:
        >>> train, val = stratified_split([0, 0, 0, 0, 1, 1, 1, 1], 0.25, seed=0)
        >>> len(train), len(val)
        (6, 2)
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"split: val_fraction must be in [0, 1), got {val_fraction}")
    labels = torch.as_tensor(labels, dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(labels.numel(), generator=g)
    train, val = [], []
    for c in torch.unique(labels).tolist():
        members = perm[labels[perm] == c]
        k = round(val_fraction * members.numel())
        if val_fraction > 0 and members.numel() >= 2:
            k = min(max(k, 1), members.numel() - 1)
        val.append(members[:k])
        train.append(members[k:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def stratified_subset(labels: Sequence[int] | Tensor, n: int, seed: int) -> Tensor:
    """Exactly ``min(n, len(labels))`` indices, each class in proportion to its size, reproducibly by ``seed``.

    Each class gets the floor of its share of ``n``; the few left over go to the classes with
    the largest remainders (ties: the lower class), so the total is exactly ``n`` (rounding
    every class up could give more: 130 for ``n=128`` over 10 classes).

    Args:
        labels: class index of every sample.
        n: how many to keep, >= 0.
        seed: the permutation's seed (the samples kept of each class are the first of a seeded shuffle).

    Returns:
        The kept indices, sorted, int64.

    Example:
        >>> keep = stratified_subset(torch.arange(100) % 3, 10, seed=0)
        >>> len(keep), torch.bincount(torch.arange(100)[keep] % 3).tolist()
        (10, [4, 3, 3])
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    total = labels.numel()
    if n >= total:
        return torch.arange(total)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(total, generator=g)
    classes, counts = torch.unique(labels, return_counts=True)
    quotas = [n * int(c) // total for c in counts]
    remainders = [(n * int(c) % total, -i) for i, c in enumerate(counts)]
    for _, neg_i in sorted(remainders, reverse=True)[: n - sum(quotas)]:
        quotas[-neg_i] += 1
    keep = [perm[labels[perm] == c][:q] for c, q in zip(classes.tolist(), quotas)]
    return torch.cat(keep).sort().values


@dataclass
class DataSplit:
    """A training set, a held-out set and what a model needs to know about them.

    Attributes:
        train, val: datasets of ``(image float [C, H, W] in [0, 1], label)``.
        classes: class names, index = label.
        channels: image channels (1 gray, 3 RGB).
        size: image (H, W).
        source: where the images came from, for messages.
        mean, std: per-channel statistics of the training images (for normalisation).
    """

    train: Dataset
    val: Dataset
    classes: list[str]
    channels: int
    size: tuple[int, int]
    source: str
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def channel_stats(dataset: Dataset, channels: int, limit: int = 512) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of (up to ``limit`` evenly spaced) images of a dataset."""
    if isinstance(dataset, ImageTensors):
        x = dataset.images[:: max(1, len(dataset) // limit)].float().div_(255)
    else:
        step = max(1, len(dataset) // limit)
        x = torch.stack([dataset[i][0] for i in range(0, len(dataset), step)])
    x = x.transpose(0, 1).reshape(channels, -1)
    std = x.std(dim=1).clamp_min(1e-3)  # a blank channel must not divide by zero
    return x.mean(dim=1).tolist(), std.tolist()


def make_split(
    images: ImageTensors,
    classes: list[str],
    source: str,
    val_fraction: float,
    seed: int,
    val: Optional[ImageTensors] = None,
) -> DataSplit:
    """Split ``images`` by seed (or use the given ``val`` set) and compute the training statistics."""
    if val is None:
        train_idx, val_idx = stratified_split(images.labels, val_fraction, seed)
        train, val = images.subset(train_idx), images.subset(val_idx)
    else:
        train = images
    channels, h, w = images.images.shape[1:]
    mean, std = channel_stats(train, channels)
    return DataSplit(train, val, classes, channels, (h, w), source, mean, std)
