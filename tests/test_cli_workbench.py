"""What a new proofreader needs from the command line: ``segmend bodies``,
``segmend rle``, ``segmend split --box/--mask``, help text on every argument,
and a flush that fails at once without a broker."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.cli import make_parser
from app.kernels.rle import parse_rles, rles_to_mask
from app.model.bulk.build import build_pyramid
from app.model.dataset import open_dataset

REPO = Path(__file__).resolve().parents[1]
BLOCK = 16


def segmend(*args: object, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``segmend ARGS`` in a subprocess (the guard timeout is not an assertion)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "app", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=600,
    )


def assert_refused(run: subprocess.CompletedProcess[str], *words: str) -> None:
    assert run.returncode != 0 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("segmend: error: "), run.stderr
    for word in words:
        assert word in run.stderr, (word, run.stderr)


@pytest.fixture
def pyramid(tmp_path: Path, real_sources: tuple[str, str]) -> Path:
    """The real crop as a pyramid of 16³ blocks, without a label index yet."""
    labels, image = real_sources
    return build_pyramid(labels, tmp_path / "p.h5", image=image, block_size=(BLOCK,) * 3)


@pytest.fixture
def indexed(pyramid: Path) -> Path:
    """The pyramid with its label index built (``segmend reindex``)."""
    run = segmend("reindex", pyramid)
    assert run.returncode == 0, run.stderr
    return pyramid


def s0(path: Path) -> NDArray[np.uint64]:
    with h5py.File(path, "r") as f:
        return np.asarray(f["labels/s0"][...])


def expected_bodies(labels: NDArray[np.uint64]) -> list[dict[str, int]]:
    """(label, voxels, blocks) of every body, by a full count."""
    voxels: dict[int, int] = {}
    blocks: dict[int, int] = {}
    nz, ny, nx = labels.shape
    for z in range(0, nz, BLOCK):
        for y in range(0, ny, BLOCK):
            for x in range(0, nx, BLOCK):
                block = labels[z : z + BLOCK, y : y + BLOCK, x : x + BLOCK]
                values, counts = np.unique(block[block > 0], return_counts=True)
                for v, c in zip(values.tolist(), counts.tolist(), strict=True):
                    voxels[v] = voxels.get(v, 0) + c
                    blocks[v] = blocks.get(v, 0) + 1
    return [{"label": v, "voxels": voxels[v], "blocks": blocks[v]} for v in voxels]


def folder_listing(folder: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


# ------------------------------------------------------------------------- bodies


def test_bodies_lists_the_index_largest_first_ties_by_label(indexed: Path) -> None:
    truth = expected_bodies(s0(indexed))
    run = segmend("bodies", indexed, "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == sorted(truth, key=lambda b: (-b["voxels"], b["label"]))

    run = segmend("bodies", indexed, "--by", "blocks", "--top", 5, "--json")
    assert json.loads(run.stdout) == sorted(truth, key=lambda b: (-b["blocks"], b["label"]))[:5]


def test_bodies_prints_a_table_for_people(indexed: Path) -> None:
    run = segmend("bodies", indexed, "--top", 3)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["label", "voxels", "blocks"] and len(lines) == 4
    first = max(expected_bodies(s0(indexed)), key=lambda b: (b["voxels"], -b["label"]))
    assert lines[1].split() == [str(first["label"]), f"{first['voxels']:,}", str(first["blocks"])]


def test_bodies_of_a_dataset_without_index_says_how_to_build_it(pyramid: Path) -> None:
    before = folder_listing(pyramid.parent)
    assert_refused(segmend("bodies", pyramid), str(pyramid), "no label index", "segmend reindex")
    assert folder_listing(pyramid.parent) == before


def test_bodies_reads_beside_the_index_only(indexed: Path) -> None:
    """The API: ``ds.bodies`` on a read-only dataset equals the label index's sizes."""
    with open_dataset(indexed, "r") as ds:
        bodies = ds.bodies(top=4)
        assert [b.voxels for b in bodies] == [ds.label_size(b.label) for b in bodies]
        assert [b.blocks for b in bodies] == [len(ds.label_blocks(b.label)) for b in bodies]


# ---------------------------------------------------------------------------- rle


