"""Labelmap mode on a crop of the real cube's automated supervoxels and their
agglomeration mapping: merges and cleaves change the mapping only; refusals
change nothing; undo, redo, reopening (after a crash too), a reader and the
file's ``/mapping`` all agree; the events are DVID's."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.cli import main
from app.model.bulk.build import build_pyramid
from app.model.dataset import Dataset, open_dataset
from app.model.demo import demo_is_current, ensure_demo
from app.model.errors import InvalidMutationError, SegmendError
from app.model.events.outbox_view import outbox_tail
from app.model.journal.replay import log_lines
from app.model.labelmap import Mapping

BLOCK = (16, 16, 16)


@pytest.fixture(scope="module")
def crop(cube_path: Path) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """An odd-shaped crop (47, 80, 87) of the automated supervoxels (119 of
    them, four bodies of several), and the shipped mapping rows."""
    with h5py.File(cube_path, "r") as f:
        return f["automated/supervoxels"][100:147, 40:120, 50:137], f["automated/mapping"][...]


@pytest.fixture
def built(
    tmp_path: Path, crop: tuple[NDArray[np.uint64], NDArray[np.uint64]]
) -> Path:
    """The crop built in labelmap mode (its label index made by a first opening)."""
    svs, rows = crop
    np.save(tmp_path / "svs.npy", svs)
    path = build_pyramid(tmp_path / "svs.npy", tmp_path / "lm.h5", block_size=BLOCK,
                         mapping=Mapping.from_pairs(rows))
    open_dataset(path, "r+", workers=2).close()
    return path


@pytest.fixture
def ds(built: Path) -> Iterator[Dataset]:
    """The crop open for editing."""
    with open_dataset(built, "r+", workers=2, checkpoint_interval=3600.0) as d:
        yield d


def bodies_by_size(ds: Dataset) -> list[int]:
    """The crop's bodies with two supervoxels or more, largest first."""
    return [b.label for b in ds.bodies() if ds.supervoxels_of(b.label).size >= 2]


def state(ds: Dataset) -> tuple[bytes, int, int, int]:
    """Everything an edit may change: the mapping, the counters, the log's length."""
    return (ds.mapping_pairs().tobytes(), ds.max_label, ds.next_free_label, ds.mutation_count())


def expected_bodies(ds: Dataset) -> NDArray[np.uint64]:
    """The crop's bodies by a plain NumPy lookup of the mapping."""
    svs = np.asarray(ds.supervoxels(0))
    pairs = ds.mapping_pairs()
    at = np.clip(np.searchsorted(pairs[:, 0], svs), 0, len(pairs) - 1)
    return np.where(pairs[at, 0] == svs, pairs[at, 1], svs)


def test_reads_give_bodies_and_supervoxels(ds: Dataset) -> None:
    assert ds.labelmap
    np.testing.assert_array_equal(np.asarray(ds.labels(0)), expected_bodies(ds))
    body = bodies_by_size(ds)[0]
    svs = ds.supervoxels_of(body)
    sizes = [ds.label_size(int(s), supervoxels=True) for s in svs]
    assert all(sizes) and ds.label_size(body) == sum(sizes)
    assert ds.label_size(body) == int((np.asarray(ds.labels(0)) == body).sum())
    assert set(ds.mapping(svs).tolist()) == {body}
    voxel = tuple(int(v[0]) for v in np.nonzero(np.asarray(ds.labels(0)) == body))
    assert ds.labels(0)[voxel] == body and ds.supervoxels(0)[voxel] in svs  # (one voxel)
    blocks = ds.label_blocks(body)
    assert sum(blocks.values()) == ds.label_size(body)
    coarse = ds.labels(1)[...]  # (the mapping of the downsampled supervoxels)
    np.testing.assert_array_equal(coarse, ds.mapping(ds.supervoxels(1)[...].ravel()).reshape(
        coarse.shape))


