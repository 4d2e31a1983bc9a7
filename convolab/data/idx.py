"""MNIST / Fashion-MNIST in their IDX format, gzipped or raw, with header and size validation.

An IDX file is: two zero bytes, a type byte, a rank byte, one big-endian int32 per dim,
then the values big-endian in C order. A file whose length does not match its header
(truncated download, wrong file, a gzip bomb) is refused with an error naming it, never read
as garbage and never read beyond what its header promises.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import IO, Optional, Union

import numpy as np
import torch
from torch import Tensor

from ._dataset import DataSplit, ImageTensors, make_split

PathLike = Union[str, "os.PathLike[str]"]

# IDX type byte -> big-endian numpy dtype
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_TYPE_OF = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}


# Deflate cannot compress by more than about 1032:1, so a gzip file of n bytes holds at most
# this many times n bytes of data: a header asking for more is refused before anything is read.
_DEFLATE_MAX_RATIO = 1032
_CHUNK = 1 << 20


def _read_at_most(stream: IO[bytes], n: int) -> bytes:
    """Up to ``n`` bytes, read in chunks so memory follows what the stream really holds."""
    parts, left = [], n
    while left > 0:
        part = stream.read(min(left, _CHUNK))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read_idx(path: PathLike) -> Tensor:
    """Read one IDX file (raw or gzipped) into a tensor of its stored type.

    The header is read first and checked against the file before the values are read: a
    header whose shape needs more bytes than the file holds (a raw file) or can hold (a gzip
    file, at deflate's maximum ratio), a truncated file, and a file with more data than its
    header says (e.g. a gzip bomb) are refused with an error naming the file, without reading
    more than the header promises.

    Args:
        path: the file; gzip is detected from its content.

    Returns:
        Tensor of the header's shape (uint8 for MNIST images and labels).

    Raises:
        FileNotFoundError: no such file.
        ValueError: bad magic, unknown type byte, or a size that does not match the header
            (the message names the file and both sizes).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "x-idx3-ubyte.gz")
        >>> write_idx(path, torch.arange(24, dtype=torch.uint8).view(2, 3, 4))
        >>> read_idx(path).shape
        torch.Size([2, 3, 4])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_idx: no such file {path}")
    on_disk = path.stat().st_size
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"  # decide by content, not by the name
            raw.seek(0)
            stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if gzipped else raw
            return _parse(path, stream, on_disk, gzipped)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"read_idx: {path}: corrupt or truncated gzip data ({exc})") from None


def _parse(path: Path, stream: IO[bytes], on_disk: int, gzipped: bool) -> Tensor:
    head = _read_at_most(stream, 4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise ValueError(f"read_idx: {path} is not an IDX file (expected magic 0x0000 followed by type and rank bytes)")
    code, ndim = head[2], head[3]
    if code not in IDX_TYPES:
        raise ValueError(
            f"read_idx: {path}: unknown IDX type byte 0x{code:02X} (valid: "
            f"{', '.join(f'0x{c:02X}' for c in IDX_TYPES)})"
        )
    if ndim < 1:
        raise ValueError(f"read_idx: {path}: rank byte must be >= 1, got {ndim}")
    header = 4 + 4 * ndim
    dims = _read_at_most(stream, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"read_idx: {path}: truncated header ({4 + len(dims)} bytes, rank {ndim} needs {header})")
    shape = tuple(int.from_bytes(dims[i : i + 4], "big") for i in range(0, 4 * ndim, 4))
    dtype = np.dtype(IDX_TYPES[code])
    payload = math.prod(shape) * dtype.itemsize  # Python ints: no overflow whatever the header says
    expected = header + payload
    what = f"shape {shape} of {dtype.name} needs {expected:,} bytes"
    if not gzipped:
        if on_disk != expected:
            raise ValueError(
                f"read_idx: {path}: size {on_disk} bytes does not match its header ({what}); the file is "
                f"{'truncated' if on_disk < expected else 'followed by extra data'}"
            )
    elif payload > _DEFLATE_MAX_RATIO * on_disk:
        raise ValueError(
            f"read_idx: {path}: its header is wrong or the file truncated: {what}, more than "
            f"{on_disk:,} bytes of gzip data can hold"
        )
    data = _read_at_most(stream, payload)
    if len(data) < payload:
        raise ValueError(
            f"read_idx: {path}: size {header + len(data)} bytes (decompressed) does not match its header ({what}); "
            f"the file is truncated"
        )
    if gzipped and stream.read(1):
        raise ValueError(
            f"read_idx: {path}: its decompressed data is longer than its header says ({what}); the file is "
            f"followed by extra data (or is not what its header describes)"
        )
    array = np.frombuffer(data, dtype).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def write_idx(path: PathLike, tensor: Tensor) -> None:
    """Write a tensor as an IDX file (gzipped when ``path`` ends in ``.gz``).

    Raises:
        TypeError: a dtype IDX cannot store (uint8, int8, int16, int32, float32, float64 only).
    """
    array = tensor.detach().cpu().contiguous().numpy()
    code = _TYPE_OF.get(array.dtype)
    if code is None:
        raise TypeError(f"write_idx: IDX cannot store dtype {array.dtype} (uint8, int8, int16, int32, float32, float64)")
    payload = (
        bytes([0, 0, code, array.ndim])
        + np.asarray(array.shape, ">u4").tobytes()
        + array.astype(IDX_TYPES[code]).tobytes()
    )
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)


