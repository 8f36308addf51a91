"""Annotation sets (issue 17): elements posted, read, deleted and moved in DVID's
shapes, kept on the right body through every label mutation of both modes
(undo and redo included), counted per body, and published so that a consumer
rebuilds each body's elements from the set's events alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.model.bulk.build import build_pyramid
from app.model.dataset import Dataset, open_dataset
from app.model.errors import InvalidMutationError
from app.model.events.outbox_view import outbox_tail
from app.model.labelmap import Mapping
from tests.annotation_client import bodies_from_stream
from tests.conftest import run_cli

BLOCK = (16, 16, 16)
NAME = "synapses"


Crop = tuple[NDArray[np.uint64], NDArray[np.uint64], NDArray[np.uint64]]


@pytest.fixture(scope="module")
def crop(cube_path: Path) -> Crop:
    """An odd-shaped crop (37, 50, 61) of the automated supervoxels and bodies,
    and the shipped mapping rows."""
    box = np.s_[100:137, 40:90, 50:111]
    with h5py.File(cube_path, "r") as f:
        return (f["automated/supervoxels"][box], f["automated/bodies"][box],
                f["automated/mapping"][...])


@pytest.fixture(params=["voxel", "labelmap"])
def ds(request: pytest.FixtureRequest, tmp_path: Path, crop: Crop) -> Iterator[Dataset]:
    """The crop in either mode (voxel mode: its bodies as labels), open for editing."""
    svs, bodies, rows = crop
    labelmap = request.param == "labelmap"
    np.save(tmp_path / "labels.npy", svs if labelmap else bodies)
    path = build_pyramid(tmp_path / "labels.npy", tmp_path / "ds.h5", block_size=BLOCK,
                         mapping=Mapping.from_pairs(rows) if labelmap else None)
    with open_dataset(path, "r+", workers=2, checkpoint_interval=3600.0) as d:
        yield d


def synapses(ds: Dataset, n: int = 60, seed: int = 0) -> list[dict[str, object]]:
    """``n`` elements at distinct random voxels of bodies (PreSyn each with a
    PostSyn partner after it, tags on some)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(ds.labels(0)[...])
    zyx = np.argwhere(labels > 0)
    picked = zyx[rng.choice(len(zyx), n, replace=False)]
    out: list[dict[str, object]] = []
    for i, (z, y, x) in enumerate(picked.tolist()):
        pre = i % 2 == 0
        partner = picked[i + 1 if pre else i - 1][::-1].tolist()
        out.append({"Pos": [x, y, z], "Kind": "PreSyn" if pre else "PostSyn",
                    "Tags": ["odd"] if i % 3 == 1 else [], "Prop": {"i": str(i)},
                    "Rels": [{"Rel": "PreSynTo" if pre else "PostSynTo", "To": partner}]})
    return out


def expected_bodies(ds: Dataset, elements: list[dict[str, object]]
                    ) -> dict[int, set[tuple[str, tuple[int, int, int]]]]:
    """Each body's ``(kind, pos)`` as the labels say now."""
    labels = np.asarray(ds.labels(0)[...])
    out: dict[int, set[tuple[str, tuple[int, int, int]]]] = {}
    for e in elements:
        x, y, z = e["Pos"]  # type: ignore[misc]
        body = int(labels[z, y, x])
        if body:
            out.setdefault(body, set()).add((str(e["Kind"]), (x, y, z)))
    return out


def stored_bodies(ds: Dataset, bodies: set[int]
                  ) -> dict[int, set[tuple[str, tuple[int, int, int]]]]:
    """Each of ``bodies``' elements as ``get`` lists them (empty ones left out)."""
    out = {}
    for body in bodies:
        found = {(e["Kind"], tuple(e["Pos"])) for e in ds.annotations.body(NAME, body)}
        if found:
            out[body] = found
    return out


