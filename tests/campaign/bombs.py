"""Resource bombs: arguments whose output (or padded input, or working memory) would not fit in
memory, or whose sizes overflow torch's kernels. Each runs in its own process, under an
address-space limit (so a bomb that gets through cannot take the machine's memory from
others) and a time limit (a hang is unclear). The contract: a correct result, or convolab's
own error before any allocation.

Run one by hand: ``python -m tests.campaign.bombs NAME``; the campaign runs them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import torch

from .core import Case, Outcome, classify

GiB = 2**30
#: address space of a bomb's process: torch and convolab take about 0.7 GiB of it
ADDRESS_SPACE = 6 * GiB


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


def _conv(nd: int, size: int, k: int, **kw) -> Callable[[], torch.Tensor]:  # type: ignore[no-untyped-def]
    import convolab.functional as CF

    return lambda: getattr(CF, f"conv{nd}d")(_x(1, 1, *(size,) * nd), _x(1, 1, *(k,) * nd), **kw)


def _ct(nd: int, size: int, k: int, **kw) -> Callable[[], torch.Tensor]:  # type: ignore[no-untyped-def]
    import convolab.functional as CF

    return lambda: getattr(CF, f"conv_transpose{nd}d")(_x(1, 1, *(size,) * nd), _x(1, 1, *(k,) * nd), **kw)


def _bombs() -> dict[str, tuple[Callable[[], object], torch.Size, tuple[str, ...]]]:
    """name -> (run, the output shape the contract gives, op names)."""
    import convolab.functional as CF
    import convolab.nn as cnn

    S = torch.Size
    big = 10**6
    return {
        "conv1d padding=1e9": (_conv(1, 4, 3, padding=10**9), S([1, 1, 2 * 10**9 + 2]), ("conv1d",)),
        "conv2d padding=1e6": (_conv(2, 4, 3, padding=big), S([1, 1, 2 * big + 2, 2 * big + 2]), ("conv2d",)),
        "conv3d padding=1e4": (_conv(3, 4, 3, padding=10**4), S([1, 1] + [2 * 10**4 + 2] * 3), ("conv3d",)),
        "conv2d padding=2**31-1": (_conv(2, 4, 1, padding=2**31 - 1), S([1, 1] + [2**32 + 2] * 2), ("conv2d",)),
        "conv2d padding=2**40": (_conv(2, 4, 1, padding=2**40), S([0]), ("conv2d",)),
        "conv2d same dilation=1e9": (_conv(2, 4, 3, padding="same", dilation=10**9), S([1, 1, 4, 4]), ("conv2d",)),
        "conv2d reflect padding=1e6": (_conv(2, 4, 3, padding=big, padding_mode="reflect"), S([0]), ("conv2d",)),
        "conv2d circular padding=4": (_conv(2, 4, 3, padding=4, padding_mode="circular"), S([1, 1, 10, 10]), ("conv2d",)),
        "conv2d replicate padding=1e5": (_conv(2, 4, 3, padding=10**5, padding_mode="replicate"),
                                         S([1, 1, 2 * 10**5 + 2, 2 * 10**5 + 2]), ("conv2d",)),
        "conv2d stride=2**31-1": (_conv(2, 4, 3, stride=2**31 - 1), S([1, 1, 1, 1]), ("conv2d",)),
        "conv2d stride=1e12": (_conv(2, 4, 3, stride=10**12), S([0]), ("conv2d",)),
        "conv2d dilation=1e9": (_conv(2, 4, 3, dilation=10**9), S([0]), ("conv2d",)),
        "conv2d dilation=1e9 padding=1e9": (_conv(2, 4, 3, dilation=10**9, padding=10**9), S([1, 1, 4, 4]),
                                            ("conv2d",)),
        "conv2d padding=1e5 algorithm=fft": (_conv(2, 4, 3, padding=10**5, algorithm="fft"),
                                             S([1, 1, 2 * 10**5 + 2, 2 * 10**5 + 2]), ("conv2d",)),
        "conv_transpose1d stride=1e12": (_ct(1, 2, 3, stride=10**12), S([0]), ("conv_transpose1d",)),
        "conv_transpose1d stride=1e12 native": (_ct(1, 2, 3, stride=10**12, algorithm="native"), S([0]),
                                                ("conv_transpose1d",)),
        "conv_transpose1d stride=2**31-1": (_ct(1, 3, 3, stride=2**31 - 1), S([1, 1, 2 * (2**31 - 1) + 3]),
                                            ("conv_transpose1d",)),
        "conv_transpose2d stride=1e5": (_ct(2, 8, 3, stride=10**5), S([1, 1, 7 * 10**5 + 3, 7 * 10**5 + 3]),
                                        ("conv_transpose2d",)),
        "conv_transpose3d dilation=1e4": (_ct(3, 2, 2, dilation=10**4), S([1, 1] + [10**4 + 2] * 3),
                                          ("conv_transpose3d",)),
        "conv_transpose2d output_size=1e9": (
            lambda: CF.conv_transpose2d(_x(1, 1, 4, 4), _x(1, 1, 3, 3), stride=2, output_size=(10**9, 10**9)),
            S([0]), ("conv_transpose2d",)),
        "max_pool2d kernel=2**31-1 padding=2**30": (
            lambda: CF.max_pool2d(_x(1, 1, 4, 4), 2**31 - 1, 1, 2**30 - 1), S([1, 1, 4, 4]), ("max_pool2d",)),
        "max_pool1d pairs padding=2**30": (
            lambda: CF.max_pool1d(_x(1, 1, 4), 2**31 - 1, 1, ((2**30 - 1, 2**30 - 2),)), S([1, 1, 3]), ("max_pool1d",)),
        "avg_pool2d same kernel=1e5": (lambda: CF.avg_pool2d(_x(1, 1, 4, 4), 10**5, 1, "same"), S([1, 1, 4, 4]),
                                       ("avg_pool2d",)),
        "adaptive_avg_pool2d output=1e6": (lambda: CF.adaptive_avg_pool2d(_x(1, 1, 4, 4), big), S([1, 1, big, big]),
                                           ("adaptive_avg_pool2d",)),
        "adaptive_max_pool3d output=1e4 indices": (
            lambda: CF.adaptive_max_pool3d(_x(1, 1, 2, 2, 2), 10**4, True), S([1, 1] + [10**4] * 3),
            ("adaptive_max_pool3d",)),
        "AdaptiveMaxPool1d output=2**31-1": (lambda: cnn.AdaptiveMaxPool1d(2**31 - 1)(_x(1, 1, 4)),
                                             S([1, 1, 2**31 - 1]), ("AdaptiveMaxPool1d",)),
        "pool logsumexp window copy": (
            lambda: CF.pool(_x(1, 1, 1024, 1024), (512, 512), 1, "same", reduce=torch.logsumexp),
            S([1, 1, 1024, 1024]), ("pool",)),
        "spatial_pyramid_pool levels=1e5": (lambda: CF.spatial_pyramid_pool(_x(1, 2, 4, 4), (10**5,)),
                                            S([1, 2 * 10**10]), ("spatial_pyramid_pool",)),
        "channel_shuffle groups=2**40": (lambda: CF.channel_shuffle(_x(1, 4, 2), 2**40), S([0]), ("channel_shuffle",)),
        "depthwise_separable padding=1e6": (
            lambda: CF.depthwise_separable_conv(_x(1, 2, 4, 4), _x(2, 1, 3, 3), _x(3, 2, 1, 1), padding=big),
            S([1, 3, 2 * big + 2, 2 * big + 2]), ("depthwise_separable_conv",)),
        "Conv2d padding=1e6": (lambda: cnn.Conv2d(1, 1, 3, padding=big)(_x(1, 1, 4, 4)),
                               S([1, 1, 2 * big + 2, 2 * big + 2]), ("Conv2d",)),
    }


PARAMS = ("input", "kernel", "kernel_size", "stride", "padding", "dilation", "output_padding", "output_size",
          "levels", "groups", "output", "channels")


def names() -> list[str]:
    """Every bomb's name, in order."""
    return list(_bombs())


