"""Nothing lost, no silent wrong answer: verified checkpoints, non-finite values, one run per
folder, file modes, and every setting checked before any work."""

import io
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
import zipfile

import pytest
import torch

from convolab.train import (
    NonFiniteError, OutputDirError, TrainConfig, atomic_write_text, claim_output_dir, fit, load_checkpoint, save_checkpoint,
)
from convolab.train import loop

from .test_train_loop import TINY, synthetic

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished two-epoch run (checkpoint, weights, metrics), copied by the tests that change it."""
    out = tmp_path_factory.mktemp("finished")
    fit(TrainConfig(**TINY), out, data=synthetic())
    return out


def _copy(src, dst):
    dst.mkdir()
    for p in src.iterdir():
        if p.is_file():
            (dst / p.name).write_bytes(p.read_bytes())
    return dst


# --- checkpoint integrity -------------------------------------------------------------------


def test_a_bit_flipped_inside_a_weight_is_refused_naming_the_file(finished, tmp_path):
    run = _copy(finished, tmp_path / "run")
    weight = load_checkpoint(run / "last.pt")["model"]["layer1.0.weight"]
    data = bytearray((run / "last.pt").read_bytes())
    at = bytes(data).find(weight.numpy().tobytes())
    assert at > 0
    data[at + 5] ^= 0x10  # one bit of one float of the first conv's weight
    (run / "last.pt").write_bytes(bytes(data))
    damaged = r"load_checkpoint: .*run/last.pt is damaged \(truncated or corrupted: .*\); restore it from a copy, or start the run again with --overwrite"
    with pytest.raises(ValueError, match=damaged):
        load_checkpoint(run / "last.pt")
    with pytest.raises(ValueError, match=damaged):
        fit(TrainConfig(**dict(TINY, epochs=3)), run, data=synthetic(), resume=True)


def test_content_that_does_not_match_its_digest_is_refused(finished, tmp_path):
    # rebuilt with valid zip checksums (as a program that rewrites the archive would) but another digest
    buffer = io.BytesIO()
    torch.save(load_checkpoint(finished / "last.pt"), buffer)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("archive/.convolab/sha256", b"sha256:" + b"0" * 64)
    (tmp_path / "edited.pt").write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match=r"edited.pt is damaged: its content does not match the SHA-256 recorded when it was "
                                         r"written \(the file changed on disk\); restore it from a copy"):
        load_checkpoint(tmp_path / "edited.pt")


def test_truncated_and_foreign_files_are_refused(finished, tmp_path):
    data = (finished / "last.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"load_checkpoint: .*cut.pt is damaged \(truncated or corrupted: .*\); restore it"):
        load_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "garbage.pt").write_bytes(os.urandom(4096))
    with pytest.raises(ValueError, match=r"garbage.pt is not a checkpoint \(not the zip archive torch.save writes\); check the path$") as exc:
        load_checkpoint(tmp_path / "garbage.pt")
    assert "weights_only" not in str(exc.value)
    torch.save({"model": {}, "config": {}}, tmp_path / "plain.pt")  # a zip without convolab's digest
    with pytest.raises(ValueError, match=r"plain.pt is not a convolab training checkpoint \(no integrity digest"):
        load_checkpoint(tmp_path / "plain.pt")


def test_checkpoints_stay_torch_files_and_old_ones_still_load(finished, tmp_path):
    state = torch.load(finished / "last.pt", weights_only=True)  # the digest is one more archive member
    assert state["format"] == 2 and set(loop.CHECKPOINT_ENTRIES) <= state.keys()
    assert set(torch.load(finished / "model.pt", weights_only=True)) == set(state["model"])
    state["format"] = 1  # written by convolab before the digest: no digest to check
    torch.save(state, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["epoch"] == 2


def test_a_checkpoint_missing_an_entry_names_the_file_and_the_entry(finished, tmp_path):
    state = load_checkpoint(finished / "last.pt")
    del state["optimizer"]
    save_checkpoint(tmp_path / "last.pt", state)
    with pytest.raises(ValueError, match=r"load_checkpoint: .*last.pt has no 'optimizer' entry \(a training checkpoint has config, model, optimizer"):
        fit(TrainConfig(**TINY), tmp_path, data=synthetic(), resume=True)


# --- non-finite values ----------------------------------------------------------------------


def test_resume_refuses_non_finite_weights(finished, tmp_path):
    state = load_checkpoint(finished / "last.pt")
    state["model"]["layer1.0.weight"][0, 0, 0, 0] = math.nan
    save_checkpoint(tmp_path / "last.pt", state)
    with pytest.raises(NonFiniteError, match=r"checkpoint .*last.pt holds non-finite values \(NaN in model entry 'layer1.0.weight'\)"):
        fit(TrainConfig(**dict(TINY, epochs=3)), tmp_path, data=synthetic(), resume=True)


def test_training_stops_at_the_first_non_finite_loss_keeping_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls = []
    real = loop.hard_example_loss

    def nan_at_step_13(logits, target, fraction):
        calls.append(1)
        loss = real(logits, target, fraction)
        return loss * math.nan if len(calls) == 13 else loss  # epoch 2 (6 steps each), step 7

    monkeypatch.setattr(loop, "hard_example_loss", nan_at_step_13)
    config = TrainConfig(**dict(TINY, epochs=3, checkpoint_every=2))
    with pytest.raises(NonFiniteError, match=r"the loss became NaN at epoch 3, step 1 \(learning rate .*\); stopped, and the last good "
                                             r"checkpoint .*last.pt \(end of epoch 2\) is kept\. .*--allow-nonfinite"):
        fit(config, tmp_path / "run", data=synthetic())
    kept = load_checkpoint(tmp_path / "run" / "last.pt")
    assert (kept["epoch"], kept["step"]) == (2, 0)
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())
    calls.clear()
    result = fit(TrainConfig(**dict(TINY, epochs=3, checkpoint_every=2, allow_nonfinite=True)), tmp_path / "on", data=synthetic())
    assert len(result.history) == 3 and math.isnan(result.history[-1]["train_loss"])


def test_weights_that_become_non_finite_are_never_saved(tmp_path, monkeypatch):
    models = []
    real = loop.build_model
    monkeypatch.setattr(loop, "build_model", lambda config, data: (lambda mp: (models.append(mp[0]), mp)[1])(real(config, data)))

    class Poison(loop.Callback):
        def on_step(self, epoch, step, loss, accuracy):
            if (epoch, step) == (0, 2):
                next(models[0].parameters()).data[0] = math.inf

    with pytest.raises(NonFiniteError, match=r"the weights became non-finite \(inf in layer1.0.weight\) at epoch 1, step 2 .*no checkpoint had been written yet"):
        fit(TrainConfig(**dict(TINY, checkpoint_every=2)), tmp_path, data=synthetic(), callbacks=[Poison()])
    assert not (tmp_path / "last.pt").exists()


# --- one run per folder, nothing overwritten without being asked ----------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from convolab.train import claim_output_dir
    claim = claim_output_dir(sys.argv[1], op="train")
    print("READY", flush=True)
    time.sleep(600)
""")


