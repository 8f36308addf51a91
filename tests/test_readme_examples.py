"""The README's "Using it" examples run as written, in order, in an empty
folder but for the voxel-mode demo pyramid named as there (``out.h5``), which
the block builds only if missing (it builds the labelmap demo, ``lm.h5``, too).

Skipped: the lines that open the desktop app or napari.  A line's trailing
``# {...}`` comment, when it is JSON, is the output its last line must print.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import make_parser
from app.model.info import dataset_info

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    name
    for action in make_parser()._actions
    if hasattr(action, "choices") and isinstance(action.choices, dict)
    for name in action.choices
}


def using_it_lines() -> list[str]:
    """The command lines of the first ``sh`` block of README's "Using it"."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Using it\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "no sh block in 'Using it'"
    return [line for line in block.group(1).splitlines() if line.strip()]


def opens_a_window(line: str) -> bool:
    """``segmend FILE ...`` (the app) or napari."""
    words = line.split()
    return words[0] == "napari" or (words[0] == "segmend" and words[1] not in COMMANDS)


def expected_output(line: str) -> object | None:
    """The JSON of the line's trailing comment, if it is JSON."""
    _, _, comment = line.partition("  # ")
    try:
        return json.loads(comment)
    except json.JSONDecodeError:
        return None


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "demo.h5"
    run = subprocess.run(
        [sys.executable, "-m", "app", "demo", "--no-gui", "--voxel", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    return out


def test_the_readme_names_only_commands_that_exist() -> None:
    lines = using_it_lines()
    assert all(line.split()[0] in ("segmend", "napari") for line in lines), lines
    assert any(line.startswith("segmend bodies") for line in lines)


def test_using_it_runs_as_written_on_the_demo(demo: Path, tmp_path: Path) -> None:
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "segmend").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m app "$@"\n')
    (shim / "segmend").chmod(0o755)
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(demo, folder / "out.h5")
    env = {
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
    }
    ran = 0
    for line in using_it_lines():
        if opens_a_window(line):
            continue
        run = subprocess.run(
            ["bash", "-o", "pipefail", "-c", line],
            capture_output=True, text=True, cwd=folder, env=env, timeout=600,
            stdin=subprocess.DEVNULL,
        )
        assert run.returncode == 0, (line, run.stderr)
        expected = expected_output(line)
        if expected is not None:
            assert json.loads(run.stdout.splitlines()[-1]) == expected, (line, run.stdout)
        ran += 1
    assert ran >= 15
    assert dataset_info(folder / "lm.h5")["mode"] == "labelmap"  # the demo's default mode
    assert dataset_info(folder / "out.h5")["mode"] == "voxel"


def test_using_it_starts_with_the_default_demo() -> None:
    """The block opens on the demo as ``segmend demo`` makes it (labelmap mode, no
    mode option); the voxel-mode demo is asked for by name."""
    demos = [line.split("  #")[0].split() for line in using_it_lines()
             if line.startswith("segmend demo")]
    assert "--voxel" not in demos[0] and "--labelmap" not in demos[0]
    assert any("--voxel" in words for words in demos[1:])
