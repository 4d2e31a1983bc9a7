"""``convolab train`` / ``ablate`` / ``demo`` on the command line: options and --out checked before
any work (exit 2, one line), Ctrl-C says what was saved (exit 130), finished runs, plurals."""

import os
import select
import signal
import subprocess
import sys
import time

import pytest

from convolab.cli import main
from convolab.train import save_checkpoint

from .test_train_processes import _mnist_folder

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _one_line_error(capsys, command, code):
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"convolab {command}: error: "), captured.err
    return captured


@pytest.mark.parametrize("args, message", [
    (["--lr", "inf"], r"--lr must be a finite number > 0, got inf$"),
    (["--weight-decay", "nan"], r"--weight-decay must be a finite number >= 0, got nan$"),
    (["--seed", str(2**70)], r"--seed must be an int in \[0, 2\*\*63 - 1\], got 1180591620717411303424$"),
    (["--momentum", "-0.5"], r"--momentum must be a finite number in \[0, 1\), got -0.5$"),
    (["--val-fraction", "nan"], r"--val-fraction must be a finite number in \[0, 1\), got nan$"),
    (["--batch-size", "-8"], r"--batch-size must be an int >= 1, got -8$"),
    (["--limit", "-1"], r"--limit must be an int >= 1, got -1$"),
    (["--workers", "-1"], r"--workers must be an int in \[0, 64\], got -1$"),
    (["--threads", "-2"], r"--threads must be >= 1, got -2$"),
    (["--threads", "100000"], r"--threads must be <= 1024 \(more only contend for the cores\), got 100000$"),
    (["--augment-shift", "100"], r"train: augment_shift must be at most 7 for 28x28 images \(a quarter of the smaller side"),
    (["--val-fraction", "0"], r"train: the held-out set is empty: MNIST 5,000-image sample .* has no test set of its own"),
    (["--out", "/proc/convolab-x"], r"train: --out /proc/convolab-x: cannot create the folder /proc/convolab-x"),
    (["--resume", "{tmp}/garbage.pt"], r"garbage.pt is not a checkpoint \(not the zip archive torch.save writes\); check the path$"),
    (["--data", "mnist:{tmp}/mnist/train-images-idx3-ubyte.gz"],
     r"load_mnist: .*train-images-idx3-ubyte.gz is a file; expected the folder that holds train-images-idx3-ubyte"),
])
def test_train_checks_every_option_before_any_work(tmp_path, monkeypatch, capsys, args, message):
    import re

    monkeypatch.chdir(tmp_path)
    _mnist_folder(tmp_path / "mnist")
    (tmp_path / "garbage.pt").write_bytes(os.urandom(1000))
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    captured = _one_line_error(capsys, "train", main(["train", "seed_cnn", "--limit", "64", "--epochs", "1", *args]))
    assert re.search(message, captured.err.strip()), captured.err
    assert "epoch 1" not in captured.out and "weights_only" not in captured.err
    assert not (tmp_path / "runs").exists()  # nothing left behind in the default --out


