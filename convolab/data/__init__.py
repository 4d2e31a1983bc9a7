"""Datasets: the embedded digits, MNIST IDX files, image folders, and a seeded train/val split.

``load_dataset(spec)`` is the one entry point the training loop and the command line use:
``"digits"`` (embedded, no network), ``"mnist:PATH"`` (a folder of IDX files, also
Fashion-MNIST) or ``"folder:PATH"`` (one sub-folder per class).
"""

from __future__ import annotations

from typing import Optional

from torch.utils.data import Dataset, Subset

from ._dataset import DataSplit, ImageTensors, make_split, stratified_split, stratified_subset
from .digits import load_digits
from .folder import ImageFolder, load_folder
from .idx import load_mnist, read_idx, write_idx

__all__ = [
    "DataSplit",
    "ImageFolder",
    "ImageTensors",
    "load_dataset",
    "load_digits",
    "load_folder",
    "load_mnist",
    "read_idx",
    "stratified_split",
    "stratified_subset",
    "write_idx",
]

DATASET_KINDS = ("digits", "mnist", "folder")


def _labels(dataset: Dataset):
    if isinstance(dataset, (ImageTensors, ImageFolder)):
        return dataset.labels
    if isinstance(dataset, Subset):
        return _labels(dataset.dataset)[dataset.indices]
    raise TypeError(f"load_dataset: cannot limit a {type(dataset).__name__}")


def _limit(dataset: Dataset, n: int, seed: int) -> Dataset:
    """A stratified, seeded subset of at most ``n`` items (exactly ``n`` when there are more)."""
    if len(dataset) <= n:
        return dataset
    keep = stratified_subset(_labels(dataset), n, seed)
    if isinstance(dataset, ImageTensors):
        return dataset.subset(keep)
    return Subset(dataset, keep.tolist())


def load_dataset(
    spec: str,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    limit: Optional[int] = None,
    size: Optional[int] = None,
) -> DataSplit:
    """Load a dataset named by ``spec`` and split it into train and held-out sets.

    Args:
        spec: "digits", "mnist:PATH" or "folder:PATH".
        val_fraction: share held out when the source has no test set of its own.
        seed: seed of the split (and of the ``limit`` subset).
        limit: keep at most this many training and this many held-out images (quick runs).
        size: image size for ``folder:`` datasets (default: the first image's).

    Returns:
        A :class:`DataSplit`.

    Raises:
        ValueError: an unknown kind, a missing path, a bad fraction or limit, corrupt files.
        FileNotFoundError: the path does not exist.
        ImportError: the embedded digits without the ``data`` extra.

    Example:
        >>> split = load_dataset("digits", limit=100)
        >>> len(split.train), split.channels, split.size, split.num_classes
        (100, 1, (28, 28), 10)
    """
    kind, _, path = spec.partition(":")
    from .._args import check_choice, positive_int

    check_choice(kind, DATASET_KINDS, "dataset kind", "load_dataset")
    if limit is not None:
        limit = positive_int(limit, "limit", "load_dataset")
    if kind == "digits":
        images, source = load_digits(path or "auto")
        split = make_split(images, [str(c) for c in range(10)], source, val_fraction, seed)
    elif not path:
        raise ValueError(f"load_dataset: expected '{kind}:PATH' (a folder), got {spec!r}")
    elif kind == "mnist":
        split = load_mnist(path, val_fraction=val_fraction, seed=seed)
    else:
        split = load_folder(path, size=size, val_fraction=val_fraction, seed=seed)
    if limit is not None:
        split.train, split.val = _limit(split.train, limit, seed), _limit(split.val, limit, seed)
    return split
