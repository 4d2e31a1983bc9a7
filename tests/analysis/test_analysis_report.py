"""The report is data; rendering reads it: a summary renders through the renderer it is given, and
the op table holds each aten op once with its field rule and its cost."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from convolab.analysis import Summary, summary
from convolab.analysis._rules import ATEN
from convolab.analysis._tracer import OpTable
from convolab.analysis.format import RENDERER, to_markdown, to_text
from convolab.analysis.report import Renderer


def test_a_summary_renders_through_its_renderer():
    s = summary(nn.Sequential(nn.Conv2d(1, 2, 3)), (1, 1, 8, 8))
    assert str(s) == to_text(s) and s.to_markdown() == to_markdown(s)
    plain = dataclasses.replace(s, _renderer=Renderer(text=lambda s, w: f"{s.model} {w}", markdown=lambda s: "md"))
    assert str(plain) == "Sequential 100" and plain.to_markdown() == "md"
    assert plain == s and plain.to_dict() == s.to_dict()  # the renderer is not part of the data


def test_a_summary_without_renderer_says_how_to_get_one():
    bare = dataclasses.replace(summary(nn.Conv2d(1, 1, 3), (1, 1, 5, 5)), _renderer=None)
    assert bare.to_json()  # the data needs no renderer
    with pytest.raises(ValueError, match=r"summary: this Summary has no renderer; give it _renderer="):
        bare.to_text()
    assert isinstance(RENDERER, Renderer) and isinstance(bare, Summary)


def test_each_op_has_one_rule_with_its_cost():
    conv = ATEN.ops[torch.ops.aten.convolution]
    assert conv.field is not None and conv.cost is not None
    assert ATEN.ops[torch.ops.aten.max_pool2d_with_indices].cost is None  # comparisons: no MACs
    assert ATEN.ops[torch.ops.aten.zeros_like].constant
    table = OpTable()
    table.rule("relu")(lambda *a: None)
    with pytest.raises(ValueError, match=r"analysis: aten.relu has two rules"):
        table.rule("relu")(lambda *a: None)
    with pytest.raises(ValueError, match=r"analysis: aten.relu has two rules"):
        OpTable.union(table, table)