def test_merge_and_cleave_change_the_mapping_only(ds: Dataset) -> None:
    raw = np.asarray(ds.supervoxels(0)).copy()
    a, b = bodies_by_size(ds)[:2]
    sa, sb = ds.supervoxels_of(a), ds.supervoxels_of(b)
    size_a, size_b = ds.label_size(a), ds.label_size(b)
    ds.merge(a, [b])
    np.testing.assert_array_equal(ds.supervoxels_of(a), np.union1d(sa, sb))
    assert ds.supervoxels_of(b).size == 0 and ds.label_size(a) == size_a + size_b
    cleaved, mid = ds.cleave(a, sb[:1].tolist())
    assert cleaved == ds.max_label and mid == 2
    assert ds.supervoxels_of(cleaved).tolist() == sb[:1].tolist()
    np.testing.assert_array_equal(np.asarray(ds.supervoxels(0)), raw)  # no voxel changed
    np.testing.assert_array_equal(np.asarray(ds.labels(0)), expected_bodies(ds))
    record = ds.mutations()[-1]
    assert record["CleavedSize"] == ds.label_size(cleaved)
    assert record["RemainSize"] == ds.label_size(a)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda ds, a, b: ds.merge(a, [a]), "also among the labels"),
        (lambda ds, a, b: ds.merge(a, [10**15]), f"label {10**15} has no supervoxels"),
        (lambda ds, a, b: ds.merge(10**15, [a]), f"target {10**15} has no supervoxels"),
        (lambda ds, a, b: ds.cleave(a, []), "names no supervoxels"),
        (lambda ds, a, b: ds.cleave(a, ds.supervoxels_of(b)[:2].tolist()), "are not in body"),
        (lambda ds, a, b: ds.cleave(a, ds.supervoxels_of(a).tolist()), "would take every"),
        (lambda ds, a, b: ds.cleave(a, ds.supervoxels_of(a)[:1].tolist(), cleaved_label=b),
         "is in use"),
        (lambda ds, a, b: ds.cleave(
            a, ds.supervoxels_of(a)[:1].tolist(), cleaved_label=int(ds.supervoxels_of(b)[0])),
         "is in use"),
        (lambda ds, a, b: ds.split(a, mask=np.asarray(ds.labels(0)) == a), "holds all"),
        (lambda ds, a, b: ds.split(a, mask=np.asarray(ds.labels(0)) == b), "holds no voxel"),
    ],
)
def test_refused_edits_change_nothing(ds: Dataset, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    a, b = bodies_by_size(ds)[:2]
    before = state(ds)
    with pytest.raises(InvalidMutationError, match=message) as err:
        edit(ds, a, b)
    assert "\n" not in str(err.value)
    assert state(ds) == before


def test_undo_and_redo_are_exact(ds: Dataset) -> None:
    a, b, c = bodies_by_size(ds)[:3]
    sc = ds.supervoxels_of(c)
    states = [ds.mapping_pairs()]
    ds.merge(a, [b, c])
    states.append(ds.mapping_pairs())
    cleaved, _ = ds.cleave(a, sc[:2].tolist())
    states.append(ds.mapping_pairs())
    ds.undo()
    np.testing.assert_array_equal(ds.mapping_pairs(), states[1])
    ds.undo()
    np.testing.assert_array_equal(ds.mapping_pairs(), states[0])
    ds.redo()
    np.testing.assert_array_equal(ds.mapping_pairs(), states[1])
    ds.redo()
    np.testing.assert_array_equal(ds.mapping_pairs(), states[2])
    assert ds.supervoxels_of(cleaved).size == 2  # (the redo took the same id)


def test_events_are_dvids(ds: Dataset) -> None:
    a, b = bodies_by_size(ds)[:2]
    sb = ds.supervoxels_of(b).tolist()
    mapped_b = [sv for sv, body in ds.mapping_pairs().tolist() if body == b]  # (some absent)
    size_a, size_b = ds.label_size(a), ds.label_size(b)
    ds.merge(a, [b])
    cleaved, _ = ds.cleave(a, sb[:1])
    ds.undo()  # (of the cleave: a merge back)
    ds.undo()  # (of the merge: a cleave per merged body)
    msgs = [json.loads(e.payload) for e in outbox_tail(ds.path, 100)]
    actions = [(m["Action"], m["MutationID"]) for m in msgs]
    assert actions == [
        ("merge", 1), ("merge-complete", 1), ("cleave", 2), ("cleave-complete", 2),
        ("merge", 3), ("merge-complete", 3), ("cleave", 4), ("cleave-complete", 4),
    ]
    cleave, done = msgs[2], msgs[3]
    assert {k: cleave[k] for k in ("OrigLabel", "CleavedLabel", "CleavedSupervoxels")} == {
        "OrigLabel": a, "CleavedLabel": cleaved, "CleavedSupervoxels": sb[:1]}
    assert "CleavedSize" not in cleave
    assert done["CleavedSize"] + done["RemainSize"] == size_a + size_b
    assert msgs[4]["Target"] == a and msgs[4]["Labels"] == [cleaved]
    assert msgs[6]["OrigLabel"] == a and msgs[6]["CleavedLabel"] == b
    assert msgs[6]["CleavedSupervoxels"] == sorted(set(mapped_b) | set(sb))
    assert (msgs[7]["CleavedSize"], msgs[7]["RemainSize"]) == (size_b, size_a)
    assert (ds.label_size(a), ds.label_size(b)) == (size_a, size_b)


def test_a_consumer_rebuilds_the_mapping_from_the_stream(ds: Dataset) -> None:
    a, b, c = bodies_by_size(ds)[:3]
    start = {int(s): int(body) for s, body in ds.mapping_pairs().tolist()}
    sb = ds.supervoxels_of(b)
    ds.merge(a, [b])
    ds.cleave(a, sb[:2].tolist())
    ds.merge(c, [a])
    ds.undo()
    ds.cleave(c, ds.supervoxels_of(c)[:1].tolist())
    mapping = dict(start)
    for event in outbox_tail(ds.path, 1000):
        msg = json.loads(event.payload)
        if msg["Action"] == "merge":
            for sv, body in list(mapping.items()):
                if body in msg["Labels"]:
                    mapping[sv] = msg["Target"]
            for label in msg["Labels"]:  # (an unmapped supervoxel is its own body)
                mapping.setdefault(label, msg["Target"])
        elif msg["Action"] == "cleave":
            mapping.update(dict.fromkeys(msg["CleavedSupervoxels"], msg["CleavedLabel"]))
    svs = np.asarray(ds.supervoxels(0))
    rebuilt = np.vectorize(lambda s: mapping.get(int(s), int(s)), otypes=[np.uint64])(svs)
    np.testing.assert_array_equal(rebuilt, np.asarray(ds.labels(0)))


def test_reopening_the_file_and_a_reader_see_the_same_mapping(built: Path) -> None:
    with open_dataset(built, "r+", workers=2, checkpoint_interval=3600.0) as ds:
        a, b, c = bodies_by_size(ds)[:3]
        sb = ds.supervoxels_of(b)
        ds.merge(a, [b])
        ds.checkpoint()
        ds.cleave(a, sb[:1].tolist())
        ds.merge(a, [c])  # (journaled after the checkpoint)
        live = ds.mapping_pairs()
        with open_dataset(built, "r") as reader:
            np.testing.assert_array_equal(reader.mapping_pairs(), live)
            np.testing.assert_array_equal(np.asarray(reader.labels(0)), np.asarray(ds.labels(0)))
    with h5py.File(built, "r") as f:  # (closing checkpoints: the file has it all)
        np.testing.assert_array_equal(f["mapping"][...], live)
    with open_dataset(built, "r+", workers=2) as ds:
        np.testing.assert_array_equal(ds.mapping_pairs(), live)


def test_acknowledged_edits_survive_a_crash(built: Path) -> None:
    script = textwrap.dedent(f"""
        import os, sys
        from app.model.dataset import open_dataset
        ds = open_dataset({str(built)!r}, "r+", workers=2, checkpoint_interval=3600.0)
        bodies = [b.label for b in ds.bodies() if ds.supervoxels_of(b.label).size >= 2]
        ds.merge(bodies[0], [bodies[1]])
        ds.checkpoint()
        ds.cleave(bodies[0], ds.supervoxels_of(bodies[0])[:1].tolist())
        ds.merge(bodies[2], [bodies[3]])
        sys.stdout.write(ds.mapping_pairs().tobytes().hex())
        sys.stdout.flush()
        os._exit(0)  # (as kill -9: no close, no last checkpoint)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[1])
    acknowledged = np.frombuffer(bytes.fromhex(out.stdout), np.uint64).reshape(-1, 2)
    with open_dataset(built, "r+", workers=2) as ds:
        np.testing.assert_array_equal(ds.mapping_pairs(), acknowledged)
        assert ds.mutation_count() == 3


def test_log_and_apply_replay_a_session_identically(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.h5"
    copy.write_bytes(built.read_bytes())
    with open_dataset(built, "r+", workers=2) as ds:
        a, b, c = bodies_by_size(ds)[:3]
        sb, sc = ds.supervoxels_of(b), ds.supervoxels_of(c)
        ds.merge(a, [b, c])
        ds.cleave(a, sb[:2].tolist())
        ds.undo()
        ds.redo()
        ds.cleave(a, sc[:1].tolist(), cleaved_label=10**12)
        lines = list(log_lines(ds))
        expected = ds.mapping_pairs()
    assert [line["Action"] for line in lines] == ["merge", "cleave", "undo", "redo", "cleave"]
    ops = tmp_path / "ops.jsonl"
    ops.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["apply", str(copy), str(ops)]) == 0
    with open_dataset(copy, "r") as replica:
        np.testing.assert_array_equal(replica.mapping_pairs(), expected)


def test_reads_refuse_voxel_mode(tmp_path: Path, crop: tuple[NDArray[np.uint64], NDArray[np.uint64]]
                                 ) -> None:
    np.save(tmp_path / "v.npy", crop[0])
    path = build_pyramid(tmp_path / "v.npy", tmp_path / "v.h5", block_size=BLOCK)
    with open_dataset(path, "r+", workers=1) as ds:
        assert not ds.labelmap
        with pytest.raises(SegmendError, match="voxel mode"):
            ds.supervoxels_of(1)
        with pytest.raises(InvalidMutationError, match="needs a labelmap dataset"):
            ds.cleave(int(crop[0][0, 0, 0]), [1])
        with pytest.raises(InvalidMutationError, match="needs a labelmap dataset"):
            ds.split_supervoxel(int(crop[0][0, 0, 0]), np.array([[0, 0, 0, 4]]))


def test_a_checkpoint_folds_a_large_overlay(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_dataset(built, "r+", workers=2) as ds:
        a, b, c = bodies_by_size(ds)[:3]
        sb = ds.supervoxels_of(b)
        ds.merge(a, [b, c])
        ds.cleave(a, sb[:1].tolist())
        pairs, labels = ds.mapping_pairs(), np.asarray(ds.labels(0))
        state = ds._mapping
        assert state is not None and state.overlay_size > 0
        monkeypatch.setattr("app.model.checkpoint.FOLD_AT", state.overlay_size + 1)
        ds.checkpoint()
        assert state.overlay_size > 0  # (below the threshold: kept)
        ds.merge(a, [int(ds.mapping(sb[:1])[0])])  # (the cleaved body back)
        monkeypatch.setattr("app.model.checkpoint.FOLD_AT", 1)
        ds.checkpoint()
        assert state.overlay_size == 0  # (folded into the base)
        ds.undo()
        np.testing.assert_array_equal(ds.mapping_pairs(), pairs)
        np.testing.assert_array_equal(np.asarray(ds.labels(0)), labels)
        ds.undo()
        ds.undo()
        assert ds.supervoxels_of(b).tolist() == sb.tolist()
        assert ds.verify().ok


def test_a_checkpoint_writes_only_the_changed_rows(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the file lists every changed supervoxel, a checkpoint rewrites the
    chunks of their rows: it never goes through the whole mapping."""
    monkeypatch.setattr("app.model.labelmap.mapping_file._CHUNK_ROWS", 16)
    with open_dataset(built, "r+", workers=2) as ds:
        a, b = bodies_by_size(ds)[:2]
        ds.merge(a, [b])
        expected = ds.mapping_pairs()

        def whole(_view: object) -> None:
            raise AssertionError("the checkpoint read the whole mapping")

        monkeypatch.setattr("app.model.labelmap.state.MappingView.pairs", whole)
        ds.checkpoint()
        monkeypatch.undo()
        h5 = ds.store.h5
        assert h5 is not None
        np.testing.assert_array_equal(h5["mapping"][...], expected)
    with open_dataset(built, "r") as ds:
        assert ds.verify().ok


def test_a_checkpoint_writes_rows_the_file_did_not_list(
    tmp_path: Path, crop: tuple[NDArray[np.uint64], NDArray[np.uint64]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A mapping that lists only some supervoxels (as DVID's does): an edit of an
    unlisted one adds a row in the middle, and every later row moves down."""
    monkeypatch.setattr("app.model.labelmap.mapping_file._CHUNK_ROWS", 16)
    svs, rows = crop
    present = np.unique(svs)
    unlisted = present[present != 0][:3]  # (low ids, early in the file)
    np.save(tmp_path / "svs.npy", svs)
    path = build_pyramid(tmp_path / "svs.npy", tmp_path / "lm.h5", block_size=BLOCK,
                         mapping=Mapping.from_pairs(rows[~np.isin(rows[:, 0], unlisted)]))
    with open_dataset(path, "r+", workers=2) as ds:
        body = int(ds.mapping(present[-1:])[0])
        ds.merge(body, [int(unlisted[0])])
        ds.checkpoint()
        expected = ds.mapping_pairs()
        h5 = ds.store.h5
        assert h5 is not None
        np.testing.assert_array_equal(h5["mapping"][...], expected)
    with open_dataset(path, "r") as ds:
        np.testing.assert_array_equal(ds.mapping_pairs(), expected)
        assert ds.verify().ok


def test_verify_checks_the_mapping(built: Path) -> None:
    with open_dataset(built, "r+", workers=2) as ds:
        a, b, c = bodies_by_size(ds)[:3]
        sb = ds.supervoxels_of(b)
        ds.merge(a, [b, c])
        ds.cleave(a, sb[:1].tolist())
        assert ds.verify().ok
        ds.checkpoint()
        assert ds.verify().ok
        h5 = ds.store.h5
        assert h5 is not None
        row = h5["mapping"][0]
        h5["mapping"][0] = [row[0], row[1] + 1]  # (as a checkpoint that wrote it wrong)
        assert ds.verify().problems == [f"{built}: /mapping differs from the journaled mapping"]
        h5["mapping"][0] = row
        members = ds._mapping._members  # type: ignore[union-attr]
        members[a] = np.append(members[a], np.uint64(123456789))  # (a bad reverse map)
        problems = ds.verify().problems
    assert len(problems) == 1 and problems[0].startswith(f"body {a}: its supervoxels")
    with open_dataset(built, "r") as ds:
        assert ds.verify().ok


def test_the_labelmap_demo(tmp_path: Path) -> None:
    out = ensure_demo(tmp_path / "lm.h5")  # (labelmap mode: the default)
    assert demo_is_current(out) and demo_is_current(out, labelmap=True)
    assert demo_is_current(out, labelmap=None)
    assert not demo_is_current(out, labelmap=False)  # (not the voxel demo)
    with open_dataset(out, "r+", workers=2) as ds:
        assert ds.labelmap and ds.has_image
        assert ds.supervoxels_of(461).size == 26
        np.testing.assert_array_equal(ds.labels(2)[...], ds.mapping(
            ds.supervoxels(2)[...].ravel()).reshape(ds.labels(2).shape))


def a_cut(ds: Dataset) -> tuple[int, NDArray[np.bool_]]:
    """A supervoxel of several blocks' size and a mask (the whole volume's shape)
    of the z-planes below its middle plane."""
    raw = np.asarray(ds.supervoxels(0))
    svs, counts = np.unique(raw[raw > 0], return_counts=True)
    sv = int(svs[np.argmax(counts)])
    z = np.nonzero(raw == sv)[0]
    mask = np.zeros(raw.shape, bool)
    mask[: (int(z.min()) + int(z.max()) + 1) // 2] = True
    return sv, mask


def test_split_supervoxel(ds: Dataset) -> None:
    sv, mask = a_cut(ds)
    raw = np.asarray(ds.supervoxels(0)).copy()
    bodies = np.asarray(ds.labels(0)).copy()
    body = int(ds.mapping([sv])[0])
    split, remain, mid = ds.split_supervoxel(sv, mask=mask)
    assert remain == split + 1 == ds.max_label and mid == 1
    new = np.asarray(ds.supervoxels(0))
    np.testing.assert_array_equal(new[(raw == sv) & mask], split)
    np.testing.assert_array_equal(new[(raw == sv) & ~mask], remain)
    np.testing.assert_array_equal(new[raw != sv], raw[raw != sv])
    np.testing.assert_array_equal(np.asarray(ds.labels(0)), bodies)  # (the bodies stay)
    assert ds.mapping([sv, split, remain]).tolist() == [0, body, body]
    assert ds.label_size(sv, supervoxels=True) == 0
    assert ds.label_size(split, supervoxels=True) == int(((raw == sv) & mask).sum())
    assert {split, remain} <= set(ds.supervoxels_of(body).tolist())
    assert sv not in ds.supervoxels_of(body)
    start, done = (json.loads(e.payload) for e in outbox_tail(ds.path, 2))
    assert {k: start[k] for k in ("Supervoxel", "Body", "SplitSupervoxel", "RemainSupervoxel")} \
        == {"Supervoxel": sv, "Body": body, "SplitSupervoxel": split, "RemainSupervoxel": remain}
    assert (done["SplitSize"], done["RemainSize"]) == (
        int(((raw == sv) & mask).sum()), int(((raw == sv) & ~mask).sum()))
    ds.undo()
    np.testing.assert_array_equal(np.asarray(ds.supervoxels(0)), raw)
    assert ds.mapping([sv, split, remain]).tolist() == [body, 0, 0]  # (retired for good)
    assert json.loads(outbox_tail(ds.path, 1)[0].payload)["Action"] == (
        "undo-split-supervoxel-complete")
    ds.redo()
    np.testing.assert_array_equal(np.asarray(ds.supervoxels(0)), new)
    assert ds.verify().ok


@pytest.mark.parametrize(
    ("region", "ids", "message"),
    [
        ("none", {}, "holds no voxel of supervoxel"),
        ("all", {}, "nothing would remain"),
        ("half", {"split": 7, "remain": 7}, "split and remain ids are both 7"),
        ("half", {"split": -1}, "split id must be|not a uint64"),
        ("half", {"remain": "sv"}, "remain id .* is the supervoxel itself"),
        ("half", {"split": "body"}, "is in use"),
        ("half", {"remain": "other"}, "is in use"),
    ],
)
def test_refused_supervoxel_splits_change_nothing(
    ds: Dataset, region: str, ids: dict[str, object], message: str
) -> None:
    sv, mask = a_cut(ds)
    raw = np.asarray(ds.supervoxels(0))
    masks = {"none": raw != sv, "all": raw == sv, "half": mask}
    other = int(next(s for s in np.unique(raw).tolist() if s not in (0, sv)))
    body = next(b for b in bodies_by_size(ds) if b != sv)
    named = {"sv": sv, "body": body, "other": other}
    given = {k: named.get(v, v) if isinstance(v, str) else v for k, v in ids.items()}
    before = state(ds)
    with pytest.raises(InvalidMutationError, match=message):
        ds.split_supervoxel(sv, mask=masks[region], **given)  # type: ignore[arg-type]
    assert state(ds) == before
    np.testing.assert_array_equal(np.asarray(ds.supervoxels(0)), raw)


def test_split_supervoxel_from_the_command_line_and_its_replay(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy.h5"
    copy.write_bytes(built.read_bytes())
    with open_dataset(built, "r") as ds:
        sv, mask = a_cut(ds)
    np.save(tmp_path / "m.npy", mask)
    assert main(["split-supervoxel", str(built), str(sv), "--mask", str(tmp_path / "m.npy"),
                 "--split", "900001", "--remain", "900002"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "SplitSupervoxel": 900001, "RemainSupervoxel": 900002, "MutationID": 1}
    with open_dataset(built, "r") as ds:
        lines = list(log_lines(ds))
        expected = (ds.mapping_pairs(), np.asarray(ds.supervoxels(0)))
    (tmp_path / "ops.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["apply", str(copy), str(tmp_path / "ops.jsonl")]) == 0
    with open_dataset(copy, "r") as replica:
        np.testing.assert_array_equal(replica.mapping_pairs(), expected[0])
        np.testing.assert_array_equal(np.asarray(replica.supervoxels(0)), expected[1])


def test_a_body_split_cuts_only_the_supervoxels_the_region_cuts(ds: Dataset) -> None:
    raw = np.asarray(ds.supervoxels(0)).copy()
    bodies = np.asarray(ds.labels(0)).copy()
    body = max(bodies_by_size(ds), key=lambda b: ds.supervoxels_of(b).size)
    z = np.nonzero(bodies == body)[0]
    mask = np.zeros(raw.shape, bool)
    mask[: (int(z.min()) + int(z.max()) + 1) // 2] = True
    inside = mask & (bodies == body)
    cut = {sv for sv in np.unique(raw[inside]).tolist() if (raw[~mask] == sv).any()}
    whole = set(np.unique(raw[inside]).tolist()) - cut
    label = ds.split(body, mask=mask).label
    expected = bodies.copy()
    expected[inside] = label
    np.testing.assert_array_equal(np.asarray(ds.labels(0)), expected)
    record = ds.mutations()[-1]
    assert {int(k) for k in record["SVSplits"]} == cut and set(record["Supervoxels"]) == whole
    new = np.asarray(ds.supervoxels(0))
    for sv in whole:  # (kept their ids)
        np.testing.assert_array_equal(new[raw == sv], sv)
    for key, parts in record["SVSplits"].items():
        sv = int(key)
        np.testing.assert_array_equal(new[(raw == sv) & mask], parts["Split"])
        np.testing.assert_array_equal(new[(raw == sv) & ~mask], parts["Remain"])
        assert ds.mapping([sv, parts["Split"], parts["Remain"]]).tolist() == [0, label, body]
    sizes = [ds.label_size(int(s), supervoxels=True) for s in np.unique(new) if s]
    assert min(sizes) > 0  # (no supervoxel of size 0)
    start = json.loads(outbox_tail(ds.path, 2)[0].payload)
    assert start["Action"] == "split" and start["SVSplits"] == record["SVSplits"]
    ds.undo()
    np.testing.assert_array_equal(np.asarray(ds.supervoxels(0)), raw)
    np.testing.assert_array_equal(np.asarray(ds.labels(0)), bodies)
    assert json.loads(outbox_tail(ds.path, 2)[0].payload)["Action"] == "undo-split"
    ds.redo()
    np.testing.assert_array_equal(np.asarray(ds.supervoxels(0)), new)
    assert ds.verify().ok


def test_split_coarse_in_labelmap_mode_is_a_split_by_blocks(ds: Dataset) -> None:
    bodies = np.asarray(ds.labels(0)).copy()
    body = bodies_by_size(ds)[0]
    coord = min(ds.label_blocks(body))
    label = ds.split_coarse(body, [list(coord)]).label
    box = tuple(slice(c * b, (c + 1) * b) for c, b in zip(coord, ds.block_size, strict=True))
    expected = bodies.copy()
    expected[box][expected[box] == body] = label
    np.testing.assert_array_equal(np.asarray(ds.labels(0)), expected)
    assert json.loads(outbox_tail(ds.path, 2)[0].payload)["Action"] == "split"


def block_coords(ds: Dataset, scale: int) -> list[tuple[int, int, int]]:
    """Every block of the labels at ``scale``."""
    n = [-(-s // b) for s, b in zip(ds.labels(scale).shape, ds.block_size, strict=True)]
    return [(z, y, x) for z in range(n[0]) for y in range(n[1]) for x in range(n[2])]


def fresh_bodies(ds: Dataset, scale: int, coord: tuple[int, int, int]) -> NDArray[np.uint64]:
    """Block ``coord`` of bodies, its supervoxels mapped afresh."""
    svs = ds.read_block("supervoxels", scale, coord)
    return ds.mapping(svs.ravel()).reshape(svs.shape)


def assert_blocks_are_fresh(ds: Dataset) -> None:
    """Every block of bodies read (cached or not) is its supervoxels mapped now."""
    for scale in (0, 1):
        for coord in block_coords(ds, scale):
            read = ds.read_block("labels", scale, coord)
            np.testing.assert_array_equal(read, fresh_bodies(ds, scale, coord))
            cached = ds.cached_block("labels", scale, coord)
            assert cached is read and not read.flags.writeable  # (kept: not mapped again)


def test_blocks_of_bodies_are_kept_until_the_mapping_changes(ds: Dataset) -> None:
    assert_blocks_are_fresh(ds)
    before = {c: ds.read_block("labels", 0, c) for c in block_coords(ds, 0)}
    a, b, c = bodies_by_size(ds)[:3]
    sc = ds.supervoxels_of(c)
    ds.merge(a, [b, c])
    assert_blocks_are_fresh(ds)
    changed = [k for k, block in before.items() if not np.array_equal(
        block, ds.read_block("labels", 0, k))]
    assert changed and all((before[k] == b).any() or (before[k] == c).any() for k in changed)
    cleaved, _ = ds.cleave(a, sc[:2].tolist())
    assert_blocks_are_fresh(ds)
    assert any((ds.read_block("labels", 0, k) == cleaved).any() for k in before)
    ds.undo()
    assert_blocks_are_fresh(ds)
    ds.undo()
    assert_blocks_are_fresh(ds)
    for k, block in before.items():
        np.testing.assert_array_equal(ds.read_block("labels", 0, k), block)
    ds.redo()
    assert_blocks_are_fresh(ds)


def test_blocks_of_bodies_follow_edits_of_the_voxels(ds: Dataset) -> None:
    assert_blocks_are_fresh(ds)
    sv, mask = a_cut(ds)
    ds.split_supervoxel(sv, mask=mask)
    assert_blocks_are_fresh(ds)
    body = max(bodies_by_size(ds), key=lambda b: ds.supervoxels_of(b).size)
    bodies = np.asarray(ds.labels(0))
    z = np.nonzero(bodies == body)[0]
    half = np.zeros(bodies.shape, bool)
    half[: (int(z.min()) + int(z.max()) + 1) // 2] = True
    ds.split(body, mask=half)
    assert_blocks_are_fresh(ds)
    ds.undo()
    assert_blocks_are_fresh(ds)
    ds.undo()
    assert_blocks_are_fresh(ds)


def test_a_block_staged_anew_is_mapped_anew(ds: Dataset) -> None:
    """The store serving another supervoxel block, the mapping unchanged: the
    block kept mapped from the old one is not served."""
    coord = max(block_coords(ds, 0), key=lambda k: np.unique(
        ds.read_block("labels", 0, k)).size)
    old = ds.read_block("labels", 0, coord)
    svs = ds.read_block("supervoxels", 0, coord)
    one, other = (int(v) for v in np.unique(svs)[-2:])
    assert ds.mapping([one]) != ds.mapping([other])
    edited = np.where(svs == one, np.uint64(other), svs)
    key = ("labels", 0, *coord)
    staged = ds.store.staged(key)
    version = ds._live_mapping().version
    ds.store.stage(key, edited, None, 1 << 40)
    try:
        for read in (ds.cached_block("labels", 0, coord), ds.read_block("labels", 0, coord)):
            assert read is not None
            np.testing.assert_array_equal(read, ds.mapping(edited.ravel()).reshape(svs.shape))
            assert not np.array_equal(read, old)
        assert ds._live_mapping().version == version
    finally:
        ds.store.restore(key, staged)
    np.testing.assert_array_equal(ds.read_block("labels", 0, coord), old)


def test_readers_never_see_a_stale_or_torn_block_of_bodies(ds: Dataset) -> None:
    """Threads read blocks of bodies (through the cache and past it) while merges
    and their undos change the mapping: each block read is the one of the
    mapping before or after (never a mix), and once an edit returned, every
    read gives its bodies."""
    a, b = bodies_by_size(ds)[:2]
    coords = block_coords(ds, 0)
    states = [{k: fresh_bodies(ds, 0, k) for k in coords}]
    ds.merge(a, [b])
    states.append({k: fresh_bodies(ds, 0, k) for k in coords})
    ds.undo()
    assert any(not np.array_equal(states[0][k], states[1][k]) for k in coords)
    stop = threading.Event()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                for k in coords:
                    for got in (ds.cached_block("labels", 0, k), ds.read_block("labels", 0, k)):
                        if got is not None and not any(
                                np.array_equal(got, s[k]) for s in states):
                            raise AssertionError(f"block {k}: neither state's bodies")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(20):
            if i % 2:
                ds.undo()
            else:
                ds.merge(a, [b])
            for k in coords:
                np.testing.assert_array_equal(ds.read_block("labels", 0, k), states[1 - i % 2][k])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors


def test_a_readers_blocks_of_bodies_follow_the_writer(built: Path) -> None:
    """A reader's kept blocks of bodies, after a writer's checkpoint (the reader
    re-reads the file and its mapping, and replays the journal's edits after
    it: as many mapping changes as before) and after its edits since."""
    with open_dataset(built, "r+", workers=2, checkpoint_interval=3600.0) as ds:
        a, b, c = bodies_by_size(ds)[:3]
        ds.merge(a, [b])
        with open_dataset(built, "r") as reader:
            with reader.snapshot():
                assert_blocks_are_fresh(reader)
            ds.checkpoint()  # (waits for the reader to let its state go)
            ds.merge(a, [c])
            for _ in range(2):
                with reader.snapshot():
                    np.testing.assert_array_equal(reader.mapping_pairs(), ds.mapping_pairs())
                    assert_blocks_are_fresh(reader)
                ds.undo()
                ds.checkpoint()
