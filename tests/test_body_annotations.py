"""Body annotations (issue 17): NeuTu's JSON per body, ``postkv``/``delete``
events on their own instance, merges that delete the merged bodies' keys and
undos that put them back exactly, and protected statuses that refuse edits
unless forced."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.model.annotations.body_values import INSTANCE
from app.model.bulk.build import build_pyramid
from app.model.dataset import Dataset, open_dataset
from app.model.errors import InvalidMutationError
from app.model.events.outbox_view import outbox_tail
from app.model.labelmap import Mapping
from tests.conftest import run_cli

BLOCK = (16, 16, 16)


@pytest.fixture(scope="module")
def crop(cube_path: Path) -> tuple[NDArray[np.uint64], NDArray[np.uint64], NDArray[np.uint64]]:
    box = np.s_[90:130, 30:80, 40:100]
    with h5py.File(cube_path, "r") as f:
        return (f["automated/supervoxels"][box], f["automated/bodies"][box],
                f["automated/mapping"][...])


@pytest.fixture(params=["voxel", "labelmap"])
def path(request: pytest.FixtureRequest, tmp_path: Path,
         crop: tuple[NDArray[np.uint64], NDArray[np.uint64], NDArray[np.uint64]]) -> Path:
    svs, bodies, rows = crop
    labelmap = request.param == "labelmap"
    np.save(tmp_path / "labels.npy", svs if labelmap else bodies)
    return build_pyramid(tmp_path / "labels.npy", tmp_path / "ds.h5", block_size=BLOCK,
                         mapping=Mapping.from_pairs(rows) if labelmap else None)


@pytest.fixture
def ds(path: Path) -> Iterator[Dataset]:
    with open_dataset(path, "r+", workers=2, checkpoint_interval=3600.0, user="ana") as d:
        yield d


def largest(ds: Dataset, n: int) -> list[int]:
    return [b.label for b in ds.bodies(top=n)]


def kv_events(ds: Dataset) -> list[dict[str, object]]:
    return [json.loads(e.payload) for e in outbox_tail(ds.path, 1 << 20) if e.instance == INSTANCE]


def test_update_set_and_delete_with_their_events(ds: Dataset) -> None:
    a = largest(ds, 1)[0]
    assert ds.body_annotations.get(a) is None
    value = ds.body_annotations.update(a, status="Traced", name="Mi1")
    assert value == {"body ID": a, "status": "Traced", "name": "Mi1", "user": "ana"}
    assert ds.body_annotations.get(a) == value
    value = ds.body_annotations.update(a, name="", comment="check the soma")
    assert value == {"body ID": a, "status": "Traced", "user": "ana", "comment": "check the soma"}
    replaced = ds.body_annotations.set(a, {"status": "Anchor", "class": "Mi", "body ID": 1})
    assert replaced == {"status": "Anchor", "class": "Mi", "body ID": a}
    assert ds.body_annotations.with_status("Anchor") == [replaced]
    assert ds.body_annotations.delete(a) and not ds.body_annotations.delete(a)
    events = kv_events(ds)
    assert [e["Action"] for e in events] == ["postkv", "postkv", "postkv", "delete"]
    assert all(e["Key"] == str(a) and e["UUID"] == ds.version_uuid for e in events)
    assert events[2]["Bytes"] == len(json.dumps(replaced).encode())
    assert list(events[0]) == ["Action", "Bytes", "Key", "Timestamp", "UUID"]


def test_a_merge_deletes_the_merged_bodies_annotations_and_undo_puts_them_back(
        ds: Dataset) -> None:
    a, b, c = largest(ds, 3)
    for body, status in ((a, "Roughly traced"), (b, "Traced"), (c, "Orphan")):
        ds.body_annotations.update(body, status=status, comment=f"note {body}")
    kept = {body: ds.body_annotations.get(body) for body in (a, b, c)}
    merged = ds.merge(a, [b, c])
    assert ds.body_annotations.get(a) == kept[a]
    assert ds.body_annotations.get(b) is None and ds.body_annotations.get(c) is None
    deletes = [e for e in kv_events(ds) if e["Action"] == "delete"]
    assert sorted(e["Key"] for e in deletes) == sorted([str(b), str(c)])
    ds.undo()
    assert {body: ds.body_annotations.get(body) for body in (a, b, c)} == kept
    ds.redo()
    assert ds.body_annotations.get(b) is None and ds.body_annotations.get(a) == kept[a]
    ds.undo()
    assert {body: ds.body_annotations.get(body) for body in (a, b, c)} == kept
    assert merged > 0


def test_a_protected_body_refuses_merges_and_splits_unless_forced(ds: Dataset) -> None:
    a, b = largest(ds, 2)
    ds.body_annotations.update(b, status="Finalized")
    before = (ds.mutation_count(), np.asarray(ds.labels(0)[...]).tobytes())
    with pytest.raises(InvalidMutationError, match=f"body {b} is 'Finalized'") as err:
        ds.merge(a, [b])
    assert "\n" not in str(err.value)
    mask = np.ones((4, 4, 4), bool)
    with pytest.raises(InvalidMutationError, match="protected"):
        ds.split(b, mask=mask, offset=(0, 0, 0))
    assert (ds.mutation_count(), np.asarray(ds.labels(0)[...]).tobytes()) == before
    ds.body_annotations.set_protected_statuses(["Traced"])
    assert ds.body_annotations.protected_statuses() == ("Traced",)
    ds.body_annotations.update(a, status="Traced")
    with pytest.raises(InvalidMutationError, match=f"body {a} is 'Traced'"):
        ds.merge(a, [b])
    ds.merge(a, [b], force=True)
    assert ds.body_annotations.get(b) is None


def test_the_cli_reads_and_writes_body_annotations(
        path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with open_dataset(path, "r+", workers=2) as writer:  # (builds the label index)
        a, b = largest(writer, 2)
    code, out, _ = run_cli(capsys, "body", path, a, "--status", "Finalized", "--name", "T4")
    assert code == 0 and json.loads(out)["status"] == "Finalized"
    code, out, _ = run_cli(capsys, "body", path, a)
    assert code == 0 and json.loads(out)["name"] == "T4"
    code, out, _ = run_cli(capsys, "bodies", path, "--status", "Finalized")
    assert code == 0 and [v["body ID"] for v in json.loads(out)] == [a]
    code, _, err = run_cli(capsys, "merge", path, b, a)
    assert code != 0 and "protected" in err and err.count("\n") == 1
    code, out, _ = run_cli(capsys, "merge", path, b, a, "--force")
    assert code == 0
    code, out, _ = run_cli(capsys, "protect", path)
    assert json.loads(out) == ["Finalized"]
    code, out, _ = run_cli(capsys, "protect", path, "--none")
    assert code == 0 and json.loads(out) == []
