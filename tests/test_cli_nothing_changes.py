"""Every command, refused, changes nothing: a missing file, a plain HDF5 that is
not a pyramid, a read-only pyramid, a bad argument.

The commands are those of the parser (a new command is covered as soon as it
is registered); their command lines are made from their arguments' names.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from app.cli import make_parser
from app.model.bulk.build import build_pyramid
from tests.test_cli_errors import commands

REPO = Path(__file__).resolve().parents[1]
ALL_COMMANDS = sorted(commands(make_parser()))
MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096
Listing = dict[str, tuple[bool, int, int]]


def subparser(words: tuple[str, ...]) -> argparse.ArgumentParser:
    """The parser of the command ``words`` (``("events", "tail")``)."""
    parser: argparse.ArgumentParser = make_parser()
    for word in words:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[word]
    return parser


def value_for(action: argparse.Action, file: Path, inputs: Path, out_dir: Path) -> list[str]:
    """A plausible value of a required argument: the dataset is ``file``, outputs
    go to ``out_dir``, other input files are in ``inputs``."""
    values = {
        "file": str(file),
        "src": str(file),
        "out": str(out_dir / "out.h5"),
        "ops": str(inputs / "ops.jsonl"),
        "ref": "0" * 64,
        "rles": str(inputs / "region.rle"),
        "block": "0,0,0",
        "box": "0:1,0:1,0:1",
        "mask": str(inputs / "mask.npy"),
        "label": "1",
        "body": "1",
        "name": "synapses",
        "elements": str(inputs / "elements.json"),
        "point": "1,1,1",
        "old": "1,1,1",
        "new": "2,2,2",
        "tag": "t",
    }
    if action.dest in values:
        return [values[action.dest]]
    if action.type is int:
        return ["1"]
    raise AssertionError(f"no value for {action.dest!r}: teach value_for() this argument")


def command_line(words: tuple[str, ...], file: Path, inputs: Path, out_dir: Path) -> list[str]:
    """``words`` with every required argument (positionals, required options and
    one option of each required group); the positionals of a command that has
    subcommands come before the subcommand's word (``annotations FILE NAME post``)."""
    parser = subparser(words)
    argv = []
    for depth, word in enumerate(words):
        argv.append(word)
        if depth < len(words) - 1:
            argv += [v for a in subparser(words[:depth + 1])._actions
                     if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
                     for v in value_for(a, file, inputs, out_dir)]
    for action in parser._actions:
        if not action.option_strings and action.nargs not in ("?", "*"):
            argv += value_for(action, file, inputs, out_dir)
        elif action.option_strings and action.required:
            argv += [action.option_strings[0], *value_for(action, file, inputs, out_dir)]
    for group in parser._mutually_exclusive_groups:
        if group.required:
            first = group._group_actions[0]
            argv += [first.option_strings[0], *value_for(first, file, inputs, out_dir)]
    if words == ("demo",):  # never the window, never the user's demo
        argv += ["--no-gui", "--out", str(file)]
    if words == ("export",):
        argv[2] = str(out_dir / "out.zarr")
    return argv


def listing(*folders: Path) -> Listing:
    """Every file and folder under ``folders``: (is a folder, size, mtime)."""
    seen: Listing = {}
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            for name in dirs + files:
                path = Path(root, name)
                st = path.lstat()
                seen[str(path)] = (path.is_dir(), st.st_size if not path.is_dir() else 0,
                                   st.st_mtime_ns)
    return seen


def segmend(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "app", *argv],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=600,
    )


def assert_one_line_error(run: subprocess.CompletedProcess[str]) -> None:
    assert run.returncode != 0, run.stdout
    err = run.stderr
    assert err.count("\n") == 1 and err.startswith("segmend: error:"), err
    assert "object at 0x" not in err, err


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory: pytest.TempPathFactory, real_sources: tuple[str, str]) -> Path:
    """A small real pyramid (16³ blocks), copied by each test."""
    labels, image = real_sources
    out = tmp_path_factory.mktemp("pyramid") / "small.h5"
    return build_pyramid(labels, out, image=image, block_size=(16, 16, 16))


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """The other inputs commands need: an op, a region (RLEs), elements."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "ops.jsonl").write_text('{"Action": "merge", "Target": 1, "Labels": [2]}\n')
    (folder / "region.rle").write_bytes(bytes([0, 3, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])
                                        + np.array([0, 0, 0, 1], "<i4").tobytes())
    np.save(folder / "mask.npy", np.ones((1, 1, 1), bool))
    (folder / "elements.json").write_text('[{"Pos": [1, 1, 1], "Kind": "PreSyn"}]')
    return folder


def _libc_call(name: str, *args: object) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return 0 if getattr(libc, name)(*args) == 0 else ctypes.get_errno()


@pytest.fixture
def read_only_pyramid(tmp_path: Path, pyramid: Path) -> Iterator[Path]:
    """The pyramid (0444) in a folder (0555) that even root cannot write: the
    folder is also bind-mounted read-only (skipped where mounting is not
    permitted and permissions do not bind this user)."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(pyramid, folder / "small.h5")
    (folder / "small.h5").chmod(0o444)
    folder.chmod(0o555)
    view = tmp_path / "view"
    view.mkdir()
    mounted = False
    if os.geteuid() == 0:
        err = _libc_call("mount", bytes(folder), bytes(view), None, MS_BIND, None)
        if err:
            folder.chmod(0o755)
            pytest.skip(f"root ignores permissions and bind mounts fail here ({os.strerror(err)})")
        mounted = True
        assert _libc_call("mount", None, bytes(view), None,
                          MS_BIND | MS_REMOUNT | MS_RDONLY, None) == 0
    try:
        yield (view if mounted else folder) / "small.h5"
    finally:
        if mounted:
            assert _libc_call("umount2", bytes(view), 0) == 0
        folder.chmod(0o755)