def test_a_second_run_on_a_busy_folder_fails_and_leaves_the_first_alone(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "READY"
        (out / ".last.pt.in-flight.tmp").write_bytes(b"the first run is writing this")
        with pytest.raises(OutputDirError, match=rf"train: --out .*run is in use by another run \(convolab train, pid {holder.pid} "
                                                 rf"on {socket.gethostname()}, started .*\); wait for it to finish or choose another --out"):
            fit(TrainConfig(**TINY), out, data=synthetic())
        assert (out / ".last.pt.in-flight.tmp").is_file()  # its temp file survives the second run
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock is stale and the next run takes it over
    assert json.loads((out / ".convolab.lock").read_text())["pid"] == holder.pid
    result = fit(TrainConfig(**dict(TINY, epochs=1)), out, data=synthetic())
    assert len(result.history) == 1 and not (out / ".last.pt.in-flight.tmp").exists()
    assert not (out / ".convolab.lock").exists()


def test_a_finished_run_is_never_overwritten_without_being_asked(finished, tmp_path):
    run = _copy(finished, tmp_path / "run")
    before = (run / "model.pt").read_bytes()
    with pytest.raises(OutputDirError, match=r"train: --out .*run already holds an earlier run \(last.pt, metrics.csv, metrics.json, model.pt\); "
                                             r"continue it with --resume or replace it with --overwrite"):
        fit(TrainConfig(**dict(TINY, lr=0.03)), run, data=synthetic())
    assert (run / "model.pt").read_bytes() == before
    with pytest.raises(OutputDirError, match="--resume and --overwrite exclude each other"):
        fit(TrainConfig(**TINY), run, data=synthetic(), resume=True, overwrite=True)
    replaced = fit(TrainConfig(**dict(TINY, epochs=1, lr=0.03)), run, data=synthetic(), overwrite=True)
    assert len(replaced.history) == 1 and load_checkpoint(run / "last.pt")["config"]["lr"] == 0.03


def test_resuming_a_finished_run_trains_nothing_and_more_epochs_train_further(finished, tmp_path):
    run = _copy(finished, tmp_path / "run")
    again = fit(TrainConfig(**TINY), run, data=synthetic(), resume=True)
    assert again.already_finished and again.resumed_from == (2, 0) and len(again.history) == 2
    with pytest.raises(ValueError, match=r"checkpoint .*last.pt has trained 2 epochs; epochs must be >= 2 to resume it, got 1"):
        fit(TrainConfig(**dict(TINY, epochs=1)), run, data=synthetic(), resume=True)
    more = fit(TrainConfig(**dict(TINY, epochs=3)), run, data=synthetic(), resume=True)
    assert not more.already_finished and [m["epoch"] for m in more.history] == [1, 2, 3]


@pytest.mark.parametrize("where, match", [
    ("file", r"train: --out .*a-file is a file, not a folder"),
    ("under", r"train: --out .*a-file/run: .*a-file is a file, not a folder"),
    ("proc", r"train: --out /proc/convolab-x: cannot create the folder /proc/convolab-x \("),
])
def test_unusable_output_folders_fail_before_any_work(tmp_path, monkeypatch, where, match):
    (tmp_path / "a-file").write_text("x")
    out = {"file": tmp_path / "a-file", "under": tmp_path / "a-file" / "run", "proc": "/proc/convolab-x"}[where]
    monkeypatch.setattr(loop, "load_dataset", lambda *a, **k: pytest.fail("data loaded before --out was checked"))
    with pytest.raises(OutputDirError, match=match):
        fit(TrainConfig(**TINY), out)


def test_a_run_failing_at_its_first_check_leaves_no_folder_behind(tmp_path):
    with pytest.raises(ValueError, match="augment_shift must be at most 7"):
        fit(TrainConfig(**dict(TINY, augment_shift=8)), tmp_path / "new" / "run", data=synthetic())
    assert not (tmp_path / "new").exists()


def test_claim_reports_a_stale_owner(tmp_path):
    (tmp_path / ".convolab.lock").write_text(json.dumps({"pid": 2**22 + 12345, "host": "elsewhere", "op": "ablate"}))
    with claim_output_dir(tmp_path, op="demo") as claim:
        assert claim.stale_owner["op"] == "ablate"
        assert json.loads((tmp_path / ".convolab.lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / ".convolab.lock").exists()


# --- files respect the umask ----------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        result = fit(TrainConfig(**dict(TINY, epochs=1)), tmp_path / "run", data=synthetic())
        atomic_write_text(tmp_path / "note.txt", "hi")
    finally:
        os.umask(old)
    for path in (result.checkpoint, result.weights, result.metrics_csv, result.metrics_json, tmp_path / "note.txt"):
        assert oct(path.stat().st_mode & 0o777) == oct(mode), path


# --- every setting checked before any work --------------------------------------------------


@pytest.mark.parametrize("change, error, match", [
    (dict(weight_decay=math.nan), ValueError, r"train: weight_decay must be a finite number >= 0, got nan"),
    (dict(lr=math.inf), ValueError, r"train: lr must be a finite number > 0, got inf"),
    (dict(momentum=1.0), ValueError, r"train: momentum must be a finite number in \[0, 1\), got 1.0"),
    (dict(val_fraction=math.nan), ValueError, r"train: val_fraction must be a finite number in \[0, 1\), got nan"),
    (dict(hard_mining=math.nan), ValueError, r"train: hard_mining must be a fraction in \(0, 1\], got nan"),
    (dict(seed=2**70), ValueError, r"train: seed must be an int in \[0, 2\*\*63 - 1\], got 1180591620717411303424"),
    (dict(seed=-1), ValueError, r"train: seed must be an int in \[0, 2\*\*63 - 1\], got -1"),
    (dict(epochs=2.5), ValueError, r"train: epochs must be an int >= 1, got 2.5"),
    (dict(batch_size=True), ValueError, r"train: batch_size must be an int >= 1, got True"),
    (dict(limit=0), ValueError, r"train: limit must be an int >= 1, got 0"),
    (dict(image_size=10**6), ValueError, r"train: image_size must be an int in \[1, 4096\], got 1000000"),
    (dict(workers=-1), ValueError, r"train: workers must be an int in \[0, 64\], got -1"),
    (dict(checkpoint_every=-2), ValueError, r"train: checkpoint_every must be an int >= 0, got -2"),
    (dict(allow_nonfinite="yes"), TypeError, r"train: allow_nonfinite must be True or False, got 'yes'"),
])
def test_every_setting_is_checked(tmp_path, change, error, match):
    with pytest.raises(error, match=match):
        fit(TrainConfig(**{**TINY, **change}), tmp_path, data=synthetic())
    assert not tmp_path.joinpath(".convolab.lock").exists()


def test_command_line_names_the_options():
    with pytest.raises(ValueError, match=r"^--lr must be a finite number > 0, got inf$"):
        TrainConfig(lr=math.inf).validate(options=True)
    with pytest.raises(ValueError, match=r"^--augment-shift must be an int >= 0, got -1$"):
        TrainConfig(augment_shift=-1).validate(options=True)
    with pytest.raises(ValueError, match=r"^--optimizer must be one of 'sgd', 'adamw', got 'adm'"):
        TrainConfig(optimizer="adm").validate(options=True)


def test_settings_that_depend_on_the_data(tmp_path):
    with pytest.raises(ValueError, match=r"train: augment_shift must be at most 7 for 28x28 images \(a quarter of the smaller side"):
        fit(TrainConfig(**dict(TINY, augment_shift=100)), tmp_path / "a", data=synthetic())
    with pytest.raises(ValueError, match=r"augment_shift must be at most 3 for 12x12 images"):
        fit(TrainConfig(**dict(TINY, augment_shift=4, image_size=28)), tmp_path / "b", data=synthetic(size=12))
    empty = synthetic()
    empty.val = empty.val.subset(torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match=r"train: the held-out set is empty: synthetic has no test set of its own and val_fraction is 0.0; "
                                         r"hold out a share of the images \(--val-fraction in \(0, 1\)"):
        fit(TrainConfig(**dict(TINY, val_fraction=0.0)), tmp_path / "c", data=empty)