def test_rle_of_a_box_is_its_rows(pyramid: Path, tmp_path: Path) -> None:
    out = tmp_path / "box.rle"
    run = segmend("rle", pyramid, "--box", "2:4,5:8,10:20", "-o", out, "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["voxels"] == 2 * 3 * 10
    spans = parse_rles(out.read_bytes())
    expected = [[10, y, z, 10] for z in (2, 3) for y in (5, 6, 7)]
    assert spans.tolist() == expected


def test_rle_of_a_mask_at_an_offset_is_the_mask(pyramid: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    mask = rng.random((5, 6, 7)) < 0.4
    np.save(tmp_path / "m.npy", mask)
    out = tmp_path / "m.rle"
    run = segmend("rle", pyramid, "--mask", tmp_path / "m.npy", "--offset", "3,4,5", "-o", out)
    assert run.returncode == 0, run.stderr
    spans = parse_rles(out.read_bytes())
    assert np.array_equal(rles_to_mask(spans, (3, 4, 5), mask.shape), mask)
    assert int(spans[:, 3].sum()) == int(mask.sum())


@pytest.mark.parametrize(
    ("region", "words"),
    [
        (["--box", "0:10,0:10,0:1000"], ["not inside the volume", "x must run within"]),
        (["--box", "5:5,0:1,0:1"], ["not inside the volume"]),
        (["--box", "0:1,0:1"], ["Z0:Z1,Y0:Y1,X0:X1"]),
        (["--mask", "{empty}"], ["empty"]),
        (["--mask", "{flat}"], ["must be 3D"]),
        (["--mask", "{small}", "--offset", "1000,0,0"], ["not inside the volume"]),
        (["--box", "0:1,0:1,0:1", "--offset", "1,1,1"], ["--offset applies to --mask only"]),
        (["--mask", "{missing}"], ["cannot read mask"]),
    ],
)
def test_rle_refuses_regions_it_cannot_write(
    pyramid: Path, tmp_path: Path, region: list[str], words: list[str]
) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    np.save(masks / "empty.npy", np.zeros((2, 2, 2), bool))
    np.save(masks / "flat.npy", np.ones((2, 2), bool))
    np.save(masks / "small.npy", np.ones((2, 2, 2), bool))
    region = [r.format(**{n: masks / f"{n}.npy" for n in ("empty", "flat", "small", "missing")})
              for r in region]
    before = folder_listing(tmp_path)
    assert_refused(segmend("rle", pyramid, *region, "-o", tmp_path / "r.rle"), *words)
    assert folder_listing(tmp_path) == before


# -------------------------------------------------------------------------- split


def _biggest_in(labels: NDArray[np.uint64], box: tuple[slice, ...]) -> int:
    values, counts = np.unique(labels[box][labels[box] > 0], return_counts=True)
    return int(values[np.argmax(counts)])


def test_split_by_box_mask_and_rles_agree(pyramid: Path, tmp_path: Path) -> None:
    """The same region given as a box, as a mask at an offset and as RLEs from
    ``segmend rle`` splits the same voxels off."""
    labels = s0(pyramid)
    box = (slice(4, 12), slice(6, 20), slice(3, 17))
    target = _biggest_in(labels, box)
    mask = np.ones((8, 14, 14), bool)
    np.save(tmp_path / "m.npy", mask)
    made = segmend("rle", pyramid, "--box", "4:12,6:20,3:17", "-o", tmp_path / "r.rle")
    assert made.returncode == 0, made.stderr
    ways = {
        "box": ["--box", "4:12,6:20,3:17"],
        "mask": ["--mask", tmp_path / "m.npy", "--offset", "4,6,3"],
        "rles": ["--rles", tmp_path / "r.rle"],
    }
    expected = labels.copy()
    inside = np.zeros(labels.shape, bool)
    inside[box] = True
    for name, region in ways.items():
        copy = tmp_path / f"{name}.h5"
        copy.write_bytes(pyramid.read_bytes())
        run = segmend("split", copy, target, *region)
        assert run.returncode == 0, (name, run.stderr)
        new = json.loads(run.stdout)["label"]
        expected[(labels == target) & inside] = new
        with open_dataset(copy, "r") as ds:
            assert np.array_equal(ds.labels(0)[...], expected), name


def test_split_takes_one_region_only(pyramid: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", np.ones((1, 1, 1), bool))
    before = folder_listing(tmp_path)
    run = segmend("split", pyramid, 1, "--box", "0:1,0:1,0:1", "--mask", tmp_path / "m.npy")
    assert_refused(run, "not allowed with argument")
    assert_refused(segmend("split", pyramid, 1), "one of the arguments --rles --box --mask")
    assert folder_listing(tmp_path) == before


# --------------------------------------------------------------------------- help


def _parsers(
    parser: argparse.ArgumentParser, name: str = "segmend"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for word, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {word}")


def test_every_argument_of_every_command_has_help() -> None:
    missing = [
        f"{name}: {action.option_strings or action.dest}"
        for name, parser in _parsers(make_parser())
        for action in parser._actions
        if not action.help
    ]
    assert missing == []


def test_top_level_help_documents_the_app_and_commands() -> None:
    run = segmend("--help")
    assert run.returncode == 0
    for words in ("segmend [FILE]", "--screenshot", "--select LABEL", "bodies", "rle"):
        assert words in run.stdout, words


def test_edits_say_their_json_flag_changes_nothing() -> None:
    run = segmend("merge", "--help")
    assert "always print their results as JSON lines" in " ".join(run.stdout.split())


# ------------------------------------------------------------------------- events


def test_flush_without_a_broker_fails_at_once_naming_it(pyramid: Path) -> None:
    """Port 9 (discard) is closed: the flush fails at its first attempt, not at
    its ``--timeout`` (here an hour; the subprocess guard would stop it first)."""
    with open_dataset(pyramid, "r+") as ds:
        a, b = (int(v) for v in np.unique(ds.labels(0)[...])[1:3])
        ds.merge(a, [b])
    run = segmend("events", "flush", pyramid, "--kafka", "127.0.0.1:9", "--timeout", 3600)
    assert_refused(run, "127.0.0.1:9", "still waiting")


def test_edits_take_the_user_name_from_the_settings_file(
    indexed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings dialog's ``[user] name`` (the one TOML file) names the
    proofreader of command-line edits too; ``--user`` wins."""
    config = tmp_path / "config.toml"
    config.write_text('[user]\nname = "alice"\n\n[workers]\ncount = 1\n')
    monkeypatch.setenv("SEGMEND_CONFIG", str(config))
    a, b, c = (int(v) for v in np.unique(s0(indexed))[1:4])
    assert segmend("merge", indexed, a, b).returncode == 0
    assert segmend("merge", indexed, a, c, "--user", "bob").returncode == 0
    log = segmend("log", indexed, "--format", "dvid").stdout.splitlines()
    assert [json.loads(line)["User"] for line in log] == ["alice", "bob"]
    config.write_text("[user]\nname = 7\n")
    assert_refused(segmend("merge", indexed, a, b), str(config), "name")
