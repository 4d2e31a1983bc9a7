"""PyTorch's own sample inputs for its conv and pooling ops and modules, run through convolab.

torch's OpInfo and ModuleInfo databases hold the cases torch tests its ops with (every padding
form, groups, dilation, unbatched inputs, ceil_mode, indices, divisor_override, ...). convolab
is a drop-in: on every sample it gives torch's output and gradients.
"""

from __future__ import annotations

import pytest
import torch

import convolab.functional as CF
import convolab.nn as cnn

common = pytest.importorskip("torch.testing._internal.common_methods_invocations")
modules = pytest.importorskip("torch.testing._internal.common_modules")

OPS = {
    "nn.functional.conv1d": CF.conv1d,
    "nn.functional.conv2d": CF.conv2d,
    "nn.functional.conv3d": CF.conv3d,
    "nn.functional.conv_transpose1d": CF.conv_transpose1d,
    "nn.functional.conv_transpose2d": CF.conv_transpose2d,
    "nn.functional.conv_transpose3d": CF.conv_transpose3d,
    "nn.functional.max_pool1d": CF.max_pool1d,
    "nn.functional.max_pool2d": CF.max_pool2d,
    "nn.functional.max_pool3d": CF.max_pool3d,
    "nn.functional.avg_pool1d": CF.avg_pool1d,
    "nn.functional.avg_pool2d": CF.avg_pool2d,
    "nn.functional.avg_pool3d": CF.avg_pool3d,
    "nn.functional.adaptive_max_pool1d": CF.adaptive_max_pool1d,
    "nn.functional.adaptive_max_pool2d": CF.adaptive_max_pool2d,
    "nn.functional.adaptive_max_pool3d": CF.adaptive_max_pool3d,
    "nn.functional.adaptive_avg_pool1d": CF.adaptive_avg_pool1d,
    "nn.functional.adaptive_avg_pool2d": CF.adaptive_avg_pool2d,
    "nn.functional.adaptive_avg_pool3d": CF.adaptive_avg_pool3d,
}
MODULES = [
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "LPPool1d", "LPPool2d", "LPPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
]
DTYPES = [torch.float32, torch.float64]


def _tensors(value):  # type: ignore[no-untyped-def]
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def _tol(dtype: torch.dtype) -> dict:
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-9, "atol": 1e-9}


def _compare(ours, theirs, inputs_ours, inputs_theirs, dtype: torch.dtype) -> None:  # type: ignore[no-untyped-def]
    outs, refs = _tensors(ours), _tensors(theirs)
    assert len(outs) == len(refs)
    for o, r in zip(outs, refs):
        assert o.shape == r.shape and o.dtype == r.dtype
        torch.testing.assert_close(o, r, **_tol(dtype), equal_nan=True)
    floats = [(o, r) for o, r in zip(outs, refs) if r.requires_grad]
    if not floats:
        return
    grads = [torch.randn_like(r) for _, r in floats]
    wanted = [t for t in inputs_theirs if t.requires_grad]
    mine = [t for t in inputs_ours if t.requires_grad]
    g_ref = torch.autograd.grad([r for _, r in floats], wanted, grads, allow_unused=True)
    g_our = torch.autograd.grad([o for o, _ in floats], mine, grads, allow_unused=True)
    for a, b in zip(g_our, g_ref):
        if b is None:
            assert a is None or not a.any()
        else:
            torch.testing.assert_close(a, b, **_tol(dtype), equal_nan=True)


def _clone(value):  # type: ignore[no-untyped-def]
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (tuple, list)):
        return type(value)(_clone(v) for v in value)
    return value


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(OPS))
def test_opinfo_samples(name, dtype):
    (info,) = [o for o in common.op_db if o.name == name and not o.variant_test_name]
    count = 0
    for sample in info.sample_inputs("cpu", dtype, requires_grad=True):
        args = (sample.input, *sample.args)
        theirs = info.op(*args, **sample.kwargs)
        mine_args = _clone(args)
        ours = OPS[name](*mine_args, **sample.kwargs)
        _compare(ours, theirs, _tensors(mine_args), _tensors(args), dtype)
        count += 1
    assert count > 0


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", MODULES)
def test_moduleinfo_samples(name, dtype):
    info = next(m for m in modules.module_db if m.module_cls.__name__ == name)
    cases = info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True, training=True)
    assert cases
    for case in cases:
        c, f = case.constructor_input, case.forward_input
        if f is None:
            continue
        torch.manual_seed(0)
        theirs_m = info.module_cls(*c.args, **c.kwargs).to(dtype)
        ours_m = getattr(cnn, name)(*c.args, **c.kwargs).to(dtype)
        assert isinstance(ours_m, info.module_cls)
        ours_m.load_state_dict(theirs_m.state_dict())
        args, mine = f.args, _clone(f.args)
        theirs = theirs_m(*args, **f.kwargs)
        ours = ours_m(*mine, **f.kwargs)
        _compare(ours, theirs, [*_tensors(mine), *ours_m.parameters()], [*_tensors(args), *theirs_m.parameters()], dtype)