def _check_refused(argv: list[str], cwd: Path, *watched: Path) -> None:
    before = listing(*watched)
    run = segmend(argv, cwd)
    assert_one_line_error(run)
    assert listing(*watched) == before, argv


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=" ".join)
def test_a_missing_file_is_refused_changing_nothing(
    command: tuple[str, ...], tmp_path: Path, inputs: Path
) -> None:
    if command == ("demo",):
        pytest.skip("demo makes the file it is given: a missing one is its normal case")
    folder = tmp_path / "data"
    folder.mkdir()
    argv = command_line(command, folder / "missing.h5", inputs, folder)
    _check_refused(argv, folder, tmp_path)


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=" ".join)
def test_a_plain_hdf5_is_refused_changing_nothing(
    command: tuple[str, ...], tmp_path: Path, inputs: Path
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    plain = folder / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["values"] = np.linspace(0.0, 1.0, 10)
        f.create_group("labels")
    argv = command_line(command, plain, inputs, folder)
    _check_refused(argv, folder, tmp_path)


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=" ".join)
def test_a_read_only_pyramid_reads_or_is_refused_changing_nothing(
    command: tuple[str, ...], tmp_path: Path, inputs: Path, read_only_pyramid: Path
) -> None:
    """Readers may succeed; a command that writes (an edit, an output in the
    read-only folder) is refused; either way nothing changes."""
    folder = read_only_pyramid.parent
    argv = command_line(command, read_only_pyramid, inputs, folder)
    before = listing(tmp_path)
    run = segmend(argv, tmp_path)
    reads = command == ("maxlabel",)  # without VALUE it only reads
    if run.returncode != 0 or (subparser(command).get_default("mutating") and not reads):
        assert_one_line_error(run)
    assert "object at 0x" not in run.stdout + run.stderr
    assert listing(tmp_path) == before, argv


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=" ".join)
def test_a_bad_argument_is_refused_changing_nothing(
    command: tuple[str, ...], tmp_path: Path, inputs: Path, pyramid: Path
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(pyramid, folder / "small.h5")
    argv = command_line(command, folder / "small.h5", inputs, folder)
    _check_refused([*argv, "--no-such-option"], folder, tmp_path)


@pytest.mark.parametrize(
    "seeds",
    [
        ["--seeds", "0,0,1000", "--seeds", "1,1,1"],  # outside the volume
        ["--seeds", "1,1,1", "--seeds", "1,1,1"],  # in two groups
        ["--seeds", "1,1,1"],  # one group
        ["--seeds", "1,1,1", "--seeds", "1,1,2", "--new-label", "5", "--seeds", "1,1,3"],
    ],
    ids=["outside", "twice", "one-group", "new-label-of-3"],
)
def test_a_bad_seed_is_refused_changing_nothing(
    seeds: list[str], tmp_path: Path, pyramid: Path
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(pyramid, folder / "small.h5")
    argv = ["split", str(folder / "small.h5"), "1", *seeds]
    _check_refused(argv, folder, tmp_path)


def test_a_seed_off_the_body_is_refused_changing_nothing(tmp_path: Path, pyramid: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(pyramid, folder / "small.h5")
    argv = ["split", str(folder / "small.h5"), "1", "--seeds", "1,1,1", "--seeds", "2,2,2"]
    before = listing(tmp_path)
    run = segmend(argv, folder)
    assert_one_line_error(run)
    assert "seed 1,1,1 is on label" in run.stderr and "not on body 1" in run.stderr
    assert listing(tmp_path) == before
