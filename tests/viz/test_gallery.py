"""The gallery `convolab demo` writes: a handful of GIFs and one HTML page, each with its frames."""

from __future__ import annotations

from PIL import Image

from convolab.viz import write_gallery
from convolab.viz.gallery import GALLERY


def test_gallery(tmp_path):
    paths = write_gallery(tmp_path / "out")
    gifs = [p for p in paths if p.suffix == ".gif"]
    assert [p.stem for p in gifs] == [stem for stem, _ in GALLERY]
    frames = {p.stem: Image.open(p).n_frames for p in gifs}
    assert frames["conv2d_stride2_pad1"] == 9 and frames["conv_transpose2d"] == 16 and frames["checkerboard"] == 9
    page = paths[-1].read_text()
    assert paths[-1].name == "index.html"
    assert page.count('<section class="anim"') == len(GALLERY)
    assert page.count('class="frame"') == sum(frames.values())