def _find(folder: Path, prefix: str, kind: str) -> Optional[Path]:
    # The original names, and the "train-images.idx3-ubyte" spelling of some mirrors.
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            candidate = folder / f"{prefix}-{kind}{sep}idx{3 if kind == 'images' else 1}-ubyte{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _pair(folder: Path, prefix: str) -> Optional[ImageTensors]:
    images_path, labels_path = _find(folder, prefix, "images"), _find(folder, prefix, "labels")
    if images_path is None and labels_path is None:
        return None
    if images_path is None or labels_path is None:
        missing = f"{prefix}-{'images-idx3' if images_path is None else 'labels-idx1'}-ubyte[.gz]"
        raise FileNotFoundError(f"load_mnist: {folder} has {(images_path or labels_path).name} but no {missing}")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dim() != 3 or images.dtype != torch.uint8 or min(images.shape[1:]) < 1:
        raise ValueError(
            f"load_mnist: {images_path}: expected uint8 images [N, H, W] with H, W >= 1, got {images.dtype} {list(images.shape)}"
        )
    if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"load_mnist: {labels_path}: expected {images.shape[0]} labels (one per image in "
            f"{images_path.name}), got shape {list(labels.shape)}"
        )
    return ImageTensors(images.unsqueeze(1), labels.long())


def load_mnist(folder: PathLike, *, val_fraction: float = 0.1, seed: int = 0) -> DataSplit:
    """MNIST or Fashion-MNIST from a folder of IDX files.

    The training pair ``train-images-idx3-ubyte[.gz]`` / ``train-labels-idx1-ubyte[.gz]`` is
    required; the ``t10k-*`` pair, when present, is the held-out set, otherwise
    ``val_fraction`` of the training images is held out (stratified, by ``seed``).

    Raises:
        FileNotFoundError: the folder or the training pair is missing.
        ValueError: a corrupt file, images and labels that do not match, or ``folder`` is a file.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(
            f"load_mnist: {folder} is a file; expected the folder that holds train-images-idx3-ubyte[.gz] and "
            f"train-labels-idx1-ubyte[.gz] (mnist:{folder.parent})"
        )
    if not folder.is_dir():
        raise FileNotFoundError(f"load_mnist: no such folder {folder}")
    train = _pair(folder, "train")
    if train is None:
        raise FileNotFoundError(f"load_mnist: {folder} has no train-images-idx3-ubyte[.gz] / train-labels-idx1-ubyte[.gz]")
    test = _pair(folder, "t10k")
    num_classes = int(max(train.labels.max(), test.labels.max() if test is not None else 0)) + 1
    return make_split(train, [str(c) for c in range(num_classes)], f"IDX files in {folder}", val_fraction, seed, val=test)
