"""The annotation tables of a journal (issue 17): a journal whose
``annotation_elements`` holds the elements' kinds, supervoxels and blocks (and
their bodies, or their JSON) is moved to this layout by the next writer, every
element, tag and count kept; posts large and small, into an empty set or not,
read back right."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import h5py
import numpy as np
import pytest

from app.model.annotations import tables
from app.model.bulk.build import build_pyramid
from app.model.dataset import open_dataset
from app.model.errors import FormatError
from app.model.journal.sidecar import journal_path
from app.model.labelmap import Mapping


def _earlier(body: bool, element: bool) -> str:
    """SQL turning a journal of this layout into an earlier one: each element's
    kind, supervoxel and block in ``annotation_elements``, its body there too
    (else in ``annotation_bodies``), and its JSON (else in ``annotation_json``)."""
    body_index = "body" if element else "body, sv, set_name, x, y, z, kind"
    return f"""
CREATE TABLE annotation_json (
    set_name TEXT NOT NULL, x INTEGER NOT NULL, y INTEGER NOT NULL, z INTEGER NOT NULL,
    element TEXT NOT NULL, PRIMARY KEY (set_name, x, y, z)) WITHOUT ROWID;
INSERT INTO annotation_json SELECT set_name, x, y, z, element FROM annotation_elements;
ALTER TABLE annotation_elements RENAME TO new_elements;
CREATE TABLE annotation_elements (
    set_name TEXT NOT NULL, x INTEGER NOT NULL, y INTEGER NOT NULL, z INTEGER NOT NULL,
    kind TEXT NOT NULL{", body INTEGER NOT NULL" if body else ""}, sv INTEGER NOT NULL,
    bz INTEGER NOT NULL, by INTEGER NOT NULL, bx INTEGER NOT NULL
    {", element TEXT NOT NULL" if element else ""},
    PRIMARY KEY (set_name, x, y, z)) WITHOUT ROWID;
{f"CREATE INDEX annotation_elements_body ON annotation_elements ({body_index});" if body else ""}
CREATE INDEX annotation_elements_block ON annotation_elements (bz, by, bx);
INSERT INTO annotation_elements SELECT k.set_name, k.x, k.y, k.z,
    k.kind{", b.body" if body else ""}, k.sv, k.bz, k.by, k.bx{", e.element" if element else ""}
    FROM annotation_blocks k JOIN annotation_bodies b USING (set_name, x, y, z)
    JOIN new_elements e USING (set_name, x, y, z);
DROP TABLE new_elements;
DROP TABLE annotation_blocks;
{"DROP TABLE annotation_bodies;" if body else ""}
{"DROP TABLE annotation_json;" if element else ""}
"""


LAYOUTS = {
    # the first: each element's JSON and body in annotation_elements
    "first": _earlier(body=True, element=True),
    # the second: its JSON in annotation_json, its body still in annotation_elements
    "second": _earlier(body=True, element=False),
    # the third: its JSON in annotation_json, its body in annotation_bodies
    "third": _earlier(body=False, element=False),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_journal_of_an_earlier_layout_is_moved_to_this_one(
        tmp_path: Path, cube_path: Path, layout: str) -> None:
    with h5py.File(cube_path, "r") as f:
        np.save(tmp_path / "svs.npy", f["automated/supervoxels"][:40, :48, :56])
        rows = f["automated/mapping"][...]
    path = build_pyramid(tmp_path / "svs.npy", tmp_path / "ds.h5", block_size=(16, 16, 16),
                         mapping=Mapping.from_pairs(rows))
    points = [(x, 2 * x % 48, x % 40) for x in range(56)]
    elements = [{"Pos": list(p), "Kind": "PostSyn" if p[0] % 3 else "PreSyn",
                 "Tags": ["t"] if p[0] % 2 else None, "Prop": {"n": str(p[0])},
                 "Rels": [{"Rel": "PostSynTo", "To": [0, 0, 0]}] if p[0] else None}
                for p in points]
    with open_dataset(path, "r+") as ds:
        ds.annotations.post("synapses", json.dumps(elements))
        before = (ds.annotations.export("synapses"), ds.annotations.tag("synapses", "t"),
                  ds.annotations.top("synapses", 100))
    with sqlite3.connect(journal_path(path)) as conn:
        conn.executescript(LAYOUTS[layout])
    with open_dataset(path, "r") as ds:  # (a reader converts nothing)
        with pytest.raises(FormatError, match="earlier layout; open"):
            ds.annotations.body("synapses", before[2][0]["Label"])
        with pytest.raises(FormatError, match="earlier layout; open"):
            ds.verify()
    with open_dataset(path, "r+") as ds:
        assert (ds.annotations.export("synapses"), ds.annotations.tag("synapses", "t"),
                ds.annotations.top("synapses", 100)) == before
        labels = np.asarray(ds.labels(0)[...])
        body = before[2][0]["Label"]
        assert len(ds.annotations.body("synapses", body)) == sum(
            1 for x, y, z in points if labels[z, y, x] == body)
        assert ds.verify().ok
    with sqlite3.connect(journal_path(path)) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(annotation_elements)")]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert columns == ["set_name", "x", "y", "z", "element"]
    assert "annotation_blocks" in names and "annotation_json" not in names


def test_posts_large_and_small_read_back_right(
        tmp_path: Path, cube_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "BULK", 20)  # (a post of 20 elements or more is bulk)
    with h5py.File(cube_path, "r") as f:
        np.save(tmp_path / "svs.npy", f["automated/supervoxels"][:32, :32, :32])
        rows = f["automated/mapping"][...]
    path = build_pyramid(tmp_path / "svs.npy", tmp_path / "ds.h5", block_size=(16, 16, 16),
                         mapping=Mapping.from_pairs(rows))
    grid = [(x, y, z) for z in range(0, 32, 3) for y in range(0, 32, 3) for x in range(0, 32, 5)]
    posts = [grid[:60], grid[60:90], grid[90:]]  # (bulk into nothing, not bulk, bulk)
    with open_dataset(path, "r+") as ds:
        labels = np.asarray(ds.labels(0)[...])
        for points in posts:
            ds.annotations.post("synapses", json.dumps(
                [{"Pos": list(p), "Kind": "PreSyn"} for p in points]))
        posted = [p for points in posts for p in points]
        bodies = [int(labels[z, y, x]) for x, y, z in posted]  # (labels: the bodies)
        for body in set(bodies) - {0}:
            got = [tuple(e["Pos"]) for e in ds.annotations.body("synapses", body)]
            assert sorted(got) == sorted(p for p, b in zip(posted, bodies, strict=True)
                                         if b == body)
        assert ds.verify().ok