def assert_synced(ds: Dataset, elements: list[dict[str, object]], touched: set[int]) -> None:
    """Every element is on the body at its position (``get``, the counts, the
    ranking, and the stream agree), for the bodies of ``touched`` and those the
    labels name now."""
    want = expected_bodies(ds, elements)
    assert stored_bodies(ds, touched | set(want)) == want
    for body in touched | set(want):
        kinds = [k for k, _ in want.get(body, set())]
        assert ds.annotations.counts(NAME, body) == {
            "PreSyn": kinds.count("PreSyn"), "PostSyn": kinds.count("PostSyn")}
    assert bodies_from_stream(ds.path, NAME) == want
    ranked = ds.annotations.top(NAME, 1000, "PostSyn")
    assert ranked == sorted(
        ({"Label": b, "Size": [k for k, _ in v].count("PostSyn")} for b, v in want.items()
         if "PostSyn" in {k for k, _ in v}), key=lambda r: (-r["Size"], r["Label"]))


def two_bodies_with_elements(ds: Dataset, elements: list[dict[str, object]]) -> tuple[int, int]:
    """The two bodies with the most elements (the first the larger)."""
    want = expected_bodies(ds, elements)
    a, b = sorted(want, key=lambda body: (-len(want[body]), body))[:2]
    return a, b


# ------------------------------------------------------------------- commands
def test_posted_elements_are_read_back_in_dvids_shapes(ds: Dataset) -> None:
    elements = synapses(ds, 400)  # (its rows, and its 133 tags, fill whole statements and more)
    assert ds.annotations.post(NAME, json.dumps(elements)) == len(elements)
    assert_synced(ds, elements, set())
    body = two_bodies_with_elements(ds, elements)[0]
    got = ds.annotations.body(NAME, body)
    assert got == sorted(got, key=lambda e: e["Pos"][::-1])
    assert all(list(e) == ["Pos", "Kind", "Tags", "Prop"] for e in got)
    full = ds.annotations.body(NAME, body, relationships=True)
    by_pos = {tuple(e["Pos"]): e for e in elements}
    for e in full:
        source = by_pos[tuple(e["Pos"])]
        assert e == {**source, "Tags": source["Tags"] or None}
    tagged = {tuple(e["Pos"]) for e in ds.annotations.tag(NAME, "odd")}
    assert tagged == {tuple(e["Pos"]) for e in elements if e["Tags"]}
    exported = ds.annotations.export(NAME)
    assert len(exported) == len(elements)
    ds.annotations.post("copy", json.dumps(exported))
    assert ds.annotations.export("copy") == exported
    assert ds.annotations.names() == ["copy", NAME]


@pytest.mark.parametrize(("elements", "message"), [
    ("[{", "not JSON"),
    ('{"Pos": [1, 2, 3]}', "must be a JSON list"),
    ('[{"Pos": [1, 2]}]', "element 0: Pos must be"),
    ('[{"Pos": [1, 2, 3], "Kind": "Synapse"}]', "unknown Kind 'Synapse'"),
    ('[{"Pos": [1, 2, 999]}]', "outside the volume"),
    ('[{"Pos": [1, 2, 3], "Rels": [{"Rel": "Near", "To": [1, 1, 1]}]}]', "unknown Rel"),
    ('[{"Pos": [1, 2, 3]}, {"Pos": [1, 2, 3]}]', "elements 0 and 1 are both at"),
    ('[{"Pos": [1, 2, 3], "Prop": {"a": 1}}]', "Prop must map strings"),
])
def test_bad_elements_are_refused_in_one_line_and_change_nothing(
        ds: Dataset, elements: str, message: str) -> None:
    ds.annotations.post(NAME, json.dumps(synapses(ds, 6)))
    before = (ds.annotations.export(NAME), len(outbox_tail(ds.path, 1 << 20)))
    with pytest.raises(InvalidMutationError, match=message) as err:
        ds.annotations.post(NAME, elements)
    assert "\n" not in str(err.value)
    assert (ds.annotations.export(NAME), len(outbox_tail(ds.path, 1 << 20))) == before


