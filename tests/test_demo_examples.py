"""The demo's worked examples are computed by the library and equal the classic published numbers."""

from convolab.cli import main
from convolab.commands.demo import worked_examples


def test_worked_examples_carry_the_published_numbers():
    text = "\n".join(body for _, body in worked_examples())
    for number in ("387,072", "157,184", "589,824", "69,632", "3x3", "5x5", "7x7", "(4, 4)", "(2, 3, 3)"):
        assert number in text, number


def test_cli_without_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: convolab" in capsys.readouterr().out