def test_finished_runs_are_kept_and_say_so(tmp_path, capsys):
    data = _mnist_folder(tmp_path / "mnist")
    args = ["train", "seed_cnn", "--data", f"mnist:{data}", "--epochs", "1", "--batch-size", "16", "--threads", "1",
            "--out", str(tmp_path / "run")]
    assert main(args) == 0
    assert "after 1 epoch\n" in capsys.readouterr().out  # not "1 epochs"
    _one_line_error(capsys, "train", main(args))  # the same command again: refused, the run is kept
    assert main([*args, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "already finished: all 1 epoch are trained, nothing to do (to train further, pass --epochs N with N > 1 and --resume)" in out
    assert "resuming epoch 2" not in out and "after 1 epoch (the run had already finished" in out
    assert main([*args[:5], "2", *args[6:], "--resume"]) == 0  # --epochs 2: one more epoch
    assert "after 2 epochs (resumed from end of epoch 1)" in capsys.readouterr().out
    assert main([*args, "--overwrite"]) == 0 and "after 1 epoch\n" in capsys.readouterr().out


def test_train_reports_a_checkpoint_missing_an_entry(tmp_path, capsys):
    save_checkpoint(tmp_path / "last.pt", {"format": 2, "model": {}, "config": {"model": "seed_cnn"}})
    captured = _one_line_error(capsys, "train", main(["train", "seed_cnn", "--out", str(tmp_path), "--resume"]))
    assert "last.pt has no 'optimizer', 'scheduler', 'epoch', 'step', 'history', 'ranks' entries" in captured.err


def test_ablate_and_demo_check_their_output_folder_first(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for command in (["ablate", "--limit", "64", "--epochs", "1", "--seeds", "1"], ["demo", "--quick"]):
        for out, message in (("/proc/convolab-x", "cannot create the folder /proc/convolab-x"),
                             (str(tmp_path / "file" / "sub"), "file is a file, not a folder")):
            captured = _one_line_error(capsys, command[0], main([*command, "--out", out]))
            assert message in captured.err and captured.out == ""  # no work, not even the demo's first lines
    captured = _one_line_error(capsys, "ablate", main(["ablate", "--seeds", "5000", "--out", str(tmp_path / "a")]))
    assert "--seeds must be <= 1000" in captured.err
    captured = _one_line_error(capsys, "ablate", main(["ablate", "--lr", "nan", "--out", str(tmp_path / "a")]))
    assert "convolab ablate: error: --lr must be a finite number > 0, got nan" in captured.err


def test_demo_refuses_to_replace_an_earlier_demo(tmp_path, capsys):
    (tmp_path / "seed_cnn").mkdir()
    (tmp_path / "seed_cnn" / "model.pt").write_bytes(b"an earlier demo's weights")
    captured = _one_line_error(capsys, "demo", main(["demo", "--quick", "--out", str(tmp_path)]))
    assert "already holds an earlier demo (seed_cnn/model.pt); replace it with --overwrite, or choose another --out" in captured.err
    assert captured.out == ""


def _wait_for(predicate, what, seconds=180):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.1)


def _interrupt(child):
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    return child.returncode, err


def _readline(child, seconds=180):
    ready, _, _ = select.select([child.stdout], [], [], seconds)
    return child.stdout.readline() if ready else ""


def test_ctrl_c_during_train_says_what_was_saved(tmp_path):
    data = _mnist_folder(tmp_path / "mnist")
    command = [sys.executable, "-m", "convolab", "train", "seed_cnn", "--data", f"mnist:{data}", "--epochs", "500",
               "--batch-size", "16", "--threads", "1", "--out", str(tmp_path / "run")]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        _wait_for(lambda: _readline(child).startswith("epoch 1:"), "the first epoch")  # its checkpoint is written
        code, err = _interrupt(child)
    finally:
        child.kill()
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert code == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err
    assert last.startswith(f"convolab train: interrupted; the last checkpoint is {tmp_path / 'run' / 'last.pt'} (end of epoch ")
    assert last.endswith("to continue from it, run the same command with --resume")
    assert not (tmp_path / "run" / ".convolab.lock").exists()


def test_ctrl_c_before_the_first_checkpoint_says_nothing_was_saved(tmp_path):
    command = [sys.executable, "-m", "convolab", "train", "seed_cnn", "--epochs", "5", "--threads", "1",
               "--out", str(tmp_path / "run")]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        assert _readline(child).startswith("training seed_cnn")  # 4,000 images: the first epoch takes seconds
        code, err = _interrupt(child)
    finally:
        child.kill()
    assert code == 130 and "Traceback" not in err
    assert err.replace("\r", "\n").strip().splitlines()[-1] == (
        "convolab train: interrupted before the first checkpoint; nothing was saved (run the same command to start again)")
    assert not (tmp_path / "run").exists()  # the folder it made for the run is gone again


def test_ctrl_c_during_ablate_says_what_was_kept(tmp_path):
    out = tmp_path / "ab"
    command = [sys.executable, "-m", "convolab", "ablate", "--swap", "conv=standard,flattened", "--epochs", "300",
               "--seeds", "1", "--limit", "64", "--batch-size", "32", "--no-plot", "--out", str(out)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        _wait_for(lambda: (out / "runs" / "conv=standard" / "seed0" / "last.pt").is_file(), "the first checkpoint")
        code, err = _interrupt(child)
    finally:
        child.kill()
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert code == 130 and "Traceback" not in err
    assert last == (f"convolab ablate: interrupted; kept the interrupted run's last checkpoint "
                    f"{out / 'runs' / 'conv=standard' / 'seed0' / 'last.pt'}: to continue, run the same command with --resume")
    assert not (out / ".convolab.lock").exists()
