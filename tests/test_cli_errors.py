"""Bad arguments and bad files: one line ``segmend: error: ...``, never a traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - registers the Blosc filter, as any reader of the file does
import numpy as np
import pytest

from app.cli import make_parser
from app.model.events.outbox import create_outbox_schema
from app.model.events.settings import KafkaConfigError, load_settings
from app.model.journal.sidecar import journal_path, sidecar_dir
from app.model.storage.pyramid_file import write_empty_pyramid
from tests.conftest import connect_journal
from tests.conftest import run_cli as run

REPO = Path(__file__).resolve().parents[1]


def assert_one_line_error(err: str, *words: str) -> None:
    assert err.count("\n") == 1 and err.startswith("segmend: error: "), err
    assert "usage:" not in err and "Traceback" not in err
    for word in words:
        assert word in err, (word, err)


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Every command of ``parser``, as the words that name it (``("events", "tail")``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name)) if _has_commands(sub) else [(*path, name)]


def _has_commands(parser: argparse.ArgumentParser) -> bool:
    return any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


ALL_COMMANDS = sorted(commands(make_parser()))


# ---------------------------------------------------------------- 1: argparse errors


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=" ".join)
def test_unknown_option_is_one_line_exit_2(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *command, "--no-such-option")
    assert code == 2 and out == ""
    assert_one_line_error(err)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--no-such-option"], ["unrecognized arguments: --no-such-option"]),
        (["info"], ["info: ", "required: file"]),
        (["build", "a.npy"], ["build: ", "required: out"]),
        (["merge", "f.h5", "x"], ["merge: ", "invalid int value: 'x'"]),
        (["events"], ["events: ", "required"]),
        (["events", "tail"], ["events tail: ", "required: file"]),
        (["events", "flush", "f.h5", "--timeout", "soon"], ["not a number"]),
        (["blob", "get", "f.h5"], ["blob get: ", "required: ref"]),
        (["nosuchcommand", "--select", "x"], ["invalid int value: 'x'"]),
    ],
)
def test_argument_errors_are_one_line_exit_2(
    args: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert_one_line_error(err, *words)


@pytest.mark.parametrize("command", [(), ("build",), ("events", "tail")], ids=repr)
def test_help_still_prints_usage(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *command, "--help")
    assert code == 0 and out.startswith("usage: segmend") and err == ""


# ---------------------------------------------------------------- 2: a closed pipe


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["text", "json"])
def test_stdout_closed_early_ends_quietly(small_pyramid: Path, json_flag: list[str]) -> None:
    """``segmend info FILE | head -1``, with the reader gone before segmend writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "app", "info", str(small_pyramid), *json_flag],
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=REPO,
            timeout=600,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == b""