def test_delete_and_move_keep_partners_relationships(ds: Dataset) -> None:
    elements = synapses(ds, 4)
    ds.annotations.post(NAME, json.dumps(elements))
    pre, post = (tuple(e["Pos"]) for e in elements[:2])
    free = np.argwhere(np.asarray(ds.labels(0)[...]) > 0)[0][::-1].tolist()
    ds.annotations.move(NAME, post, tuple(free))
    moved = next(e for e in ds.annotations.export(NAME) if tuple(e["Pos"]) == pre)
    assert moved["Rels"] == [{"Rel": "PreSynTo", "To": free}]
    elements[1]["Pos"] = free
    elements[0]["Rels"] = moved["Rels"]
    assert_synced(ds, elements, set())
    ds.annotations.delete(NAME, tuple(free))
    left = {tuple(e["Pos"]): e for e in ds.annotations.export(NAME)}
    assert tuple(free) not in left and left[pre]["Rels"] is None
    assert_synced(ds, [elements[0], *elements[2:]], set())
    with pytest.raises(InvalidMutationError, match="has no element at"):
        ds.annotations.delete(NAME, tuple(free))


# ------------------------------------------------------------------- the sync
def test_merge_split_undo_redo_keep_every_element_on_its_body(ds: Dataset) -> None:
    elements = synapses(ds, 80, seed=1)
    ds.annotations.post(NAME, json.dumps(elements))
    a, b = two_bodies_with_elements(ds, elements)
    ds.merge(a, [b])
    assert_synced(ds, elements, {a, b})
    assert ds.annotations.counts(NAME, b) == {"PreSyn": 0, "PostSyn": 0}
    x, y, z = next(e["Pos"] for e in elements
                   if int(ds.labels(0)[e["Pos"][2], e["Pos"][1], e["Pos"][0]]) == a)  # type: ignore[index]
    lo = np.maximum(np.array([z, y, x]) - 6, 0)
    hi = np.minimum(np.array([z, y, x]) + 7, ds.shape)
    new = ds.split(a, mask=np.ones(hi - lo, bool), offset=tuple(lo.tolist())).label
    assert_synced(ds, elements, {a, b, new})
    for _ in range(2):
        ds.undo()
        assert_synced(ds, elements, {a, b, new})
    for _ in range(2):
        ds.redo()
        assert_synced(ds, elements, {a, b, new})


def elements_a_split_half_takes(ds: Dataset) -> tuple[list[dict[str, object]], NDArray[np.int64]]:
    """Three elements on one supervoxel in one block: two side by side (the
    first two), the third apart; and the ``(z, y, x)`` of the first."""
    svs = np.asarray(ds.supervoxels(0)[...])
    grid = np.array(BLOCK)
    for z, y, x in np.argwhere((svs[:, :, :-1] == svs[:, :, 1:]) & (svs[:, :, :-1] > 0)).tolist():
        if x % grid[2] == grid[2] - 1:  # (its neighbour in the next block)
            continue
        lo = np.array([z, y, x]) // grid * grid
        block = svs[lo[0]:lo[0] + grid[0], lo[1]:lo[1] + grid[1], lo[2]:lo[2] + grid[2]]
        apart = [p for p in np.argwhere(block == svs[z, y, x]).tolist()
                 if max(abs(a - b) for a, b in zip(p, [z - lo[0], y - lo[1], x - lo[2]],
                                                   strict=True)) > 2]
        if apart:
            third = (np.array(apart[0]) + lo).tolist()
            points = [[x, y, z], [x + 1, y, z], third[::-1]]
            return ([{"Pos": p, "Kind": "PostSyn"} for p in points],
                    np.array([z, y, x], np.int64))
    raise AssertionError("no supervoxel with three voxels so placed")


def test_a_split_moves_only_the_elements_it_takes_from_a_block(ds: Dataset) -> None:
    elements, (z, y, x) = elements_a_split_half_takes(ds)
    ds.annotations.post(NAME, json.dumps(elements))
    body = int(ds.labels(0)[z, y, x])
    new = ds.split(body, mask=np.ones((1, 1, 2), bool), offset=(z, y, x)).label
    assert_synced(ds, elements, {body, new})
    assert ds.annotations.counts(NAME, new) == {"PreSyn": 0, "PostSyn": 2}
    ds.undo()
    assert_synced(ds, elements, {body, new})
    assert ds.verify().ok


