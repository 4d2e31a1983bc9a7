"""Atomic writes, checkpoint files and random-number state."""

import os
import random

import numpy as np
import pytest
import torch

from convolab.train import atomic_write, load_checkpoint, save_checkpoint
from convolab.train.checkpoint import rng_state, set_rng_state


def test_atomic_write_replaces_through_a_temp_file_in_the_same_folder(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    target.write_bytes(b"old")
    calls = []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", a, b)), real_replace(a, b))[1])
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", fd)), real_fsync(fd))[1])
    atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
    kinds = [c[0] for c in calls]
    assert kinds == ["fsync", "replace", "fsync"]  # file synced before the rename, folder after
    _, tmp, dst = calls[1]
    assert os.path.dirname(tmp) == str(tmp_path) and os.fspath(dst) == str(target)
    assert os.listdir(tmp_path) == ["last.pt"]


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "last.pt"
    save_checkpoint(target, {"model": {"w": torch.ones(2)}, "config": {"model": "x"}})

    def broken(f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of torch.save

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, broken)
    assert torch.equal(load_checkpoint(target)["model"]["w"], torch.ones(2))
    assert os.listdir(tmp_path) == ["last.pt"]


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="load_checkpoint: no such file"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00junk")
    with pytest.raises(ValueError, match=r"junk.pt is not a checkpoint \(not the zip archive torch.save writes\)"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"w": torch.ones(1)}, tmp_path / "weights.pt")
    with pytest.raises(ValueError, match=r"weights.pt is not a convolab training checkpoint"):
        load_checkpoint(tmp_path / "weights.pt")
    save_checkpoint(tmp_path / "state.pt", {"w": torch.ones(1)})
    with pytest.raises(ValueError, match=r"state.pt has no 'model', 'config' entries"):
        load_checkpoint(tmp_path / "state.pt")


def test_rng_state_round_trips_through_a_checkpoint(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    save_checkpoint(tmp_path / "c.pt", {"model": {}, "config": {}, "rng": rng_state()})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])  # weights_only load must accept it
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]
