"""The README is a manual that works: its Python blocks run as written in an empty folder, and every file, folder
and link it (or a page in docs/) names is in the repository."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_readme_has_python_blocks():
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 3 and all("import" in b for b in blocks)


@pytest.mark.parametrize("index", range(len(python_blocks(README.read_text()))))
def test_a_readme_python_block_runs_as_written_in_an_empty_folder(index, tmp_path):
    block = python_blocks(README.read_text())[index]
    env = {**os.environ, "PYTHONPATH": ""}  # avdit as installed, nothing from the checkout's folder
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"README Python block {index + 1} failed:\n{block}\n{done.stderr[-3000:]}"


def named_paths(page: Path) -> set[tuple[str, Path]]:
    """(as written, resolved) for every relative Markdown link and every repository path in backquotes."""
    text = page.read_text()
    found = set()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not re.match(r"[a-z]+:", target):  # not a web address
            found.add((target, (page.parent / target).resolve()))
    for path in re.findall(r"`((?:avdit|benchmarks|docs|tests)/[\w./-]+)`", text):
        found.add((path, (ROOT / path).resolve()))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_page_names_is_in_the_repository(page):
    missing = sorted(written for written, path in named_paths(page) if not path.exists())
    assert not missing, f"{page.relative_to(ROOT)} names what is not in the repository: {missing}"


def test_no_page_names_outside_notes_or_issues():
    for page in PAGES:
        text = page.read_text()
        assert not re.search(r"shared/(DESIGN|STYLE|BOUNCING|paper)|shared folder", text), page  # the team's notes
        assert not re.search(r"\bissue\b|\bissue \d+|#\d+\b(?![0-9a-fA-F])", text, flags=re.I), page
