"""The mutation engine against a plain NumPy model of the volume, on real data."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.kernels import encode_rles, mask_to_rles, parse_rles
from app.model.dataset import Dataset, open_dataset, open_editable
from app.model.errors import (
    FormatError,
    InvalidMutationError,
    NothingToUndoError,
    ReadOnlyError,
    WriterLockedError,
)
from app.model.journal.replay import ApplyError, apply_lines, log_lines
from app.model.storage.palette_block import PaletteBlock
from tests.conftest import assert_matches_model, biggest


def box_rles(start: tuple[int, int, int], stop: tuple[int, int, int]) -> bytes:
    mask = np.ones(tuple(b - a for a, b in zip(start, stop, strict=True)), bool)
    return encode_rles(mask_to_rles(mask, start))


def record_s0_reads(ds: Dataset) -> list[tuple[int, int, int]]:
    """From now on, every s0 block ``ds`` reads (as an array or a palette) is
    appended to the returned list."""
    reads: list[tuple[int, int, int]] = []
    read_block, read_palette = ds.store.read_block, ds.store.read_palette
    in_palette = threading.local()

    def recording_read(kind: str, scale: int, coord: tuple[int, int, int]) -> NDArray[Any]:
        if scale == 0 and not getattr(in_palette, "on", False):
            reads.append(coord)
        return read_block(kind, scale, coord)

    def recording_palette(kind: str, coord: tuple[int, int, int]) -> PaletteBlock:
        reads.append(coord)
        in_palette.on = True
        try:
            return read_palette(kind, coord)
        finally:
            in_palette.on = False

    ds.store.read_block = recording_read  # type: ignore[method-assign]
    ds.store.read_palette = recording_palette  # type: ignore[method-assign]
    return reads


def snapshot(ds: Dataset) -> tuple[list[NDArray[np.uint64]], int]:
    return [ds.labels(s)[...] for s in range(ds.n_scales)], len(ds.mutations())


def assert_unchanged(ds: Dataset, before: tuple[list[NDArray[np.uint64]], int]) -> None:
    levels, count = snapshot(ds)
    assert count == before[1]
    for a, b in zip(levels, before[0], strict=True):
        assert np.array_equal(a, b)


def test_merge_matches_model(ds: Dataset, model: NDArray[np.uint64]) -> None:
    a, b, c = biggest(model, 3)
    mid = ds.merge(a, [b, c])
    model[np.isin(model, [b, c])] = a
    assert_matches_model(ds, model)
    record = ds.mutations()[-1]
    assert (record["MutationID"], record["Action"], record["Target"]) == (mid, "merge", a)
    assert record["Labels"] == sorted([b, c]) and record["TargetSize"] == int((model == a).sum())


def test_merges_relabel_staged_palettes_without_touching_voxels(
    small_pyramid: Path, model: NDArray[np.uint64]
) -> None:
    """A block staged by a merge is held as a palette; the next merge rewrites
    only its palette, and the checkpoint writes the right voxels."""
    labels = biggest(model, 40)
    with open_dataset(small_pyramid, "r+", checkpoint_interval=3600) as ds:
        target = labels[0]
        first, second = next(
            (b, c)
            for b in labels[1:]
            for c in labels[1:]
            if b != c and set(ds.label_blocks(b)) & set(ds.label_blocks(c))
        )
        shared = sorted(set(ds.label_blocks(first)) & set(ds.label_blocks(second)))
        ds.merge(target, [first])
        staged = {c: ds.store.staged_palette("labels", 0, c) for c in shared}
        assert all(p is not None for p in staged.values())
        ds.merge(target, [second])
        for c, before in staged.items():
            after = ds.store.staged_palette("labels", 0, c)
            assert after is not None and before is not None
            assert after.index is before.index and not np.array_equal(after.labels, before.labels)
        model[np.isin(model, [first, second])] = target
        assert_matches_model(ds, model)
    with open_dataset(small_pyramid, "r") as reopened:
        assert_matches_model(reopened, model)


def test_edits_after_a_checkpoint_start_from_the_palettes_it_kept(
    small_pyramid: Path, model: NDArray[np.uint64]
) -> None:
    """Blocks a merge staged, then a checkpoint wrote, are split (over whole
    blocks and across them) from the palettes the checkpoint kept; undo, redo
    and a reopening see the same voxels."""
    labels = biggest(model, 12)
    target = labels[0]
    with open_dataset(small_pyramid, "r+", checkpoint_interval=3600) as ds:
        merged = set().union(*(ds.label_blocks(label) for label in labels[1:]))
        ds.merge(target, labels[1:])
        model[np.isin(model, labels[1:])] = target
        ds.checkpoint()
        kept = {c: ds.store.read_palette("labels", c) for c in merged}
        assert all(ds.store.read_palette("labels", c) is p for c, p in kept.items())
        states = [model.copy()]
        whole = ds.split(target, box_rles((16, 16, 16), (32, 48, 48)))  # 4 whole 16³ blocks
        model[16:32, 16:48, 16:48][model[16:32, 16:48, 16:48] == target] = whole.label
        states.append(model.copy())
        relabelled = [c for c in kept if c[0] == 1 and c[1] in (1, 2) and c[2] in (1, 2)]
        assert relabelled
        for c in relabelled:  # a split over a whole block rewrote its palette, not its voxels
            split = ds.store.staged_palette("labels", 0, c)
            assert split is not None and split.index is kept[c].index
        across = ds.split(target, box_rles((5, 9, 30), (27, 60, 90)))
        model[5:27, 9:60, 30:90][model[5:27, 9:60, 30:90] == target] = across.label
        states.append(model.copy())
        assert_matches_model(ds, model)
        ds.checkpoint()
        for state in (states[1], states[0]):
            ds.undo()
            assert_matches_model(ds, state)
        ds.redo()
        assert_matches_model(ds, states[1])
    with open_dataset(small_pyramid, "r") as reopened:
        assert_matches_model(reopened, states[1])


def test_split_by_rles_touches_only_the_target(ds: Dataset, model: NDArray[np.uint64]) -> None:
    target = biggest(model, 1)[0]
    start, stop = (3, 10, 20), (30, 50, 77)  # crosses several 16^3 blocks and other bodies
    result = ds.split(target, box_rles(start, stop))
    region = np.zeros(model.shape, bool)
    region[3:30, 10:50, 20:77] = True
    model[region & (model == target)] = result.label
    assert result.label == ds.max_label and ds.label_size(result.label) > 0
    assert_matches_model(ds, model)
    spans = np.frombuffer(ds.blob(ds.mutations()[-1]["Split"]), "<i4").reshape(-1, 4)
    np.testing.assert_array_equal(spans, parse_rles(box_rles(start, stop)))  # as posted


def test_split_by_mask_with_offset_and_given_label(ds: Dataset, model: NDArray[np.uint64]) -> None:
    target = biggest(model, 2)[1]
    mask = np.zeros((10, 30, 40), bool)
    mask[2:9, 5:25, ::2] = True
    new = ds.max_label + 100
    result = ds.split(target, mask=mask, offset=(20, 30, 50), new_label=new)
    assert result.label == new
    region = np.zeros(model.shape, bool)
    region[20:30, 30:60, 50:90] = mask
    model[region & (model == target)] = new
    assert_matches_model(ds, model)
    assert ds.next_label(1)[0] == new + 1  # allocation never reuses a handed-out label


def test_split_coarse_matches_model(ds: Dataset, model: NDArray[np.uint64]) -> None:
    target = biggest(model, 1)[0]
    blocks = sorted(ds.label_blocks(target))[:2]
    result = ds.split_coarse(target, [*blocks, blocks[0]])
    region = np.zeros(model.shape, bool)
    for z, y, x in blocks:
        region[z * 16 : z * 16 + 16, y * 16 : y * 16 + 16, x * 16 : x * 16 + 16] = True
    model[region & (model == target)] = result.label
    assert_matches_model(ds, model)
    assert ds.mutations()[-1]["Blocks"] == [list(b) for b in blocks]


def test_label_allocation_and_max_label(ds: Dataset, model: NDArray[np.uint64]) -> None:
    top = int(model.max())
    assert ds.max_label == top
    assert ds.next_label(3) == (top + 1, top + 3)
    assert ds.max_label == top + 3
    ds.set_max_label(top + 10)
    assert ds.set_max_label(top + 10) is None  # unchanged: nothing recorded, nothing sent
    assert ds.next_label() == (top + 11, top + 11)
    with pytest.raises(InvalidMutationError, match="below the current max label"):
        ds.set_max_label(top)
    with pytest.raises(InvalidMutationError, match="positive"):
        ds.set_max_label(0)
    with pytest.raises(InvalidMutationError, match=">= 1"):
        ds.next_label(0)
    actions = [r["Action"] for r in ds.mutations()]
    assert actions == ["post-nextlabel", "post-maxlabel", "post-nextlabel"]


def test_undo_redo_restore_exactly_and_survive_reopen(
    small_pyramid: Path, model: NDArray[np.uint64]
) -> None:
    original = model.copy()
    ds = open_dataset(small_pyramid, "r+")
    a, b, c = biggest(model, 3)
    ds.merge(a, [b, c])
    split = ds.split(a, box_rles((0, 0, 0), (20, 70, 101)))
    after = ds.labels(0)[...]
    ds.close()

    ds = open_dataset(small_pyramid, "r+")
    assert ds.can_undo and not ds.can_redo
    ds.undo()
    model[np.isin(model, [b, c])] = a
    assert_matches_model(ds, model)
    ds.undo()
    assert_matches_model(ds, original)
    with pytest.raises(NothingToUndoError):
        ds.undo()
    ds.redo()
    assert_matches_model(ds, model)
    ds.redo()
    assert np.array_equal(ds.labels(0)[...], after)
    assert ds.label_size(split.label) == int((after == split.label).sum())
    with pytest.raises(NothingToUndoError):
        ds.redo()
    ds.undo()
    ds.merge(a, [biggest(original, 4)[3]])  # a new edit clears the redo stack
    assert not ds.can_redo
    ds.close()


def test_undo_of_a_merge_of_hundreds_of_labels_is_exact(
    ds: Dataset, model: NDArray[np.uint64]
) -> None:
    """Over 255 merged labels: the undo maps need 16-bit indices."""
    labels = biggest(model, 301)
    original = model.copy()
    ds.merge(labels[0], labels[1:])
    model[np.isin(model, labels[1:])] = labels[0]
    assert_matches_model(ds, model)
    ds.undo()
    assert_matches_model(ds, original)
    assert [ds.label_size(v) for v in labels] == [int((original == v).sum()) for v in labels]


def test_bad_edits_are_refused_and_change_nothing(ds: Dataset, model: NDArray[np.uint64]) -> None:
    a, b = biggest(model, 2)
    absent = int(model.max()) + 5
    before = snapshot(ds)
    cases = [
        (lambda: ds.merge(0, [a]), "label 0 is background"),
        (lambda: ds.merge(a, [0]), "label 0 is background"),
        (lambda: ds.merge(a, [a, b]), "also among the labels"),
        (lambda: ds.merge(a, []), "at least one label"),
        (lambda: ds.merge(a, [absent]), f"label {absent} has no voxels"),
        (lambda: ds.merge(absent, [a]), f"target {absent} has no voxels"),
        (lambda: ds.merge(a, [2**64]), "not a uint64 label"),
        (lambda: ds.merge(a, ["7"]), "must be an integer"),  # type: ignore[list-item]
        (lambda: ds.split(a, b""), "malformed RLEs"),
        (lambda: ds.split(a, b"\x00\x03\x00\x00" + bytes(8) + bytes(3)), "malformed RLEs"),
        (lambda: ds.split(a, b"\x01\x03\x00\x00" + bytes(8)), "malformed RLEs"),
        (lambda: ds.split(a, encode_rles(np.zeros((0, 4), np.int32))), "region is empty"),
        (lambda: ds.split(a, np.array([[0, 0, 0, 0]])), "length <= 0"),
        (lambda: ds.split(a, np.array([[95, 0, 0, 10]])), "out of bounds"),
        (lambda: ds.split(a, np.array([[0, 0, 37, 1]])), "out of bounds"),
        (lambda: ds.split(a, np.array([[-1, 0, 0, 1]])), "out of bounds"),
        (lambda: ds.split(a, box_rles((0, 0, 0), (37, 70, 101))), "holds all"),
        (lambda: ds.split(absent, box_rles((0, 0, 0), (5, 5, 5))), "has no voxels"),
        (lambda: ds.split(a, mask=np.zeros((3, 3, 3), bool)), "region is empty"),
        (lambda: ds.split(a, box_rles((0, 0, 0), (37, 70, 101)), new_label=b), "in use"),
        (lambda: ds.split(a, box_rles((0, 0, 0), (5, 5, 5)), new_label=a), "target itself"),
        (lambda: ds.split_coarse(a, [(9, 0, 0)]), "outside the block grid"),
        (lambda: ds.split_coarse(a, []), "at least one block"),
        (lambda: ds.split_coarse(a, list(ds.label_blocks(a))), "hold all"),
    ]
    empty_corner = [c for c in np.ndindex(3, 5, 7) if c not in ds.label_blocks(a)]
    if empty_corner:
        cases.append((lambda: ds.split_coarse(a, [empty_corner[0]]), "hold no voxel"))
    outside = np.argwhere(model != a)[0]
    z, y, x = (int(v) for v in outside)
    cases.append((lambda: ds.split(a, np.array([[x, y, z, 1]])), "no voxel of target"))
    for call, message in cases:
        with pytest.raises(InvalidMutationError, match=message):
            call()
    assert_unchanged(ds, before)
    assert_matches_model(ds, model)


def test_open_editable_falls_back_to_read_only(small_pyramid: Path, tmp_path: Path) -> None:
    editable, refused = open_editable(small_pyramid)
    assert editable.mode == "r+" and refused is None
    other, refused = open_editable(small_pyramid)  # the writer lock is taken
    assert other.mode == "r" and isinstance(refused, WriterLockedError)
    other.close()
    editable.close()
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f.create_dataset("seg/s0", data=np.ones((8, 8, 8), np.uint32))
    viewed, refused = open_editable(foreign)
    assert viewed.mode == "r" and not viewed.native and isinstance(refused, FormatError)
    viewed.close()
    with pytest.raises(FormatError, match="no such file"):
        open_editable(tmp_path / "missing.h5")


def test_read_only_and_second_writer(small_pyramid: Path) -> None:
    writer = open_dataset(small_pyramid, "r+")
    with pytest.raises(WriterLockedError, match="open for writing by pid"):
        open_dataset(small_pyramid, "r+")
    code = (
        "import sys\nfrom app.model.dataset import open_dataset\n"
        "from app.model.errors import WriterLockedError\n"
        f"try:\n    open_dataset({str(small_pyramid)!r}, 'r+')\n"
        "except WriterLockedError as e:\n    print('LOCKED', e); sys.exit(3)\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert other.returncode == 3 and "LOCKED" in other.stdout
    a = int(writer.labels(0)[18, 35, 50])
    b = int(writer.labels(0)[36, 69, 100])
    writer.merge(a, [b])
    reader = open_dataset(small_pyramid, "r")  # sees the journaled edit before any checkpoint
    assert int(reader.labels(0)[36, 69, 100]) == a
    with pytest.raises(ReadOnlyError, match="read-only"):
        reader.merge(a, [int(reader.labels(0)[0, 0, 0])])
    reader.close()
    writer.checkpoint()
    with h5py.File(small_pyramid, "r", locking=False) as f:  # plain HDF5, writer still open
        assert f["labels/s0"][36, 69, 100] == a
    reader_code = (  # another process, with HDF5's default file locking
        f"import h5py, hdf5plugin\nf = h5py.File({str(small_pyramid)!r}, 'r')\n"
        "print(int(f['labels/s0'][36, 69, 100]), int(f['labels/s3'][...].max()))\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", reader_code], capture_output=True, text=True, timeout=120
    )
    assert other.returncode == 0, other.stderr
    assert int(other.stdout.split()[0]) == a
    writer.close()


def test_concurrent_disjoint_and_overlapping_merges(ds: Dataset, model: NDArray[np.uint64]) -> None:
    labels = biggest(model, 12)
    pairs = [(labels[i], labels[i + 1]) for i in range(0, 8, 2)]  # disjoint
    pairs += [(labels[0], labels[9]), (labels[0], labels[10])]  # overlap on labels[0]
    errors: list[BaseException] = []

    def run(t: int, s: int) -> None:
        try:
            ds.merge(t, [s])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=p) for p in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for t, s in pairs:
        model[model == s] = t
    assert_matches_model(ds, model)
    ids = [r["MutationID"] for r in ds.mutations()]
    assert sorted(ids) == list(range(1, len(pairs) + 1))


def test_log_then_apply_replays_identically(
    small_pyramid: Path, tmp_path: Path, model: NDArray[np.uint64]
) -> None:
    copy = tmp_path / "copy.h5"
    shutil.copy(small_pyramid, copy)
    a, b, c = biggest(model, 3)
    with open_dataset(small_pyramid, "r+") as src:
        src.merge(a, [b])
        src.next_label(2)
        src.split(a, box_rles((5, 5, 5), (25, 40, 60)))
        src.split_coarse(c, sorted(src.label_blocks(c))[:1])
        src.undo()
        src.redo()
        src.set_max_label(src.max_label + 7)
        src.undo()
        lines = [json.dumps(line) for line in log_lines(src)]
        final = src.labels(0)[...]
        allocated = src.next_label()
    with open_dataset(copy, "r+") as dst:
        apply_lines(dst, lines)
        assert np.array_equal(dst.labels(0)[...], final)
        assert dst.next_label() == allocated
        assert dst.verify().ok


def test_apply_stops_at_the_first_bad_line(ds: Dataset, model: NDArray[np.uint64]) -> None:
    a, b, c = biggest(model, 3)
    lines = [
        json.dumps({"Action": "merge", "Target": a, "Labels": [b]}),
        "",
        json.dumps({"Action": "merge", "Target": a, "Labels": [b]}),
        json.dumps({"Action": "merge", "Target": a, "Labels": [c]}),
    ]
    with pytest.raises(ApplyError, match=f"line 3: label {b} has no voxels"):
        apply_lines(ds, lines)
    model[model == b] = a
    assert_matches_model(ds, model)
    for bad, message in [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"Action": "explode"}), "unknown Action"),
        (json.dumps({"Action": "merge", "Target": a}), "missing field 'Labels'"),
        (json.dumps({"Action": "split", "Target": a, "RLEs": [[1, 2, 3]]}), "RLEs must be"),
    ]:
        with pytest.raises(ApplyError, match=f"line 1: {message}"):
            apply_lines(ds, [bad])


def test_visible_blocks_go_in_the_viewers_order(
    small_pyramid: Path, model: NDArray[np.uint64]
) -> None:
    """The viewer hands its blocks from the view centre out: the work follows that order."""
    a, b = biggest(model, 2)
    with open_dataset(small_pyramid, "r+", workers=1) as ds:
        blocks = sorted(set(ds.label_blocks(b)))
        wanted = blocks[::-2]  # an order that is not (z, y, x)
        ds.set_visible(0, wanted)
        reads = record_s0_reads(ds)
        ds.merge(a, [b])
        first_reads = list(dict.fromkeys(reads))  # parents read their children again
        assert first_reads[: len(wanted)] == wanted
        assert first_reads[len(wanted) :] == sorted(set(blocks) - set(wanted))


def test_blocks_in_view_are_announced_together(
    small_pyramid: Path, model: NDArray[np.uint64]
) -> None:
    """A viewer showing s0 hears of the blocks in view in one event: one redraw (one
    worker: without the hold, at most two blocks would finish per event)."""
    a, b = biggest(model, 2)
    with open_dataset(small_pyramid, "r+", workers=1) as ds:
        blocks = sorted(set(ds.label_blocks(b)))
        assert len(blocks) > 3
        in_view = blocks[1:4]
        ds.set_visible(0, in_view)
        events: list[tuple[int, list[tuple[int, int, int]]]] = []
        ds.signals.blocks_changed.connect(lambda scale, coords: events.append((scale, coords)))
        ds.merge(a, [b])
        s0 = [set(coords) for scale, coords in events if scale == 0]
        assert set(in_view) <= s0[0]
        assert set().union(*s0) == set(blocks) and sum(map(len, s0)) == len(blocks)


def test_a_commit_that_fails_puts_every_level_back(
    ds: Dataset, model: NDArray[np.uint64], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks are shown before the journal commit; if it fails they all go back."""
    a, b, c = biggest(model, 3)
    before = snapshot(ds)
    sizes = [ds.label_size(v) for v in (a, b, c)]
    shown: list[int] = []
    ds.signals.blocks_changed.connect(lambda scale, _coords: shown.append(scale))

    def failing_transaction(*, durable: bool = True) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(ds.engine.journal, "transaction", failing_transaction)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        ds.merge(a, [b, c])
    monkeypatch.undo()
    assert 0 in shown  # the edit was on screen before the commit
    assert_unchanged(ds, before)
    assert [ds.label_size(v) for v in (a, b, c)] == sizes
    ds.merge(a, [b, c])
    model[np.isin(model, [b, c])] = a
    assert_matches_model(ds, model)