def test_a_cleave_moves_the_elements_of_the_cleaved_supervoxels(ds: Dataset) -> None:
    if not ds.labelmap:
        pytest.skip("cleave is a labelmap edit")
    elements = synapses(ds, 80, seed=2)
    ds.annotations.post(NAME, json.dumps(elements))
    body = max((b for b in expected_bodies(ds, elements) if ds.supervoxels_of(b).size >= 2),
               key=lambda b: ds.supervoxels_of(b).size)
    svs = ds.supervoxels_of(body)
    cleaved, _ = ds.cleave(body, svs[: svs.size // 2].tolist())
    assert_synced(ds, elements, {body, cleaved})
    ds.undo()
    assert_synced(ds, elements, {body, cleaved})


def test_an_edit_that_changes_no_elements_body_sends_nothing_on_the_set(ds: Dataset) -> None:
    elements = synapses(ds, 10, seed=3)
    ds.annotations.post(NAME, json.dumps(elements))
    with_elements = set(expected_bodies(ds, elements))
    labels = np.asarray(ds.labels(0)[...])
    others = [int(v) for v in np.unique(labels) if v and int(v) not in with_elements]
    before = len([e for e in outbox_tail(ds.path, 1 << 20) if e.instance == NAME])
    ds.merge(others[0], [others[1]])
    assert len([e for e in outbox_tail(ds.path, 1 << 20) if e.instance == NAME]) == before


def test_the_sync_message_is_dvids(ds: Dataset) -> None:
    elements = synapses(ds, 40, seed=4)
    ds.annotations.post(NAME, json.dumps(elements))
    a, b = two_bodies_with_elements(ds, elements)
    on_b = expected_bodies(ds, elements)[b]
    mutation_id = ds.merge(a, [b])
    event = [e for e in outbox_tail(ds.path, 1 << 20) if e.instance == NAME][-1]
    msg = json.loads(event.payload)
    assert list(msg) == ["Action", "Delta", "MutationID", "Timestamp", "UUID"]
    assert (msg["Action"], msg["MutationID"], msg["UUID"]) == ("merge", mutation_id,
                                                               ds.version_uuid)
    moved = {(e["Kind"], tuple(e["Pos"])) for e in msg["Delta"]["Del"]}
    assert moved == on_b == {(e["Kind"], tuple(e["Pos"])) for e in msg["Delta"]["Add"]}
    assert {e["Label"] for e in msg["Delta"]["Del"]} == {b}
    assert {e["Label"] for e in msg["Delta"]["Add"]} == {a}
    assert [list(e) for e in msg["Delta"]["Add"]] == [["Label", "Kind", "Pos"]] * len(moved)


def test_a_reader_sees_the_writers_elements(ds: Dataset) -> None:
    elements = synapses(ds, 20, seed=5)
    ds.annotations.post(NAME, json.dumps(elements))
    body = two_bodies_with_elements(ds, elements)[0]
    with open_dataset(ds.path, "r") as reader:
        assert reader.annotations.body(NAME, body) == ds.annotations.body(NAME, body)
        assert reader.annotations.top(NAME, 5) == ds.annotations.top(NAME, 5)


def test_the_cli_posts_reads_moves_deletes_and_exports(
        ds: Dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    elements = synapses(ds, 12, seed=6)
    body = two_bodies_with_elements(ds, elements)[0]
    path = ds.path
    ds.close()
    source = tmp_path / "elements.json"
    source.write_text(json.dumps(elements))
    code, out, _ = run_cli(capsys, "annotations", path, NAME, "post", source)
    assert (code, json.loads(out)) == (0, {"posted": 12})
    code, out, _ = run_cli(capsys, "annotations", path, NAME, "get", body, "--relationships")
    got = json.loads(out)
    assert code == 0 and got and all(e["Rels"] for e in got)
    x, y, z = got[0]["Pos"]
    code, out, _ = run_cli(capsys, "annotations", path, NAME, "tag", "odd")
    assert len(json.loads(out)) == sum(1 for e in elements if e["Tags"])
    taken = {tuple(e["Pos"]) for e in elements}
    free = next(p for p in ((x, y, z + d) for d in (1, -1, 2, -2)) if p not in taken)
    code, out, _ = run_cli(capsys, "annotations", path, NAME, "move", f"{x},{y},{z}",
                           ",".join(map(str, free)))
    assert (code, json.loads(out)) == (0, {"moved": [x, y, z], "to": list(free)})
    code, out, _ = run_cli(capsys, "annotations", path, NAME, "delete", "_".join(map(str, free)))
    assert (code, json.loads(out)) == (0, {"deleted": list(free)})
    code, out, _ = run_cli(capsys, "annotations", path, NAME, "export")
    assert len(json.loads(out)) == 11
    code, out, _ = run_cli(capsys, "bodies", path, "--by", "PostSyn", "--top", "3", "--json")
    assert code == 0 and all(set(r) == {"label", "PreSyn", "PostSyn"} for r in json.loads(out))
    bad = tmp_path / "bad.json"
    bad.write_text('[{"Pos": [0, 0, 0], "Kind": "Synapse"}]')
    code, _, err = run_cli(capsys, "annotations", path, NAME, "post", bad)
    assert code != 0 and "unknown Kind" in err and err.count("\n") == 1
    code, out, _ = run_cli(capsys, "annotations", path, NAME, "export")
    assert len(json.loads(out)) == 11


def test_a_refused_post_on_a_new_file_leaves_nothing_beside_it(
        tmp_path: Path, crop: Crop, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "labels.npy", crop[1])
    path = build_pyramid(tmp_path / "labels.npy", tmp_path / "fresh.h5", block_size=BLOCK)
    before = sorted(p.name for p in tmp_path.iterdir())
    data = path.read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_text('[{"Pos": [0, 0, 9999]}]')
    code, _, err = run_cli(capsys, "annotations", path, NAME, "post", bad)
    assert code != 0 and "outside the volume" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "bad.json"])
    assert path.read_bytes() == data


def test_verify_finds_an_element_on_the_wrong_body_and_a_wrong_count(ds: Dataset) -> None:
    elements = synapses(ds, 30, seed=9)
    ds.annotations.post(NAME, json.dumps(elements))
    a, b = two_bodies_with_elements(ds, elements)
    ds.merge(a, [b])
    assert ds.verify().ok
    assert ds._journal is not None
    with ds._journal.transaction() as cur:  # (what a bug in the sync would leave)
        x, y, z = elements[0]["Pos"]  # type: ignore[misc]
        cur.execute("UPDATE annotation_bodies SET body = ? WHERE x = ? AND y = ? AND z = ?",
                    (b, x, y, z))
        cur.execute("UPDATE annotation_counts SET n = n + 1 WHERE body = ?", (a,))
    problems = ds.verify().problems
    assert any("on body" in p and "the labels say" in p for p in problems)
    assert any(f"count of body {a}" in p for p in problems)


def test_verify_finds_an_element_in_the_wrong_block_or_not_in_both_tables(ds: Dataset
                                                                          ) -> None:
    elements = synapses(ds, 30, seed=9)
    ds.annotations.post(NAME, json.dumps(elements))
    assert ds.verify().ok
    assert ds._journal is not None
    (x, y, z), (x2, y2, z2), (x3, y3, z3) = (e["Pos"] for e in elements[:3])  # type: ignore[misc]
    with ds._journal.transaction() as cur:  # (what a bug in a write would leave)
        cur.execute("UPDATE annotation_blocks SET bz = bz + 1 WHERE x = ? AND y = ? AND z = ?",
                    (x, y, z))
        cur.execute("DELETE FROM annotation_elements WHERE x = ? AND y = ? AND z = ?",
                    (x2, y2, z2))
        cur.execute("DELETE FROM annotation_blocks WHERE x = ? AND y = ? AND z = ?",
                    (x3, y3, z3))
    problems = ds.verify().problems
    assert any(f"element at {[x, y, z]}: listed in block" in p for p in problems)
    assert any(f"element at {[x2, y2, z2]}: no JSON" in p for p in problems)
    assert any(f"element JSON at {[x3, y3, z3]}: no element there" in p for p in problems)
