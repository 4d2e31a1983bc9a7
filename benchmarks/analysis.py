"""Model analysis speed and memory: ``convolab.analysis.summary`` of ResNet-50 on meta tensors
at growing input sizes, next to a real forward pass of the same model.

    python -m benchmarks.analysis [--repeats 5] [--threads 2] [--sizes 224,1024,4096] [--forward 224,1024]

Bars (DESIGN.md): after a warm-up call, <= 0.3 s at 224x224 and <= 1 s at 4096x4096, flat in the
input size, peak memory < 500 MB (the analysis never allocates activations). Uses the registry's
``resnet50`` when registered, else the torchvision-layout build of tests/analysis/analysis_classic_nets.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import torch

from convolab._bench import interleaved, print_table
from convolab.analysis import summary


def resnet50() -> tuple[torch.nn.Module, str]:
    from convolab.models import create_model, list_models

    if "resnet50" in list_models():
        return create_model("resnet50"), "convolab.models resnet50"
    path = Path(__file__).resolve().parent.parent / "tests" / "analysis" / "analysis_classic_nets.py"
    spec = importlib.util.spec_from_file_location("analysis_classic_nets", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.resnet50(), "torch.nn ResNet-50 (tests/analysis/analysis_classic_nets.py)"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# VmHWM (this process's peak RSS), not ru_maxrss: Linux carries ru_maxrss over fork + exec.
_FRESH = """
import sys, torch
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
sys.path.insert(0, {tests!r})
from analysis_classic_nets import resnet50
from convolab.analysis import summary
with torch.device("meta"):
    model = resnet50()
summary(model, (1, 3, 224, 224))
base = hwm()
summary(model, (1, 3, {size}, {size}))
print(base, hwm())
"""


def fresh_process_peak(size: int) -> tuple[float, float]:
    """Peak RSS (MB) of a fresh process after a warm-up summary, and after one at ``size``."""
    tests = str(Path(__file__).resolve().parent.parent / "tests" / "analysis")
    out = subprocess.run([sys.executable, "-c", _FRESH.format(tests=tests, size=size)],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="224,1024,4096", help="input sizes analysed")
    parser.add_argument("--forward", default="224,1024", help="input sizes of the real forward pass")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, source = resnet50()
    model.eval()

    t = time.perf_counter()
    summary(model, (1, 3, 224, 224))
    first = time.perf_counter() - t

    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        shape = (1, 3, size, size)
        rss_before = _rss_mb()
        tracemalloc.start()
        summary(model, shape)
        _, py_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_growth = _rss_mb() - rss_before
        seconds = interleaved({"summary": lambda: summary(model, shape)}, repeats=args.repeats, warmup=1, min_time=0)
        rows.append((f"summary 1x3x{size}x{size}", f"{seconds['summary']:.3f}", f"{py_peak / 2**20:.1f}",
                     f"{rss_growth:.0f}", "meta: no activations"))
    for size in (int(s) for s in args.forward.split(",") if s):
        x = torch.randn(1, 3, size, size)
        rss_before = _rss_mb()

        def forward() -> None:
            with torch.no_grad():
                model(x)

        seconds = interleaved({"forward": forward}, repeats=max(3, args.repeats // 2), warmup=1, min_time=0)
        rows.append((f"real forward 1x3x{size}x{size}", f"{seconds['forward']:.3f}", "—",
                     f"{_rss_mb() - rss_before:.0f}", "anchor: torch eval forward"))
    base, peak = fresh_process_peak(max(int(v) for v in args.sizes.split(",")))
    print_table(
        f"Model analysis vs a real forward pass: {source}, {args.threads} threads",
        ["case", "median s", "Python heap peak MB", "max RSS growth MB", "note"],
        rows,
        note=(f"First (cold) summary call: {first:.2f} s (torch imports torch._dynamo on the first "
              f"dispatch-mode call). Fresh process, ResNet-50 built on meta: peak RSS {base:.0f} MB after "
              f"a 224 summary (torch itself), {peak:.0f} MB after a {args.sizes.split(',')[-1]} one. "
              f"This process: max RSS {_rss_mb():.0f} MB (with the model's real weights). Median of "
              f"interleaved repeats; the machine is shared with other jobs, so absolute times are noisy."),
    )


if __name__ == "__main__":
    main()
