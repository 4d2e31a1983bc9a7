"""Produce the pictures and precomputed tables of docs/concepts.md (nothing there is hand-made).

    python docs/make_images.py            # everything (the ablations train: ~10 min on 2 busy cores)
    python docs/make_images.py --no-train # only the pictures that need no training

The ablation runs are kept in ``build/docs-ablation/`` (resumable: a re-run trains only what
is missing, e.g. a variant that was added since); their tables and plots are copied to
``docs/images/``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

DOCS = Path(__file__).resolve().parent
IMAGES = DOCS / "images"
RUNS = DOCS.parent / "build" / "docs-ablation"

# The ablation settings shown in the guide: everything but the swapped component is fixed.
ABLATION = dict(base="mnist_cnn", data="digits", epochs=3, seeds=(0, 1, 2))
OTHER_AXES = ["norm=conv-bn-act,conv-act-bn,none", "bottleneck=on", "head=max,avg,spp", "downsample=avgpool,strided_conv"]


def ablations() -> None:
    from convolab.ablation import ablate, axes

    studies = {
        "ablation_conv": "conv=" + ",".join(axes()["conv"]),  # every conv variant of this build
        "ablation_axes": OTHER_AXES,
    }
    for name, swaps in studies.items():
        out = RUNS / name
        table = ablate(ABLATION["base"], swaps, out=out, data=ABLATION["data"], epochs=ABLATION["epochs"],
                       seeds=ABLATION["seeds"], progress=True)
        print(table)
        shutil.copy(out / "table.json", IMAGES / f"{name}.json")
        shutil.copy(out / "accuracy_vs_macs.png", IMAGES / f"{name}.png")


# The guide's animations, drawn by `convolab animate` (every value is the op's real output).
ANIMATIONS = {
    "anim_conv2d": ["conv2d", "--input", "5", "--kernel", "3", "--stride", "2", "--padding", "1"],
    "anim_conv_transpose2d": ["conv_transpose2d", "--input", "2", "--kernel", "3"],
    "anim_dilated": ["dilated", "--input", "7", "--kernel", "3", "--dilation", "2"],
    "anim_deform_conv2d": ["deform_conv2d", "--input", "5", "--kernel", "3"],
    "anim_depthwise_separable": ["depthwise_separable"],
    "anim_channel_shuffle": ["channel_shuffle", "--channels", "6", "--groups", "2"],
    "anim_max_pool2d": ["max_pool2d", "--input", "4", "--kernel", "2", "--stride", "2"],
    "anim_roi_align": ["roi_align", "--box", "1.2,0.7,6.1,5.4", "--output-size", "2"],
    "anim_spp": ["spp", "--input", "7", "--levels", "1,2,4"],
}


def animations() -> None:
    from convolab.cli import main as convolab

    for name, args in ANIMATIONS.items():
        if convolab(["animate", *args, "-o", str(IMAGES / f"{name}.gif")]) != 0:
            raise SystemExit(f"convolab animate {' '.join(args)} failed")


def checkerboard() -> None:
    """Transposed conv, stride 2, kernel 3: uneven overlap (the checkerboard) vs kernel 4."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from convolab.functional import conv_transpose2d

    fig, axs = plt.subplots(1, 2, figsize=(7, 3.4), dpi=110)
    for ax, k in zip(axs, (3, 4)):
        y = conv_transpose2d(torch.ones(1, 1, 6, 6), torch.ones(1, 1, k, k), stride=2, padding=(k - 2 + 1) // 2)
        im = ax.imshow(y[0, 0], cmap="viridis", vmin=0)
        ax.set_title(f"kernel {k}x{k}, stride 2: {y.shape[-1]}x{y.shape[-1]}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046, label="taps landing on the pixel")
    fig.suptitle("Transposed convolution of an all-ones 6x6 map with an all-ones kernel", fontsize=10)
    fig.tight_layout()
    fig.savefig(IMAGES / "checkerboard.png")
    plt.close(fig)


def effective_rf() -> None:
    """The empirical effective receptive field of mnist_cnn's last feature map, in its theoretical field."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from convolab.analysis import effective_receptive_field, receptive_field
    from convolab.models import create_model

    torch.manual_seed(0)
    model = create_model("mnist_cnn").eval()
    erf = effective_receptive_field(model, torch.randn(16, 1, 28, 28), "layer4")
    fields = receptive_field(model, (1, 1, 28, 28), "layer4")
    (r0, r1), (c0, c1) = (rf.slice(2).bounds for rf in fields)  # the centre unit of the 5x5 map
    fig, ax = plt.subplots(figsize=(3.8, 3.4), dpi=110, layout="constrained")
    im = ax.imshow(erf.numpy(), cmap="magma")
    ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False, edgecolor="#00e5ff",
                           linewidth=1.5, linestyle="--"))
    ax.set_title(f"mnist_cnn (untrained), centre unit of layer4:\n|d unit / d input| over 16 random inputs;\n"
                 f"dashed: its theoretical field, {fields[0].size:g}x{fields[1].size:g}", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the gradient")
    fig.savefig(IMAGES / "erf_mnist_cnn.png", bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-train", action="store_true", help="skip the ablations")
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    animations()
    checkerboard()
    effective_rf()
    if not args.no_train:
        ablations()


if __name__ == "__main__":
    main()
