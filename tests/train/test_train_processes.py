"""Real processes: SIGKILL mid-epoch then --resume, and torchrun with two processes on the loopback."""

import json
import os
import select
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from convolab.data import write_idx
from convolab.train import TrainConfig, fit

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _mnist_folder(folder, n_train=64, n_test=16):
    """Tiny learnable IDX files: a bright square whose position is the class."""
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = torch.randint(0, 60, (n, 28, 28), generator=g, dtype=torch.uint8)
        labels = torch.arange(n) % 4
        for i, c in enumerate(labels.tolist()):
            images[i, 3 + 5 * c : 8 + 5 * c, 3 + 5 * c : 8 + 5 * c] = 255
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels.to(torch.uint8))
    return folder


def _weights(path):
    state = torch.load(path, weights_only=True)
    return state.get("model", state)


# Trains in a child process; after step 3 of epoch 2 (the last checkpoint is step 2) it says
# READY and waits to be killed, so the kill lands mid-epoch with work done since the checkpoint.
KILLED_RUN = textwrap.dedent("""
    import sys, time, torch
    torch.set_num_threads(1)
    from convolab.train import Callback, TrainConfig, fit

    class Stall(Callback):
        def on_step(self, epoch, step, loss, accuracy):
            if (epoch, step) == (1, 3):
                print("READY", flush=True)
                time.sleep(600)

    fit(TrainConfig(**eval(sys.argv[1])), sys.argv[2], callbacks=[Stall()])
""")


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    data = _mnist_folder(tmp_path / "mnist")
    config = dict(data=f"mnist:{data}", epochs=2, batch_size=8, lr=0.02, augment_shift=1, checkpoint_every=2, seed=3)
    child = subprocess.Popen([sys.executable, "-c", KILLED_RUN, repr(config), str(tmp_path / "cut")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        ready, _, _ = select.select([child.stdout], [], [], 180)  # never hang the suite
        line = child.stdout.readline() if ready else "(no output in 180 s)"
        assert line.strip() == "READY", child.stderr.read()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
    assert child.returncode == -signal.SIGKILL
    # the killed run's lock stays behind, stale: its owner is gone, so the resumed run takes it over
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == [".convolab.lock", "last.pt", "metrics.csv", "metrics.json"]
    owner = json.loads((tmp_path / "cut" / ".convolab.lock").read_text())
    assert owner["pid"] == child.pid and owner["op"] == "train"

    resumed = fit(TrainConfig(**config), tmp_path / "cut", resume=True)
    assert not (tmp_path / "cut" / ".convolab.lock").exists()  # released at the end
    assert resumed.resumed_from == (1, 2)
    full = fit(TrainConfig(**config), tmp_path / "full")
    a, b = _weights(full.weights), _weights(resumed.weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_torchrun_two_processes_average_gradients(tmp_path):
    pytest.importorskip("torch.distributed.run")
    if not torch.distributed.is_available():
        pytest.skip("torch built without distributed support")
    data = _mnist_folder(tmp_path / "mnist", n_train=48)
    # seed_cnn has batch norm: --sync-bn makes the two processes normalise over the global batch
    args = ["seed_cnn", "--data", f"mnist:{data}", "--epochs", "1", "--batch-size", "16", "--lr", "0.05",
            "--sync-bn", "--threads", "1"]
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "convolab", "train", *args, "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, env={**ENV, "GLOO_SOCKET_IFNAME": "lo"}, timeout=240,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "2 processes (gloo)" in ddp.stdout
    assert "FutureWarning" not in ddp.stderr and "deprecated" not in ddp.stderr  # sync-BN uses the supported all_reduce
    assert not (tmp_path / "ddp" / ".convolab.lock").exists()  # rank 0 claimed --out and released it
    single = fit(TrainConfig(data=f"mnist:{data}", epochs=1, batch_size=16, lr=0.05, sync_bn=True), tmp_path / "one")
    a, b = _weights(tmp_path / "ddp" / "model.pt"), _weights(single.weights)
    assert a.keys() == b.keys()
    start = _weights_at_init()
    for k in a:
        if a[k].is_floating_point():
            torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    # the runs really trained: every weight tensor moved away from its initial value (without
    # --sync-bn the two runs differ by ~1e-3, far outside the tolerance above)
    assert all(not torch.equal(a[k], start[k]) for k in a if k.endswith("weight"))


def _weights_at_init():
    from convolab.models import create_model

    torch.manual_seed(0)
    return create_model("seed_cnn", num_classes=4, in_channels=1).state_dict()
