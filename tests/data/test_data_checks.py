"""Bad data is named before training: images checked when a folder is loaded, IDX headers
checked against the file before reading, exact --limit counts, a file given for a folder."""

import gzip
import struct
import zlib

import pytest
import torch

from convolab.data import ImageFolder, load_dataset, load_folder, load_mnist, read_idx, stratified_subset, write_idx


def _folder(root, per_class=3, fmt="png"):
    from PIL import Image

    for c, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            # noise: the image data is most of the file, so cutting it in half cuts the pixels
            Image.effect_noise((32, 32), 40 + 10 * c + i).save(root / name / f"{i}.{fmt}")
    return root


def _png_claiming(width, height):
    """A valid PNG header (IHDR with its CRC) claiming width x height pixels, and a few bytes of data."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["png", "jpg", "bmp", "gif"])
def test_truncated_images_are_named_when_the_folder_is_loaded(tmp_path, fmt):
    root = _folder(tmp_path / "imgs", fmt=fmt)
    bad = root / "b" / f"1.{fmt}"
    bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2])
    with pytest.raises(ValueError, match=rf"ImageFolder: image .*b/1\.{fmt} is truncated or corrupt"):
        load_folder(root)


def test_a_flipped_bit_in_a_png_is_found_by_its_checksum(tmp_path):
    root = _folder(tmp_path / "imgs")
    bad = root / "a" / "2.png"
    data = bytearray(bad.read_bytes())
    data[-20] ^= 0x01  # inside the image data chunk
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"image .*a/2\.png is truncated or corrupt"):
        ImageFolder(root)


def test_huge_images_are_refused_with_their_size_not_a_pillow_traceback(tmp_path):
    root = _folder(tmp_path / "imgs")
    (root / "a" / "huge.png").write_bytes(_png_claiming(30000, 30000))  # 900 Mpixels: Pillow's bomb error
    with pytest.raises(ValueError, match=r"image .*huge\.png is 900,000,000 pixels, above the limit of 89,478,485 pixels \(max_pixels"):
        load_folder(root)
    (root / "a" / "huge.png").write_bytes(_png_claiming(10000, 10000))  # 100 Mpixels: only Pillow's warning
    with pytest.raises(ValueError, match=r"image .*huge\.png is 10000x10000 \(100,000,000 pixels\), above the limit"):
        load_folder(root)
    (root / "a" / "huge.png").unlink()
    with pytest.raises(ValueError, match=r"image .*\.png is 32x32 \(1,024 pixels\), above the limit of 1,000 pixels"):
        load_folder(root, max_pixels=1000)
    with pytest.raises(ValueError, match=r"ImageFolder: max_pixels must be an int >= 1, got 0"):
        ImageFolder(root, max_pixels=0)


def test_a_file_where_a_folder_is_needed(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match=r"load_mnist: .*train-images-idx3-ubyte is a file; expected the folder that holds"):
        load_dataset(f"mnist:{tmp_path / 'train-images-idx3-ubyte'}")
    with pytest.raises(ValueError, match=r"ImageFolder: .*train-images-idx3-ubyte is a file; expected a folder"):
        load_dataset(f"folder:{tmp_path / 'train-images-idx3-ubyte'}")


def test_a_gzip_bomb_is_refused_after_reading_only_what_the_header_promises(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    header = bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big")
    # 10 labels promised, 200 MB of zeros behind them (about 200 kB compressed)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = compressor.compress(header + bytes(10))
    zeros = bytes(1 << 20)
    body += b"".join(compressor.compress(zeros) for _ in range(200)) + compressor.flush()
    path.write_bytes(body)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz: its decompressed data is longer than its header says"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_headers_that_overflow_or_do_not_match_name_the_file(tmp_path, gz):
    path = tmp_path / ("x-idx3-ubyte" + (".gz" if gz else ""))
    # 2**32 - 1 in every dim: 8e28 bytes (an int64 product would overflow)
    data = bytes([0, 0, 8, 3]) + b"\xff\xff\xff\xff" * 3 + bytes(100)
    path.write_bytes(gzip.compress(data) if gz else data)
    shape = r"shape \(4294967295, 4294967295, 4294967295\) of uint8 needs 79,228,162,458,924,105,385,300,197,391 bytes"
    message = (rf"its header is wrong or the file truncated: {shape}, more than .* bytes of gzip data can hold" if gz
               else rf"size 116 bytes does not match its header \({shape}\); the file is truncated")
    with pytest.raises(ValueError, match=rf"read_idx: .*x-idx3-ubyte(\.gz)?: {message}"):
        read_idx(path)
    # a plausible header whose payload is short inside a gzip file
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 2, 0, 0, 0, 4, 0, 0, 0, 4]) + bytes(10)))
    with pytest.raises(ValueError, match=r"size 22 bytes \(decompressed\) does not match its header .*needs 28 bytes.*truncated"):
        read_idx(path)


def test_mnist_images_with_an_empty_side_are_refused(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", torch.zeros(4, 0, 28, dtype=torch.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", torch.zeros(4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"expected uint8 images \[N, H, W\] with H, W >= 1, got torch.uint8 \[4, 0, 28\]"):
        load_mnist(tmp_path)


def test_limit_gives_exactly_that_many_images():
    split = load_dataset("digits", limit=128)
    assert (len(split.train), len(split.val)) == (128, 128)  # stratified rounding gave 130
    assert sorted(torch.bincount(split.train.labels).tolist()) == [12] * 2 + [13] * 8  # still stratified
    quick = load_dataset("digits", limit=256)
    assert (len(quick.train), len(quick.val)) == (256, 256)
    labels = torch.arange(101) % 7
    for n in (0, 1, 6, 7, 50, 100, 101, 500):
        keep = stratified_subset(labels, n, seed=3)
        assert len(keep) == min(n, 101) and len(set(keep.tolist())) == len(keep)
        assert torch.equal(keep, stratified_subset(labels, n, seed=3))
