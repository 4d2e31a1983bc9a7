"""Malformed command lines, run in-process through ``convolab.cli.main``.

Clear: exit status 2 with one ``error:`` line naming the option (argparse's or convolab's).
Unclear: a traceback or any exception escaping ``main``. Silent: exit status 0 for a line
that cannot be right. Every line also bounds the work it could start (``--limit``,
``--epochs 1``), so a missing check costs seconds, not a training run.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from .core import Case, Outcome

TRAIN = ["train", "seed_cnn", "--epochs", "1", "--limit", "32", "--threads", "1"]


def lines(tmp: str) -> list[list[str]]:
    """Each malformed command line (``tmp``: a scratch folder)."""
    out = [
        # the ops' arguments as the animations take them
        ["animate", "conv2d", "-o", f"{tmp}/a.gif", "--kernel", "0"],
        ["animate", "conv2d", "-o", f"{tmp}/a.gif", "--kernel", "9", "--input", "5"],
        ["animate", "conv2d", "-o", f"{tmp}/a.gif", "--stride", "-1"],
        ["animate", "conv2d", "-o", f"{tmp}/a.gif", "--padding", "foo"],
        ["animate", "conv2d", "-o", f"{tmp}/a.gif", "--padding", "9"],
        ["animate", "conv2d", "-o", f"{tmp}/a.gif", "--dilation", "0"],
        ["animate", "conv2d", "-o", f"{tmp}/a.gif", "--input", "0x5"],
        ["animate", "conv2d", "-o", f"{tmp}/a.gif", "--input", "axb"],
        ["animate", "conv2d", "-o", f"{tmp}/a.gif", "--input", "100000x100000"],
        ["animate", "conv_transpose2d", "-o", f"{tmp}/a.gif", "--output-padding", "5"],
        ["animate", "grouped", "-o", f"{tmp}/a.gif", "--groups", "0"],
        ["animate", "grouped", "-o", f"{tmp}/a.gif", "--groups", "3", "--in-channels", "4"],
        ["animate", "channel_shuffle", "-o", f"{tmp}/a.gif", "--channels", "6", "--groups", "4"],
        ["animate", "max_pool2d", "-o", f"{tmp}/a.gif", "--kernel", "2", "--padding", "2"],
        ["animate", "avg_pool2d", "-o", f"{tmp}/a.gif", "--kernel", "-2"],
        ["animate", "spp", "-o", f"{tmp}/a.gif", "--levels", "0,2"],
        ["animate", "spp", "-o", f"{tmp}/a.gif", "--levels", "a,b"],
        ["animate", "spp", "-o", f"{tmp}/a.gif", "--mode", "mean"],
        ["animate", "roi_align", "-o", f"{tmp}/a.gif", "--box", "3,3,1,1"],
        ["animate", "roi_align", "-o", f"{tmp}/a.gif", "--scale", "inf"],
        ["animate", "roi_pool", "-o", f"{tmp}/a.gif", "--output-size", "0"],
        ["animate", "deform_conv2d", "-o", f"{tmp}/a.gif", "--max-offset", "nan"],
        ["animate", "conv9d", "-o", f"{tmp}/a.gif"],
        ["animate", "conv2d", "-o", f"{tmp}/no/such/folder/a.gif"],
        ["animate", "conv2d", "-o", f"{tmp}/a.txt"],
        ["animate", "conv2d", "-o", f"{tmp}/a.gif", "--duration", "-1"],
        # explain
        ["explain", "conv", "--input", "5x5x3", "--kernel", "9"],
        ["explain", "conv", "--input", "5x5", "--padding", "foo"],
        ["explain", "conv", "--input", "0x5x3"],
        ["explain", "conv", "--filters", "0"],
        ["explain", "conv", "--stride", "0"],
        ["explain", "receptive-field", "conv:k=0", "--input", "32"],
        ["explain", "receptive-field", "conv:k=3,z=1", "--input", "32"],
        ["explain", "receptive-field", "bogus:k=3", "--input", "32"],
        ["explain", "params", "conv:c=-1,k=3", "--input", "28x28x1"],
        ["explain", "params", "fc:n=0", "--input", "28x28x1"],
        ["explain", "nothing"],
        # summary
        ["summary", "resnet9000"],
        ["summary", "resnet18", "--input", "0x224x224"],
        ["summary", "resnet18", "--input", "3x224"],
        ["summary", "resnet18", "--input", "axbxc"],
        ["summary", "resnet18", "--batch", "-1"],
        ["summary", "resnet18", "--depth", "-2"],
        ["summary", "resnet18", "--width", "5"],
        ["summary", "resnet18", "--format", "xml"],
        ["summary", f"{tmp}/missing.py:model"],
        ["summary", "os:getcwd"],
        # train (bounded), ablate, demo, bench, models
        TRAIN[:1] + ["resnet9000"],
        TRAIN + ["--lr", "-1"],
        TRAIN + ["--lr", "nan"],
        TRAIN + ["--weight-decay", "nan"],
        TRAIN + ["--momentum", "1.5"],
        TRAIN + ["--batch-size", "0"],
        TRAIN + ["--seed", str(2**70)],
        TRAIN + ["--val-fraction", "0"],
        TRAIN + ["--val-fraction", "1"],
        TRAIN + ["--augment-shift", "100"],
        TRAIN + ["--optimizer", "adamw2"],
        TRAIN + ["--scheduler", "sometimes"],
        TRAIN + ["--image-size", "0"],
        TRAIN + ["--checkpoint-every", "0"],
        TRAIN + ["--workers", "-1"],
        TRAIN + ["--threads", "0"],
        TRAIN + ["--hard-mining", "2"],
        TRAIN + ["--epochs", "abc"],
        TRAIN + ["--data", "mnist:"],
        TRAIN + ["--data", f"mnist:{tmp}/missing"],
        TRAIN + ["--data", f"folder:{tmp}/missing"],
        TRAIN + ["--data", "cifar"],
        TRAIN + ["--out", tmp, "--resume"],
        ["ablate", "--swap", "foo", "--limit", "32", "--epochs", "1"],
        ["ablate", "--swap", "conv=bogus", "--limit", "32", "--epochs", "1"],
        ["ablate", "--seeds", "0", "--limit", "32", "--epochs", "1"],
        ["ablate", "--epochs", "0", "--limit", "32"],
        ["demo", "--epochs", "-1"],
        ["demo", "--threads", "0"],
        ["bench", "--repeats", "0"],
        ["bench", "--repeats", "-3"],
        ["nonsense"],
        ["--threads", "2"],
    ]
    return out


def classify_line(argv: list[str]) -> Outcome:
    """Run one command line and classify how it fails."""
    from convolab.cli import main

    # the ROI ops behind `animate roi_*` are the kernels engineer's part of issue 16
    owner = "kernels" if any(a.startswith("roi_") for a in argv) else "cli"
    case = Case("cli", " ".join(argv), ("convolab",), (), lambda: None, lambda: (None, None), owner=owner)
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(argv)
    except SystemExit as e:  # argparse's usage errors
        rc = e.code if isinstance(e.code, int) else 2
    except Exception as e:  # noqa: BLE001  (an exception escaping main is the finding)
        return Outcome(case, "unclear", f"{type(e).__name__}: {e}"[:300])
    text = err.getvalue().strip()
    if rc == 0:
        return Outcome(case, "silent", "exit status 0 for a malformed command line")
    if "Traceback" in text:
        return Outcome(case, "unclear", text.splitlines()[-1][:300])
    errors = [line for line in text.splitlines() if "error:" in line]
    if rc == 2 and len(errors) == 1:
        return Outcome(case, "clear", errors[0][:300])
    return Outcome(case, "unclear", f"exit {rc}: {text[-300:]}")


def cli_outcomes() -> list[Outcome]:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "missing.py").unlink(missing_ok=True)
        return [classify_line(argv) for argv in lines(tmp)]