def run_one(name: str) -> dict:
    """Classify one bomb in this process; a shape of [0] marks arguments the contract refuses."""
    from .oracle import Invalid

    run, shape, ops = _bombs()[name]

    def expect():  # type: ignore[no-untyped-def]
        if list(shape) == [0]:
            raise Invalid("arguments beyond torch's kernels or the contract")
        return shape, torch.float32

    outcome = classify(Case("bomb", name, ops, PARAMS, run, expect), timeout=120)
    return {"kind": outcome.kind, "detail": outcome.detail, "refused": outcome.refused}


def _limit_address_space() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_isolated(name: str, timeout: float = 150.0) -> Outcome:
    """Run one bomb in a fresh process with the address-space and time limits."""
    case = Case("bomb", name, (), PARAMS, lambda: None, lambda: (None, None))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", "tests.campaign.bombs", name], capture_output=True, text=True,
                              timeout=timeout, preexec_fn=_limit_address_space, env=env)
    except subprocess.TimeoutExpired:
        return Outcome(case, "unclear", f"no answer within {timeout:g} s")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return Outcome(case, "unclear", f"process died (exit {done.returncode}): {tail}"[:300])
    result = json.loads(lines[-1])
    return Outcome(case, result["kind"], result["detail"], refused=result["refused"])


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps(run_one(sys.argv[1])))