def test_visible_blocks_are_computed_and_shown_first(
    small_pyramid: Path, model: NDArray[np.uint64]
) -> None:
    """One worker, so that the order the tasks start in is the order they read in."""
    ds = open_dataset(small_pyramid, "r+", checkpoint_interval=0.2, workers=1)
    a, b = biggest(model, 2)
    blocks = sorted(set(ds.label_blocks(b)))
    assert len(blocks) > 3
    seen_at_s1 = tuple(c // 2 for c in blocks[-1])
    under = {c for c in blocks if tuple(v // 2 for v in c) == seen_at_s1}
    ds.set_visible(1, [seen_at_s1])
    events: list[tuple[int, list[tuple[int, int, int]]]] = []
    ds.signals.blocks_changed.connect(lambda scale, coords: events.append((scale, list(coords))))
    ds.signals.mutation_started.connect(lambda _record: events.append((-1, [])))
    reads = record_s0_reads(ds)
    ds.merge(a, [b])
    assert set(reads[: len(under)]) == under  # the visible blocks are computed first
    committed = events.index((-1, []))
    s0_order = [c for scale, coords in events[:committed] if scale == 0 for c in coords]
    assert set(blocks) == set(s0_order)  # each shown as it is computed, before the commit
    if set(blocks) - under:  # the visible parent is redrawn before the last s0 block
        s1_at = next(i for i, (scale, coords) in enumerate(events) if seen_at_s1 in coords)
        last_s0 = max(i for i, (scale, _) in enumerate(events) if scale == 0)
        assert events[s1_at][0] == 1 and s1_at < last_s0
    model[model == b] = a
    assert_matches_model(ds, model)
    ds.close()


def test_labels_at_the_top_of_the_uint64_range(small_pyramid: Path) -> None:
    with open_dataset(small_pyramid, "r+") as ds:
        a = int(ds.labels(0)[18, 35, 50])
        high = 2**63 + 5
        first = ds.split(a, box_rles((14, 30, 40), (24, 50, 70)), new_label=high)
        assert first.label == high and ds.label_size(high) > 0
        second = ds.split(a, box_rles((0, 0, 0), (5, 70, 101)))
        assert second.label == high + 1
    with open_dataset(small_pyramid, "r+") as ds:
        assert ds.max_label == high + 1 and ds.next_label() == (high + 2, high + 2)
        ds.set_max_label(2**64 - 1)
    with open_dataset(small_pyramid, "r+") as ds:
        assert ds.max_label == 2**64 - 1
        with pytest.raises(InvalidMutationError, match="exhausted"):
            ds.next_label()
        assert ds.verify().ok
