"""One SGD training step of a convolab network (``algorithm="auto"``) against the same network
built from plain torch.nn modules with the same weights, and inference rows.

    python -m benchmarks.train_step                        # batch 8, 224x224, every model
    python -m benchmarks.train_step --quick                # 128x128, fewer repeats
    python -m benchmarks.train_step --models mobilenet_v2 --runs 5 --repeats 7 --no-profile

The twin is a deep copy of the convolab model whose every convolab conv, transposed conv and
pooling module is swapped for the torch.nn class it subclasses, rebuilt from its attributes
with the same weights (modules torch cannot express, e.g. per-side padding or ``flip=True``,
are kept and listed). A training step is ``zero_grad``, forward, cross-entropy against fixed
labels, backward, ``SGD(momentum=0.9).step()``; an inference step is a forward under
``torch.no_grad()`` in eval mode.

Each run interleaves the two networks step by step and takes the median of ``--repeats``
steps each; the ratio is torch's time / convolab's (> 1: convolab faster). ``--runs`` runs
give min / median / max of the ratio, with the load average before and after each run. The
per-layer-type breakdown comes from torch.profiler on one step of each network: every op is
attributed to the leaf module whose forward ran it, and each backward node to the module
whose forward created it (autograd's sequence numbers link the two), so the backward of
convolab's own algorithms counts as the conv it computes.

Bars (issue 17 section 3): mobilenet_v2 >= 1.1x, convnext_tiny >= 1.3x, the large-kernel
network (replknet_tiny) >= 4x, resnet50 >= 0.97x; inference never below 0.97x.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from convolab._bench import interleaved, print_table
from convolab.models import create_model

DEFAULT = "mobilenet_v2,convnext_tiny,replknet_tiny,resnet50"
BARS = {"mobilenet_v2": 1.1, "convnext_tiny": 1.3, "replknet_tiny": 4.0, "resnet50": 0.97}

# the torch.nn classes convolab's modules subclass; each convolab module becomes the first of
# these in its class's method resolution order
_TORCH_CLASSES = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.LPPool1d, nn.LPPool2d, nn.LPPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
)  # fmt: skip


def _as_torch(module: nn.Module, base: type) -> nn.Module:
    """``module`` rebuilt as ``base`` from its attributes, with its state (raises when torch's
    constructor refuses an attribute or the module has options torch lacks)."""
    if getattr(module, "flip", False):
        raise ValueError("flip=True has no torch.nn form")
    kwargs = {}
    for name in list(inspect.signature(base.__init__).parameters)[1:]:
        if name in ("device", "dtype"):
            continue
        if name == "bias":
            kwargs["bias"] = module.bias is not None
        elif hasattr(module, name):
            kwargs[name] = getattr(module, name)
    new = base(**kwargs)
    new.load_state_dict(module.state_dict())
    return new.train(module.training)


def torch_twin(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """A deep copy of ``model`` with torch.nn modules in place of convolab's (same weights), and
    the names of the convolab modules kept because torch has no form for them."""
    twin = copy.deepcopy(model)
    kept = []
    for parent_name, parent in list(twin.named_modules()):
        for name, child in list(parent.named_children()):
            base = next((c for c in type(child).__mro__ if c in _TORCH_CLASSES), None)
            if base is None or type(child) is base:
                continue
            try:
                setattr(parent, name, _as_torch(child, base))
            except (TypeError, ValueError) as e:
                kept.append(f"{parent_name}.{name} ({type(child).__name__}: {e})")
    return twin, kept


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def _steps(model: nn.Module, x: torch.Tensor, train: bool) -> Callable[[], None]:
    if not train:
        model.eval()

        def infer() -> None:
            with torch.no_grad():
                model(x)

        return infer
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    with torch.no_grad():
        classes = model(x[:1]).shape[-1]
    labels = torch.arange(x.shape[0]) % classes

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), labels).backward()
        with torch.autograd.profiler.record_function("optimizer"):
            optimizer.step()

    return step


def _kind(module: nn.Module) -> str:
    """The layer type a leaf module's time is booked to."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        k = "x".join(str(v) for v in module.kernel_size)
        if module.groups == module.in_channels and module.groups > 1:
            return f"conv depthwise {k}"
        return "conv 1x1" if all(v == 1 for v in module.kernel_size) else f"conv dense {k}"
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return "conv transposed"
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)):
        return "norm"
    if isinstance(module, (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Sigmoid, nn.Hardtanh)):
        return "activation"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, _TORCH_CLASSES[6:]):
        return "pooling"
    return "other layers"


