"""Every code block of docs/*.md runs and prints what the guide shows, so the guide cannot rot.

- ```pycon blocks are doctests (ELLIPSIS, NORMALIZE_WHITESPACE), sharing one namespace per file;
- ```python blocks are executed in that namespace;
- ```console blocks are ``$ convolab ...`` lines run in-process by ``convolab.cli.main``,
  each followed by its expected output (``...`` stands for what varies, e.g. timings; a run of
  ``~`` stands for exactly as many characters, so a table row keeps its shape, e.g. a timing
  cell ``~~~~~~~``). They run with ``COLUMNS=100``, so tables have the width the guide shows.

Blocks run in a scratch folder that links ``docs/``, so the guide's relative paths work and
what it writes lands in the scratch folder. Every picture the guide shows must exist and be
written by docs/make_images.py. After a deliberate change of an output, regenerate the guide's
outputs with ``python docs/refresh_guide.py`` and review the diff.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import pathlib
import re
import shlex

import pytest
import torch

from convolab.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GUIDES = sorted(DOCS.glob("*.md"))
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.S | re.M)
EXECUTED = ("pycon", "python", "console")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def blocks(path: pathlib.Path) -> list[tuple[str, str, int]]:
    """(language, body, line of the opening fence) of every fenced block."""
    text = path.read_text()
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def run_pycon(body: str, globs: dict, name: str, line: int) -> None:
    test = doctest.DocTestParser().get_doctest(body, globs, name, name, line)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test, out=report.write, clear_globs=False)
    globs.update(test.globs)  # a DocTest runs in a copy; later blocks see this block's names
    assert runner.failures == 0, f"{name}:{line}: the guide's output is out of date (python docs/refresh_guide.py)\n{report.getvalue()}"


def console_commands(body: str) -> list[tuple[str, str]]:
    """(command line, expected output) pairs of a console block."""
    pairs: list[tuple[str, list[str]]] = []
    for text in body.splitlines():
        if text.startswith("$ "):
            pairs.append((text[2:], []))
        elif pairs:
            pairs[-1][1].append(text)
        else:
            raise AssertionError(f"a console block must start with '$ ', got {text!r}")
    return [(cmd, "\n".join(out).strip() + "\n") for cmd, out in pairs]


GUIDE_COLUMNS = "100"  # the terminal width the guide's console blocks are written for


def output_matches(expected: str, got: str) -> bool:
    """doctest's comparison (ELLIPSIS, NORMALIZE_WHITESPACE), plus: ``~~~`` (n tildes) matches any n characters."""
    if "~~~" not in expected:
        return doctest.OutputChecker().check_output(expected, got, FLAGS)
    pattern = ""
    for token in re.split(r"(~{3,}|\.\.\.|\s+)", expected.strip()):
        if not token:
            continue
        if token.startswith("~~~"):
            pattern += f"[^\n]{{{len(token)}}}"
        elif token == "...":
            pattern += ".*?"
        elif token.isspace():
            pattern += r"\s+"
        else:
            pattern += re.escape(token)
    return re.fullmatch(pattern, got.strip(), re.S) is not None


def run_console(body: str, name: str, line: int) -> None:
    for command, expected in console_commands(body):
        argv = shlex.split(command)
        assert argv[0] == "convolab", f"{name}:{line}: only convolab commands run in the guide, got {command!r}"
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(argv[1:])
        got = out.getvalue().strip() + "\n"
        assert code == 0, f"{name}:{line}: `{command}` exited with {code}"
        assert output_matches(expected, got), (
            f"{name}:{line}: `{command}` printed\n{got}\nbut the guide shows\n{expected}"
        )


@pytest.mark.parametrize("path", GUIDES, ids=[p.name for p in GUIDES])
def test_every_block_of_the_guide_runs(path, tmp_path, monkeypatch):
    (tmp_path / "docs").symlink_to(DOCS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", GUIDE_COLUMNS)
    torch.manual_seed(0)
    globs: dict = {"__name__": "guide"}
    found = blocks(path)
    assert found, f"{path.name} has no code block"
    for lang, body, line in found:
        assert lang in EXECUTED, f"{path.name}:{line}: a ```{lang} block would not be executed (use {EXECUTED})"
        if lang == "pycon":
            run_pycon(body, globs, path.name, line)
        elif lang == "python":
            exec(compile(body, f"{path}:{line}", "exec"), globs)
        else:
            run_console(body, path.name, line)


@pytest.mark.parametrize("path", GUIDES, ids=[p.name for p in GUIDES])
def test_pictures_exist_and_are_made_by_the_script(path):
    script = (DOCS / "make_images.py").read_text()
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", path.read_text()):
        assert (DOCS / image).is_file(), f"{path.name} shows {image}, which does not exist"
        stem = pathlib.Path(image).stem
        assert re.search(rf"\b{re.escape(stem)}\b", script), (
            f"{image} is not produced by docs/make_images.py"
        )


def test_console_blocks_are_parsed():
    assert console_commands("$ convolab models\na\n b\n$ convolab bench\n") == [
        ("convolab models", "a\n b\n"), ("convolab bench", "\n")]
    with pytest.raises(AssertionError, match="must start with"):
        console_commands("convolab models\n")


def test_placeholders_keep_the_shape_of_a_row():
    row = "│ conv=standard │ 1,425,214 │ {} │"
    assert output_matches(row.format("~~~~~~"), row.format("97.40%"))
    assert not output_matches(row.format("~~~~~~"), row.format("97.4%"))  # one character short
    assert output_matches("a ... z", "a bc z") and not output_matches("a ~~~ z", "a bc z")


def test_a_stale_output_fails(tmp_path):
    with pytest.raises(AssertionError, match="out of date"):
        run_pycon(">>> 1 + 1\n3\n", {}, "stale.md", 1)
    with pytest.raises(AssertionError, match="printed"):
        run_console("$ convolab models\nno such table\n", "stale.md", 1)
