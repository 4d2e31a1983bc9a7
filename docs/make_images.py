"""Produce the pictures and precomputed tables of docs/concepts.md (nothing there is hand-made).

    python docs/make_images.py            # everything (the studies train: ~30 min on 2 busy cores)
    python docs/make_images.py --no-train # only the pictures that need no training
    python docs/make_images.py --only mining   # one training study: ablations, sizes, mining or units

The ablation runs are kept in ``build/docs-ablation/`` (resumable: a re-run trains only what
is missing, e.g. a variant that was added since); their tables and plots are copied to
``docs/images/``.
"""

from __future__ import annotations

import argparse
import os
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
    "anim_roi_spp": ["roi_spp", "--input", "8", "--box", "1,1,6,5", "--levels", "1,2"],
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


# Multi-size training: mnist_spp trained at 28 only vs at 28, 20 and 36 in turn (the size switching
# every batch), every run measured at sizes from 16 to 40.
SIZES_STUDY = dict(base="mnist_spp", swaps="train_sizes=28,28+20+36", epochs=3, seeds=(0, 1, 2),
                   eval_sizes=(16, 20, 24, 28, 32, 36, 40), lr=0.02)


def size_study() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from convolab.ablation import ablate
    from convolab.train import TrainConfig

    s = SIZES_STUDY
    out = RUNS / "ablation_sizes"
    table = ablate(s["base"], s["swaps"], out=out, epochs=s["epochs"], seeds=s["seeds"], eval_sizes=s["eval_sizes"],
                   config=TrainConfig(size_schedule="batch", lr=s["lr"]), plot=False, progress=True, resume=out.is_dir())
    print(table)
    shutil.copy(out / "table.json", IMAGES / "ablation_sizes.json")
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110, layout="constrained")
    for row in table.rows:
        sizes = sorted(row.size_accuracies)
        means = [100 * sum(row.size_accuracies[k]) / len(row.size_accuracies[k]) for k in sizes]
        spread = [100 * (max(row.size_accuracies[k]) - min(row.size_accuracies[k])) / 2 for k in sizes]
        ax.errorbar(sizes, means, yerr=spread, marker="o", capsize=3, label=f"trained at {row.variant.replace('+', ', ')}")
    for k in (20, 28, 36):
        ax.axvline(k, color="0.85", lw=0.8, zorder=0)
    ax.set_xlabel("test image size (pixels per side; the digits are resized)")
    ax.set_ylabel("held-out accuracy (%)")
    runs = ", ".join(map(str, s["seeds"]))
    ax.set_title(f"mnist_spp, {s['epochs']} epochs, lr {s['lr']}, seeds {runs}: mean, bars = half the range",
                 fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.savefig(IMAGES / "ablation_sizes.png")
    plt.close(fig)


# Offline hard-example mining: 2 rounds of mining after the first training, the most confident
# mistakes (hard) against as many random pool images (the control), 5 seeds each.
MINING_STUDY = dict(model="mnist_cnn", epochs=2, mining_rounds=2, mining_pool=0.25, mining_per_round=100,
                    mining_weight=3)
MINING_SEEDS = (0, 1, 2, 3, 4)


def mining_study() -> None:
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from convolab.train import TrainConfig, fit

    runs = []
    for select in ("hard", "random"):
        for seed in MINING_SEEDS:
            out = RUNS / "mining" / f"{select}-seed{seed}"
            config = TrainConfig(**MINING_STUDY, mining_select=select, seed=seed)
            result = fit(config, out, resume=(out / "last.pt").is_file())
            runs.append({"select": select, "seed": seed, "rounds": result.rounds})
            print(select, seed, [round(r["val_accuracy"], 4) for r in result.rounds])
    (IMAGES / "mining_study.json").write_text(json.dumps({"settings": MINING_STUDY, "seeds": list(MINING_SEEDS),
                                                          "runs": runs}, indent=1) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=110, sharey=True, layout="constrained")
    for ax, select in zip(axes, ("hard", "random")):
        chosen = [r for r in runs if r["select"] == select]
        for k, (label, shift) in enumerate((("before (round 1)", -0.2), ("after (round 3)", 0.2))):
            index = 0 if k == 0 else -1
            errors = [[sum(row) - row[c] for c, row in enumerate(r["rounds"][index]["confusion"])] for r in chosen]
            mean = [sum(e[c] for e in errors) / len(errors) for c in range(10)]
            ax.bar([c + shift for c in range(10)], mean, width=0.4, label=label)
        ax.set_xticks(range(10))
        ax.set_xlabel("true digit")
        ax.set_title(f"{select} examples added", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel(f"held-out errors, mean of {len(MINING_SEEDS)} seeds")
    axes[0].legend(fontsize=8)
    fig.savefig(IMAGES / "mining_confusion.png")
    plt.close(fig)


def unit_pictures() -> None:
    """What the demo's trained network responds to: its top patches, layer 1 and layer 3."""
    from convolab.cli import main as convolab
    from convolab.commands.demo import DEMO_TRAINING
    from convolab.train import TrainConfig, fit

    out = RUNS / "demo" / "mnist_cnn"
    fit(TrainConfig(**DEMO_TRAINING), out, resume=(out / "last.pt").is_file())
    weights = os.path.relpath(out / "last.pt")  # the picture's title names it: no machine's own path
    for layer, name in (("layer1", "top_patches_layer1"), ("layer3", "top_patches_layer3")):
        if convolab(["explain", "top-patches", "--weights", weights, "--layer", layer, "--channels", "8",
                     "--top", "9", "-o", str(IMAGES / f"{name}.png")]) != 0:
            raise SystemExit(f"convolab explain top-patches --layer {layer} failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-train", action="store_true", help="skip the ablations")
    parser.add_argument("--only", choices=("ablations", "sizes", "mining", "units"),
                        help="only this training study (each resumes from build/docs-ablation/)")
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    studies = {"ablations": ablations, "sizes": size_study, "mining": mining_study, "units": unit_pictures}
    if args.only:
        studies[args.only]()
        return
    animations()
    checkerboard()
    effective_rf()
    if not args.no_train:
        for study in studies.values():
            study()


if __name__ == "__main__":
    main()