def breakdown(model: nn.Module, step: Callable[[], None]) -> dict[str, float]:
    """Milliseconds per layer type of one profiled ``step`` (forward and backward together),
    plus "optimizer" and "unattributed" (the rest of the step's wall time)."""
    from torch.profiler import profile

    leaves = [m for m in model.modules() if not list(m.children())]
    stack: list[torch.autograd.profiler.record_function] = []

    def enter(module: nn.Module, args: object) -> None:
        stack.append(torch.autograd.profiler.record_function(f"layer:{_kind(module)}"))
        stack[-1].__enter__()

    def leave(module: nn.Module, args: object, out: object) -> None:
        stack.pop().__exit__(None, None, None)

    handles = [h for m in leaves for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    try:
        step()  # warm-up with the hooks
        start = time.perf_counter()
        with profile() as prof:
            step()
        wall = (time.perf_counter() - start) * 1e3
    finally:
        for h in handles:
            h.remove()
    events = list(prof.events())

    def label(e) -> str:  # type: ignore[no-untyped-def]
        while e is not None:
            if e.name.startswith("layer:"):
                return e.name[6:]
            if e.name == "optimizer":
                return "optimizer"
            e = e.cpu_parent
        return ""

    seq_kind = {}
    times: dict[str, float] = defaultdict(float)
    for e in events:
        if e.name.startswith("layer:") and not label(e.cpu_parent):
            times[e.name[6:]] += e.cpu_time_total / 1e3
        elif e.name == "optimizer":
            times["optimizer"] += e.cpu_time_total / 1e3
        if e.sequence_nr >= 0 and not e.name.startswith("autograd::") and label(e):
            seq_kind.setdefault(e.sequence_nr, label(e))
    nodes = {id(e) for e in events if e.name.startswith("autograd::engine::evaluate_function")}
    for e in events:
        if id(e) not in nodes:
            continue
        parent, nested = e.cpu_parent, False
        while parent is not None:  # a node run inside another's backward counts with that one
            nested |= id(parent) in nodes
            parent = parent.cpu_parent
        if not nested:
            times[seq_kind.get(e.sequence_nr, "other (backward)")] += e.cpu_time_total / 1e3
    times["unattributed"] = max(0.0, wall - sum(times.values()))
    return dict(times)


def measure(name: str, batch: int, size: int, runs: int, repeats: int, profile: bool):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    ours = create_model(name)
    twin, kept = torch_twin(ours)
    size = max(size, getattr(ours, "min_input_size", (size,))[0])
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():  # the twin computes the same function
        diff = (ours.eval()(x) - twin.eval()(x)).abs().max().item()
    rows, profiles = [], {}
    for mode in ("train", "infer"):
        train = mode == "train"
        fns = {"torch": _steps(twin, x, train), "convolab": _steps(ours, x, train)}
        ratios, times = [], []
        for _ in range(runs):
            before = _load()
            t = interleaved(fns, repeats=repeats, warmup=1, min_time=0.0)
            ratios.append(t["torch"] / t["convolab"])
            times.append((t["torch"], t["convolab"], f"{before}->{_load()}"))
        mid = statistics.median(ratios)
        bar = BARS.get(name, 0.97) if train else 0.97
        torch_ms = statistics.median(tt for tt, _, _ in times) * 1e3
        ours_ms = statistics.median(tc for _, tc, _ in times) * 1e3
        rows.append([
            name, mode, f"{batch}x{size}²", f"{torch_ms:.0f}", f"{ours_ms:.0f}",
            f"{min(ratios):.2f}", f"{mid:.2f}", f"{max(ratios):.2f}", f"{bar:.2f}",
            "yes" if mid >= bar else "NO", " ".join(load for _, _, load in times),
        ])
        print(" | ".join(rows[-1]), flush=True)
        if profile and train:
            profiles[name] = (breakdown(twin, fns["torch"]), breakdown(ours, fns["convolab"]))
    return rows, profiles, kept, diff


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT, help="comma-separated registry names")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224, help="input height = width")
    parser.add_argument("--quick", action="store_true", help="128x128 input, 2 runs of 3 repeats")
    parser.add_argument("--runs", type=int, default=3, help="runs (min / median / max of their ratios)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved steps per network per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-profile", action="store_true", help="skip the per-layer-type breakdown")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.runs, args.repeats = 128, 2, 3
    torch.set_num_threads(args.threads)
    rows, profiles = [], {}
    for name in args.models.split(","):
        r, p, kept, diff = measure(name, args.batch, args.size, args.runs, args.repeats, not args.no_profile)
        rows += r
        profiles.update(p)
        if kept:
            print(f"{name}: kept as convolab modules in the twin: {'; '.join(kept)}")
        print(f"{name}: max |convolab - twin| in eval = {diff:.2e}")
    print_table(
        f"one SGD step / inference: convolab auto vs torch.nn twin ({args.threads} threads; ratio = torch / convolab)",
        ["model", "mode", "input", "torch ms", "convolab ms", "min", "median", "max", "bar", "met", "load 1m/5m"],
        rows,
        note="ms: medians over runs of each run's interleaved median; load: os.getloadavg() before -> after each run.",
        width=220,
    )
    for name, (theirs, ours) in profiles.items():
        kinds = sorted(set(theirs) | set(ours), key=lambda k: -max(theirs.get(k, 0), ours.get(k, 0)))
        print_table(
            f"{name}: one training step by layer type (torch.profiler, ms; forward + backward)",
            ["layer type", "torch", "convolab", "torch / convolab"],
            [[k, f"{theirs.get(k, 0):.1f}", f"{ours.get(k, 0):.1f}",
              f"{theirs.get(k, 0) / ours[k]:.2f}" if ours.get(k, 0) > 0.05 else "-"] for k in kinds],
            width=120,
        )


if __name__ == "__main__":
    main()
