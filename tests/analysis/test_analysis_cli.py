"""``convolab summary`` on the command line."""

from __future__ import annotations

import json
import textwrap

import pytest

from convolab.cli import main


def test_registered_model_table(capsys):
    assert main(["summary", "seed_cnn", "--input", "1x28x28"]) == 0
    out = capsys.readouterr().out
    assert "SeedCNN" in out and "1,425,214" in out and "layer4" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_json_and_markdown(capsys):
    assert main(["summary", "seed_cnn", "--input", "1x28x28", "--format", "json", "--depth", "1", "--batch", "2"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["input_shapes"] == [[2, 1, 28, 28]] and d["totals"]["params"] == 1425214
    assert {r["depth"] for r in d["rows"]} == {0, 1}
    assert main(["summary", "seed_cnn", "--input", "1x28x28", "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| Layer | Type |")


def test_user_file_and_module_attr(tmp_path, capsys, monkeypatch):
    (tmp_path / "mynet.py").write_text(textwrap.dedent("""
        from torch import nn
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
        def build():
            return nn.Sequential(nn.Conv2d(3, 4, 5))
    """))
    assert main(["summary", f"{tmp_path / 'mynet.py'}:net", "--input", "3x16x16"]) == 0
    assert "4×12×12" in capsys.readouterr().out
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["summary", "mynet:build", "--input", "3x16x16", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][1]["receptive_field"][0]["size"] == 5


@pytest.mark.parametrize("argv, message", [
    (["summary", "seed_cn"], "unknown model 'seed_cn'; did you mean 'seed_cnn'"),
    (["summary", "seed_cnn", "--input", "1xx28"], "--input must look like 3x224x224"),
    (["summary", "seed_cnn", "--input", "1x28x28", "--depth", "-1"], "--depth must be >= 0"),
    (["summary", "seed_cnn", "--input", "1x28x28", "--batch", "0"], "--batch must be >= 1, got 0"),
    (["summary", "nowhere.py:net"], "no such file: nowhere.py"),
    (["summary", "json:dumps"], "json:dumps is not an nn.Module"),
    (["summary", "json:nothing"], "json has no attribute 'nothing'"),
    (["summary", "seed_cnn", "--input", "3x28x28"], "the forward pass of SeedCNN failed in 'layer1.0'"),
])
def test_errors_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