def test_stdout_closed_under_apply_stops_it_and_says_so(
    small_pyramid: Path, tmp_path: Path
) -> None:
    """``segmend apply FILE OPS | head -0``: no line goes by unsaid, no exit 0."""
    with h5py.File(small_pyramid, "r") as f:
        labels = [int(v) for v in np.unique(f["labels/s0"][...])[1:5]]
    ops = tmp_path / "ops.jsonl"
    ops.write_text(
        "\n".join(f'{{"Action": "merge", "Target": {labels[0]}, "Labels": [{v}]}}'
                  for v in labels[1:])
    )
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "app", "apply", str(small_pyramid), str(ops)],
            stdout=write_end, stderr=subprocess.PIPE, cwd=REPO, timeout=600,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 1
    assert_one_line_error(proc.stderr.decode(), "standard output closed")
    log = subprocess.run(
        [sys.executable, "-m", "app", "log", str(small_pyramid)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert len(log.stdout.splitlines()) == 1  # the first line was applied, then it stopped


# ---------------------------------------------------------------- 3: integers for SQLite


def test_events_tail_count_is_bounded_to_what_sqlite_takes(
    small_pyramid: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = journal_path(small_pyramid)
    journal.parent.mkdir()
    with connect_journal(journal) as conn:
        create_outbox_schema(conn)
    conn.close()
    code, out, err = run(capsys, "events", "tail", small_pyramid, "-n", 10**20)
    assert code == 2 and out == ""
    assert_one_line_error(err, "-n", "between 1 and 9223372036854775807")
    code, out, err = run(capsys, "events", "tail", small_pyramid, "-n", 2**63 - 1, "--json")
    assert (code, out, err) == (0, "[]\n", "")


@pytest.mark.parametrize("timeout", ["nan", "inf", "-1", "1e300"])
def test_flush_timeout_must_be_a_wait_threads_can_make(
    small_pyramid: Path, timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run(capsys, "events", "flush", small_pyramid, "--timeout", timeout)
    assert code == 2
    assert_one_line_error(err, "--timeout", "positive number of seconds")


# ---------------------------------------------------------------- 4: Kafka float settings


@pytest.mark.parametrize("key", ["connect_timeout_s", "request_timeout_s", "max_backoff_s"])
@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e300"])
def test_kafka_float_settings_must_be_finite(tmp_path: Path, key: str, value: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[kafka]\nbootstrap_servers = "localhost:9"\n{key} = {value}\n')
    with pytest.raises(KafkaConfigError) as err:
        load_settings(config)
    assert str(config) in str(err.value) and key in str(err.value)


def test_infinite_connect_timeout_is_refused_by_events_status(
    small_pyramid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[kafka]\nbootstrap_servers = "localhost:9"\nconnect_timeout_s = inf\n')
    code, out, err = run(capsys, "events", "status", small_pyramid, "--config", config)
    assert code == 1 and out == ""
    assert_one_line_error(err, str(config), "connect_timeout_s", "got inf")


# ---------------------------------------------------------------- 5: build's arguments


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--levels", "50"], 1, ["levels must be between 1 and 4", "got 50"]),
        (["--levels", "0"], 2, ["--levels", "at least 1"]),
        (["--levels", "two"], 2, ["--levels", "not an integer"]),
        (["--voxel-size", "nan"], 2, ["--voxel-size", "finite positive"]),
        (["--voxel-size", "inf"], 2, ["--voxel-size", "finite positive"]),
        (["--voxel-size", "4,4,-inf"], 2, ["--voxel-size", "finite positive"]),
        (["--block-size", "8.5"], 2, ["--block-size", "even integers"]),
        (["--block-size", "8,x,8"], 2, ["--block-size", "even integers"]),
        (["--block-size", str(2**64)], 2, ["--block-size", "from 2 to 1024"]),
        (["--block-size", "2048"], 2, ["--block-size", "from 2 to 1024"]),
        (["--workers", "0"], 2, ["--workers", "at least 1"]),
    ],
)
def test_build_refuses_bad_levels_voxel_and_block_sizes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    words: list[str],
) -> None:
    src = tmp_path / "v.npy"
    np.save(src, np.arange(20 * 30 * 40, dtype=np.uint32).reshape(20, 30, 40))
    out = tmp_path / "v.h5"
    got, text, err = run(capsys, "build", src, out, "--block-size", "8", *args)
    assert got == code and text == ""
    assert_one_line_error(err, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.npy"]


def test_build_takes_every_level_up_to_the_natural_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "v.npy"
    np.save(src, np.arange(20 * 30 * 40, dtype=np.uint32).reshape(20, 30, 40))
    for levels in (1, 4):
        code, _out, err = run(
            capsys, "build", src, tmp_path / "v.h5", "--block-size", "8", "--levels", levels
        )
        assert code == 0, err
        with h5py.File(tmp_path / "v.h5", "r") as f:
            assert len(f["labels"]) == levels


# ---------------------------------------------------------------- 6: non-label dtypes


def write_small_empty_pyramid(path: Path, label_dtype: str) -> None:
    """An empty 8³ pyramid of 4³ blocks with labels of ``label_dtype``."""
    write_empty_pyramid(
        path,
        (8, 8, 8),
        block_size=(4, 4, 4),
        rule="labelmap",
        levels=None,
        compression="none",
        label_dtype=label_dtype,
        image_dtype=None,
        voxel_size_nm=(1.0, 1.0, 1.0),
        created_by="test",
    )


@pytest.fixture(params=["float32", "int8", "uint8"])
def odd_dtype_pyramid(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, str]:
    """A file with segmend's format attributes whose label levels hold ``dtype``."""
    dtype = str(request.param)
    path = tmp_path / f"{dtype}.h5"
    write_small_empty_pyramid(path, "uint64")
    with h5py.File(path, "r+") as f:
        for name in list(f["labels"]):
            shape = f["labels"][name].shape
            del f["labels"][name]
            data = np.arange(np.prod(shape)).reshape(shape) % 7 + 1
            f["labels"].create_dataset(name, data=data.astype(dtype), chunks=(4, 4, 4))
    return path, dtype


@pytest.mark.parametrize("command", [["info"], ["verify"], ["merge", "1", "2"]], ids=str)
def test_non_label_dtype_is_a_format_error_naming_file_and_dtype(
    odd_dtype_pyramid: tuple[Path, str], command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, dtype = odd_dtype_pyramid
    before = path.read_bytes()
    code, out, err = run(capsys, command[0], path, *command[1:])
    assert code == 1 and out == ""
    assert_one_line_error(err, str(path), dtype)
    assert path.read_bytes() == before


def test_an_empty_pyramid_of_non_label_dtype_is_not_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="labels must be integers of 2 bytes or more"):
        write_small_empty_pyramid(tmp_path / "f.h5", "float32")
    assert not (tmp_path / "f.h5").exists()


@pytest.mark.parametrize(
    "command",
    [["maxlabel", "2", "--", "split", "1", "--box", "0:8,0:8,0:2", "--new-label", "70000"],
     ["maxlabel", "2", "--", "split-coarse", "1", "--block", "0,0,0", "--new-label", "65536"],
     ["maxlabel", "65535", "--", "split", "2", "--box", "0:8,0:8,4:6"]],
    ids=["given", "coarse", "allocated"],
)
def test_a_new_label_beyond_a_uint16_pyramid_is_refused(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Labels of 2 bytes: a split into a label they cannot hold is one line and
    changes nothing."""
    path = tmp_path / "u16.h5"
    write_small_empty_pyramid(path, "uint16")
    with h5py.File(path, "r+") as f:
        for name in f["labels"]:
            level = f["labels"][name]
            half = level.shape[2] // 2 or 1
            level[:, :, :half], level[:, :, half:] = 1, 2
    # a first edit (opening a new file for writing writes to it), then the refused one
    first, command = command[: command.index("--")], command[command.index("--") + 1 :]
    assert run(capsys, first[0], path, *first[1:])[0] == 0
    before = path.read_bytes()
    code, out, err = run(capsys, command[0], path, *command[1:])
    assert code == 1 and out == ""
    assert_one_line_error(err, "uint16", "at most 65535")
    assert path.read_bytes() == before


# ------------------------------------------------- damaged attributes and journals


@pytest.mark.parametrize("command", ["info", "verify", "log"])
def test_a_bad_block_size_attribute_is_a_format_error(
    small_pyramid: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with h5py.File(small_pyramid, "r+") as f:
        f.attrs["block_size"] = np.zeros(3, np.int64)
    code, out, err = run(capsys, command, small_pyramid)
    assert code == 1 and out == ""
    assert_one_line_error(err, str(small_pyramid), "block_size")


@pytest.mark.parametrize("command", ["info", "verify", "log"])
def test_a_journal_that_is_not_sqlite_is_a_format_error(
    small_pyramid: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sidecar_dir(small_pyramid).mkdir()
    journal_path(small_pyramid).write_bytes(b"not a database, just bytes" * 100)
    before = small_pyramid.read_bytes()
    code, out, err = run(capsys, command, small_pyramid)
    assert code == 1 and out == ""
    assert_one_line_error(err, "damaged journal")
    assert small_pyramid.read_bytes() == before
