"""Typed mutation kinds: the records are the journal's JSON exactly, each kind
says what it is, and a new kind needs only its own module (here: this file)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from numpy.typing import NDArray

from app.kernels import encode_rles, mask_to_rles
from app.model.dataset import Dataset, open_dataset
from app.model.errors import InvalidMutationError
from app.model.events.gotime import parse_go_time
from app.model.events.outbox import tail
from app.model.geometry import Coord
from app.model.journal.sidecar import journal_path
from app.model.mutations import Mutation, apply_line, is_known, record_from_json, register
from app.model.mutations.base import (
    BlockChange,
    EditContext,
    Message,
    Outcome,
    Plan,
    stamp_of,
    touched_of,
)
from app.model.mutations.checks import blocks_of
from tests.conftest import assert_matches_model, biggest


def box_rles(start: tuple[int, int, int], stop: tuple[int, int, int]) -> bytes:
    mask = np.ones(tuple(b - a for a, b in zip(start, stop, strict=True)), bool)
    return encode_rles(mask_to_rles(mask, start))


def session(ds: Dataset, model: NDArray[np.uint64]) -> None:
    """One of every kind and of every inverse, undo and redo included."""
    a, b, c, d = biggest(model, 4)
    ds.merge(a, [b, c])
    ds.split(a, box_rles((0, 0, 0), (20, 70, 101)))
    ds.split_coarse(d, [list(next(iter(ds.label_blocks(d))))])
    ds.undo()  # the split-coarse
    ds.undo()  # the split
    ds.undo()  # the merge
    ds.redo()  # the merge
    ds.redo()  # the split
    ds.next_label(3)
    ds.set_max_label(ds.max_label + 10)


def test_every_record_is_its_journal_json(ds: Dataset, model: NDArray[np.uint64]) -> None:
    session(ds, model)
    rows = ds.mutations()
    kinds = [type(record_from_json(row)).__name__ for row in rows]
    assert kinds == ["Merge", "Split", "SplitCoarse", "SplitCoarseUndo", "SplitUndo",
                     "MergeUndo", "Merge", "Split", "NextLabel", "MaxLabel"]
    head = ["Action", "MutationID", "UUID", "Timestamp"]
    split = ["Target", "NewLabel", "TargetSize", "NewLabelSize", "App", "TouchedBlocks", "Split"]
    undo = ["Undoes", "Of", "Target", "Labels", "TargetSize"]
    done = ["Completed"]  # the journal's note of when a mutation with voxels completed
    keys = [  # the journal's field order, as segmend has always written it
        ["Target", "Labels", "TargetSize", "App", "TouchedBlocks", *done],
        [*split, *done],
        ["Blocks", *split, *done],
        [*undo, "App", "TouchedBlocks", *done],
        [*undo, "App", "TouchedBlocks", *done],
        [*undo, "LabelSizes", "App", "TouchedBlocks", "MutationIDs", "Splits", *done],
        ["Redoes", "Target", "Labels", "TargetSize", "App", "TouchedBlocks", *done],
        ["Redoes", *split, *done],
        ["Start Label", "End Label", "App"],
        ["MaxLabel", "App"],
    ]
    for row, fields in zip(rows, keys, strict=True):
        assert list(row) == head + fields
        record = record_from_json(row)
        recorded = {k: v for k, v in row.items() if k != "Completed"}
        assert record.to_json() == recorded and list(record.to_json()) == list(recorded)
        if "Completed" in row:
            assert parse_go_time(row["Completed"]) >= parse_go_time(row["Timestamp"])


def test_history_lines_say_what_each_mutation_did(ds: Dataset, model: NDArray[np.uint64]) -> None:
    a, b, c, _ = biggest(model, 4)
    session(ds, model)
    lines = [record_from_json(row).summary(limit=1) for row in ds.mutations()]
    split_label = ds.mutations()[1]["NewLabel"]
    assert lines[0] == f"#1  merge {min(b, c)} +1 more into {a}"
    assert lines[1] == f"#2  split {a} -> new {split_label}"
    assert lines[3].endswith("undo #3 (splitcoarse)")
    assert lines[5] == "#6  undo #1 (merge)"
    assert lines[6].endswith(f"into {a} (redo of #1)")
    assert lines[-1].endswith("post-maxlabel")


def test_unknown_records_and_lines_are_refused(ds: Dataset) -> None:
    with pytest.raises(InvalidMutationError, match="unknown mutation 'explode'"):
        record_from_json({"Action": "explode"})
    with pytest.raises(InvalidMutationError, match=(
            r"unknown Action 'explode'; expected merge, split, splitcoarse, cleave, "
            r"split-supervoxel, undo, redo, "
            r"post-nextlabel or post-maxlabel$")):
        apply_line(ds, {"Action": "explode"})
    assert not is_known({"Action": "explode"}) and is_known({"Action": "undo", "Of": "merge"})


# ------------------------------------------------------------------ a toy kind
@register
@dataclass(frozen=True)
class Swap(Mutation):
    """Two bodies trade their voxels (its own inverse), defined only here."""

    action: ClassVar[str] = "toy-swap"
    first: int
    second: int

    @classmethod
    def plan(cls, ctx: EditContext, first: int, second: int) -> Plan:
        blocks = {f: blocks_of(ctx, f, "label") for f in (first, second)}
        coords = sorted(set(blocks[first]) | set(blocks[second]))

        def transform(coord: Coord) -> BlockChange:
            block = ctx.read_block(coord)
            new = block.copy()
            new[block == first] = second
            new[block == second] = first
            return BlockChange(coord, new, int(np.isin(block, [first, second]).sum()))

        def finish(changes: list[BlockChange]) -> Outcome:
            rows = [(label, c, blocks[other].get(c, 0))
                    for label, other in ((first, second), (second, first)) for c in coords]
            return Outcome(rows, lambda rec: cls(rec.stamp, rec.touched, first, second))

        return Plan(coords, transform, finish)

    def fields(self) -> dict[str, Any]:
        return {"First": self.first, "Second": self.second}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Swap:
        return cls(stamp_of(record), touched_of(record), record["First"], record["Second"])

    def labels_held(self) -> list[int]:
        return [self.first, self.second]

    def replay_transform(self, ctx: EditContext) -> Callable[[Coord], BlockChange]:
        transform = self.plan(ctx, self.first, self.second).transform
        assert transform is not None
        return transform

    def undo_plan(self, ctx: EditContext) -> Plan:
        return self.plan(ctx, self.first, self.second)

    def redo_plan(self, ctx: EditContext) -> Plan:
        return self.plan(ctx, self.first, self.second)

    def start_messages(self) -> list[Message]:
        return [{"Action": "toy-swap", "Labels": [self.first, self.second], **self.common()}]

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        return {"Action": self.action, **self.log_head(), "First": self.first,
                "Second": self.second}

    def describe(self, limit: int = 6) -> str:
        return f"swap {self.first} and {self.second}"


def swap(ds: Dataset, first: int, second: int) -> Mutation:
    return ds.engine.edit([first, second], lambda ctx: Swap.plan(ctx, first, second))


def test_a_new_kind_runs_with_undo_events_log_and_replay(
    small_pyramid: Path, model: NDArray[np.uint64], tmp_path: Path
) -> None:
    original = model.copy()
    a, b = biggest(model, 2)
    model[original == a], model[original == b] = b, a
    base = tmp_path / "base.h5"
    shutil.copy(small_pyramid, base)  # the file before any edit
    ds = open_dataset(small_pyramid, "r+", checkpoint_interval=3600)
    record = swap(ds, a, b)
    assert_matches_model(ds, model)
    row = ds.mutations()[-1]
    assert row["Action"] == "toy-swap" and record_from_json(row) == record
    assert record.summary() == f"#1  swap {a} and {b}"
    assert record.log_line(ds.blob) == {"Action": "toy-swap", **record.log_head(), "First": a,
                                        "Second": b}
    ds.undo()
    assert_matches_model(ds, original)
    ds.redo()
    assert_matches_model(ds, model)
    assert [r["Action"] for r in ds.mutations()] == ["toy-swap"] * 3
    ds.close()
    with sqlite3.connect(journal_path(small_pyramid)) as conn:
        events = tail(conn, 100)
    assert [(e.mutation_id, e.action) for e in events] == [
        (mid, action) for mid in (1, 2, 3) for action in ("toy-swap", "toy-swap-complete")
    ]
    assert json.loads(events[0].payload)["Labels"] == [a, b]

    # recovery: the base file with the journal replays the three swaps
    shutil.copytree(journal_path(small_pyramid).parent, journal_path(base).parent)
    with open_dataset(base, "r+") as reopened:
        assert_matches_model(reopened, model)
