"""Users read words they know: no reference to documents they have never seen, anywhere they look."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
# "the seeds" were the source articles of the project: users never saw them
PRIVATE = re.compile(r"the seeds|seeds'|seed 00[0-4]|source documents|seed network|SeedCNN", re.I)


def _user_facing() -> list[pathlib.Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs").glob("*.py")),
            *sorted((ROOT / "convolab").rglob("*.py"))]


def test_no_word_users_cannot_know():
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in _user_facing()
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if PRIVATE.search(line) and "SeedCNN = MnistCNN" not in line]  # the old class name, kept importable
    assert not found, "\n".join(found)


def test_the_demo_folder_is_ignored_by_git():
    assert "convolab-demo/" in (ROOT / ".gitignore").read_text().splitlines()
