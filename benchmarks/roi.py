"""roi_pool / roi_align side by side with the usual C++ CPU kernels (torchvision's), float32.

Run: ``python -m benchmarks.roi [--repeats 9] [--threads 2] [--anchor FILE]``.

Cases: 512 boxes on a [2, 256, 50, 68] feature map (a stride-16 map of an 800x1088 image),
7x7 bins, spatial_scale 1/16, and a detection-like 2,000 boxes on the same map; roi_align
with sampling_ratio 2. The anchor is ``torchvision.ops`` when it is installed, else the file
given by ``--anchor``: any Python file that defines ``roi_pool(input, rois, output_size,
spatial_scale)`` and ``roi_align(input, rois, output_size, spatial_scale, sampling_ratio,
aligned)`` with torchvision's semantics and autograd (for example the C++ kernels built out of
tree); without one, only convolab's two paths are timed. Every case runs the anchor,
convolab (its compiled kernel when available) and convolab's pure-PyTorch path
interleaved, round by round.

Columns: median ms; the speed ratio anchor / ours (> 1: convolab is faster) as min / median /
max over the rounds of wall time, and its median in process CPU time (all threads); GB/s of an
ideal kernel's traffic (each box's pixels read once per channel, the outputs written and, for
roi_pool, its int32 argmax; backward reads the output gradient (and the argmax) and writes the
input gradient) and that as % of this machine's copy bandwidth measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from types import ModuleType
from typing import Optional

import torch

from convolab._bench import measure_bandwidth_gbs, print_table
from convolab.functional import _native, roi_align, roi_pool

from ._spread import fmt_spread, interleaved_samples, load_average, median, ratio_spread

SCALE = 1 / 16
CASES = [(2, 256, 50, 68, 512), (2, 256, 50, 68, 2000)]


def make_boxes(k: int, batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Detection-like proposals in image pixels: centres uniform, sides log-uniform in [16, 512]."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(k, 2, generator=g) * torch.tensor([width, height])
    side = torch.exp(torch.empty(k, 2).uniform_(float(torch.log(torch.tensor(16.0))), float(torch.log(torch.tensor(512.0))), generator=g))
    lo = (centre - side / 2).clamp(min=0)
    hi = torch.minimum(centre + side / 2, torch.tensor([width, height]) - 1)
    idx = torch.randint(0, batch, (k, 1), generator=g).float()
    return torch.cat([idx, lo, torch.maximum(hi, lo)], 1)


def load_anchor(path: Optional[str]) -> tuple[Optional[ModuleType], str]:
    """torchvision.ops if installed, else the module at ``path``; (None, why) without either."""
    if importlib.util.find_spec("torchvision") is not None:
        return importlib.import_module("torchvision.ops"), "torchvision.ops (installed)"
    if path:
        spec = importlib.util.spec_from_file_location("roi_anchor", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module, f"C++ kernels from {path}"
    return None, "none (no torchvision, no --anchor): convolab's paths only"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--anchor", help="a Python file with torchvision-style roi_pool / roi_align (see the docstring)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    anchor, anchor_name = load_anchor(args.anchor)
    _native.library()  # a first build happens here, not inside a timing
    bandwidth = measure_bandwidth_gbs()
    rows = []
    for n, c, h, w, k in CASES:
        x = torch.randn(n, c, h, w, requires_grad=True)
        boxes = make_boxes(k, n, h * 16, w * 16)
        grad = torch.randn(k, c, 7, 7)
        px = ((boxes[:, 3] - boxes[:, 1]) * SCALE + 1) * ((boxes[:, 4] - boxes[:, 2]) * SCALE + 1)
        read = float(px.clamp(max=h * w).sum()) * c * 4
        outputs = k * c * 49
        ops = {
            "roi_pool": (lambda t, b, m=roi_pool: m(t, b, 7, SCALE), None if anchor is None else (lambda t, b: anchor.roi_pool(t, b, 7, SCALE)), 8),
            "roi_align": (lambda t, b, m=roi_align: m(t, b, 7, SCALE, 2), None if anchor is None else (lambda t, b: anchor.roi_align(t, b, 7, SCALE, 2)), 4),
        }
        for name, (ours, theirs, out_bytes) in ops.items():
            fwd_bytes = read + outputs * out_bytes
            bwd_bytes = outputs * out_bytes + n * c * h * w * 4
            impls = {"ours": ours, "torch path": ours}
            if theirs is not None:
                impls["C++"] = theirs
            fns = {}
            for impl, fn in impls.items():
                fns[(impl, "fwd")] = _forward(fn, x, boxes, impl == "torch path")
                fns[(impl, "fwd+bwd")] = _training(fn, x, boxes, grad, impl == "torch path")
            t = interleaved_samples({f"{a}|{b}": f for (a, b), f in fns.items()}, repeats=args.repeats)
            for kind, moved in (("fwd", fwd_bytes), ("fwd+bwd", fwd_bytes + bwd_bytes)):
                ours_t = t[f"ours|{kind}"]
                gbs = moved / median(ours_t) / 1e9
                row = [f"{name} {k} boxes [{n},{c},{h},{w}] 7x7" + (" sr=2" if name == "roi_align" else ""), kind,
                       f"{median(ours_t) * 1e3:.1f}", f"{median(t[f'torch path|{kind}']) * 1e3:.1f}"]
                if theirs is not None:
                    cpp = t[f"C++|{kind}"]
                    row += [f"{median(cpp) * 1e3:.1f}", fmt_spread(ratio_spread(cpp, ours_t)),
                            f"{median(cpp, 1) / median(ours_t, 1):.2f}"]
                else:
                    row += ["-", "-", "-"]
                rows.append((*row, f"{gbs:.1f}", f"{100 * gbs / bandwidth:.0f}%"))
    print_table(
        "ROI ops vs the usual C++ CPU kernels (ms; speed ratio = C++ / ours, > 1: convolab is faster)",
        ["case", "pass", "ours ms", "torch path ms", "C++ ms", "speed ratio min / med / max", "CPU-time ratio",
         "GB/s", "% copy bw"],
        rows,
        note=f"anchor: {anchor_name}; copy bandwidth {bandwidth:.1f} GB/s in this run; {args.threads} threads; "
             f"{load_average()}; {args.repeats} interleaved rounds; compiled kernels: {_native.status()}.",
    )


def _forward(fn, x, boxes, torch_path: bool):
    def run():
        with torch.no_grad(), _maybe_disabled(torch_path):
            fn(x, boxes)

    return run


def _training(fn, x, boxes, grad, torch_path: bool):
    def run():
        with _maybe_disabled(torch_path):
            fn(x, boxes).backward(grad)

    return run


def _maybe_disabled(torch_path: bool):
    import contextlib

    return _native.disabled() if torch_path else contextlib.nullcontext()


if __name__ == "__main__":
    main()
