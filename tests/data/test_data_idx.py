"""IDX files: round trips (raw and gzip), header/size validation, MNIST folders."""

import gzip

import pytest
import torch

from convolab.data import load_dataset, load_mnist, read_idx, write_idx


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.float32, torch.float64])
def test_round_trip(tmp_path, suffix, dtype):
    t = (torch.arange(2 * 3 * 5) - 7).to(dtype).view(2, 3, 5)
    path = tmp_path / f"x-idx3-ubyte{suffix}"
    write_idx(path, t)
    got = read_idx(path)
    assert got.dtype == dtype and torch.equal(got, t)


def test_header_bytes_are_the_mnist_format(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, torch.tensor([7, 2, 1], dtype=torch.uint8))
    # magic 0x00000801 (unsigned byte, rank 1), count 3 big-endian, then the labels
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])


def test_gzip_is_detected_by_content_not_name(tmp_path):
    path = tmp_path / "plain-name"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 2, 4, 5])))
    assert read_idx(path).tolist() == [4, 5]


def test_truncated_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, torch.zeros(4, 28, 28, dtype=torch.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: size 3052 bytes does not match its header .*truncated"):
        read_idx(path)


def test_extra_data_is_refused(tmp_path):
    path = tmp_path / "x.idx"
    write_idx(path, torch.zeros(3, dtype=torch.uint8))
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="followed by extra data"):
        read_idx(path)


def test_truncated_gzip_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, torch.arange(200, dtype=torch.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"x.gz: corrupt or truncated gzip"):
        read_idx(path)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x00", "is not an IDX file"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x00", "unknown IDX type byte 0x07"),
        (b"\x00\x00\x08\x00", "rank byte must be >= 1"),
        (b"\x00\x00\x08\x03\x00\x00", r"truncated header \(6 bytes, rank 3 needs 16\)"),
        (b"\x00\x00", "is not an IDX file"),
    ],
)
def test_corrupt_headers(tmp_path, data, match):
    path = tmp_path / "bad"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=match):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_idx(tmp_path / "nope")


def test_write_refuses_types_idx_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="IDX cannot store dtype int64"):
        write_idx(tmp_path / "x", torch.zeros(2, dtype=torch.int64))


def _mnist_folder(folder, n_train=40, n_test=20, gz=True, sep="-"):
    folder.mkdir(exist_ok=True)
    g = torch.Generator().manual_seed(0)
    s = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        if n:
            write_idx(folder / f"{prefix}-images{sep}idx3-ubyte{s}", torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8))
            write_idx(folder / f"{prefix}-labels{sep}idx1-ubyte{s}", (torch.arange(n) % 10).to(torch.uint8))
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_folder_uses_t10k_as_held_out(tmp_path, gz):
    split = load_mnist(_mnist_folder(tmp_path / "m", gz=gz))
    assert len(split.train) == 40 and len(split.val) == 20
    assert split.channels == 1 and split.size == (28, 28) and split.num_classes == 10
    x, y = split.train[3]
    assert x.shape == (1, 28, 28) and 0 <= x.min() and x.max() <= 1 and y == 3


def test_mnist_folder_without_test_set_is_split_by_seed(tmp_path):
    folder = _mnist_folder(tmp_path / "m", n_train=50, n_test=0, sep=".")
    a, b = load_mnist(folder, val_fraction=0.2, seed=1), load_mnist(folder, val_fraction=0.2, seed=1)
    assert len(a.train) == 40 and len(a.val) == 10
    assert torch.equal(a.val.images, b.val.images)
    assert sorted(a.val.labels.tolist()) == list(range(10))  # stratified: one per class


def test_mnist_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_mnist(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no train-images-idx3-ubyte"):
        load_mnist(tmp_path / "empty")
    folder = _mnist_folder(tmp_path / "m")
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="has train-images-idx3-ubyte.gz but no train-labels-idx1-ubyte"):
        load_mnist(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", torch.zeros(39, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"expected 40 labels \(one per image in train-images-idx3-ubyte.gz\), got shape \[39\]"):
        load_mnist(folder)


def test_load_dataset_spec(tmp_path):
    folder = _mnist_folder(tmp_path / "m")
    split = load_dataset(f"mnist:{folder}", limit=20)
    assert len(split.train) == 20 and len(split.val) == 20
    with pytest.raises(ValueError, match="dataset kind must be one of 'digits', 'mnist', 'folder', got 'mnst'; did you mean 'mnist'"):
        load_dataset(f"mnst:{folder}")
    with pytest.raises(ValueError, match="expected 'mnist:PATH'"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="limit must be an int >= 1, got 0"):
        load_dataset(f"mnist:{folder}", limit=0)
