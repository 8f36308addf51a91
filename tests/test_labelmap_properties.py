"""Labelmap mode against a plain model (the supervoxel volume and a dict of the
mapping, with undo/redo stacks of states): random merges, cleaves,
supervoxel splits, undos, redos, checkpoints and reopenings of a crop of the
real supervoxels; after each step the supervoxels and bodies read, the sizes,
and the mapping a consumer rebuilds from the event stream all equal the
model's."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from unittest import mock

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from numpy.typing import NDArray

from app.model.bulk.build import build_pyramid
from app.model.dataset import Dataset, open_dataset
from app.model.demo import demo_cube_path
from app.model.errors import InvalidMutationError, NothingToUndoError
from app.model.events.outbox_view import outbox_tail
from app.model.labelmap import Mapping
from app.model.labelmap.state import FOLD_AT
from tests.annotation_client import bodies_from_stream
from tests.labelmap_client import MappingClient

SHAPE = (17, 30, 35)
ANNOTATIONS = "synapses"
BLOCK = (8, 8, 8)
Model = dict[int, int]


def crop() -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """A small crop of the automated supervoxels, and a mapping of them into
    bodies of three (each named after its first supervoxel), plus the shipped
    mapping's rows of supervoxels outside the crop."""
    with h5py.File(demo_cube_path(), "r") as f:
        svs = f["automated/supervoxels"][110:127, 60:90, 80:115]
        shipped = f["automated/mapping"][...]
    present = np.unique(svs)
    present = present[present != 0]
    grouped = np.stack([present, present[np.arange(present.size) // 3 * 3]], axis=1)
    absent = shipped[~np.isin(shipped[:, 0], present)]
    return svs, np.concatenate([grouped, absent])


class LabelmapSession(RuleBasedStateMachine):
    """Edits a labelmap crop and a dict twin of its mapping."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.ds: Dataset | None = None
        self.path = Path(self.tmp.name) / "lm.h5"
        self.svs: NDArray[np.uint64] = np.zeros(SHAPE, np.uint64)
        self.crop = self.svs
        """The supervoxels as built (before any edit)."""
        self.model: Model = {}
        self.start: Model = {}
        self.past: list[tuple[NDArray[np.uint64], Model]] = []
        self.future: list[tuple[NDArray[np.uint64], Model]] = []

    @initialize()
    def open(self) -> None:
        svs, rows = crop()
        np.save(Path(self.tmp.name) / "svs.npy", svs)
        build_pyramid(Path(self.tmp.name) / "svs.npy", self.path, block_size=BLOCK,
                      mapping=Mapping.from_pairs(rows))
        self.ds = open_dataset(self.path, "r+", workers=2, checkpoint_interval=3600.0)
        self.svs = self.crop = svs
        self.model = {int(s): int(b) for s, b in rows.tolist()}
        for sv in np.unique(svs).tolist():
            self.model.setdefault(sv, sv)
        self.start = dict(self.model)
        rng = np.random.default_rng(7)
        flat = rng.choice(svs.size, 40, replace=False)
        self.elements = [("PreSyn" if i % 3 else "PostSyn", (int(x), int(y), int(z)))
                         for i, (z, y, x) in enumerate(zip(*np.unravel_index(flat, SHAPE),
                                                           strict=True))]
        self.ds.annotations.post(ANNOTATIONS, json.dumps(
            [{"Pos": list(pos), "Kind": kind} for kind, pos in self.elements]))

    def teardown(self) -> None:
        if self.ds is not None:
            self.ds.close()
        self.tmp.cleanup()

    def _do(self, new: Model, svs: NDArray[np.uint64] | None = None) -> None:
        self.past.append((self.svs, self.model))
        self.future.clear()
        self.model = new
        if svs is not None:
            self.svs = svs

    def _body_at(self, point: tuple[int, int, int]) -> int:
        return self.model[int(self.svs[point])]

    def _voxels(self, body: int) -> int:
        """The model's voxels of ``body``."""
        bodies = np.vectorize(self.model.__getitem__, otypes=[np.uint64])(self.svs)
        return int((bodies == body).sum())

    def _members(self, body: int) -> list[int]:
        present = set(np.unique(self.svs).tolist())
        return sorted(sv for sv, b in self.model.items() if b == body and sv in present)

    points = st.tuples(*(st.integers(0, s - 1) for s in SHAPE))

    @rule(a=points, b=points)
    def merge(self, a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
        assert self.ds is not None
        target, source = self._body_at(a), self._body_at(b)
        if target == source or 0 in (target, source):
            with pytest.raises(InvalidMutationError):
                self.ds.merge(target, [source])
            return
        self.ds.merge(target, [source])
        self._do({sv: target if body == source else body for sv, body in self.model.items()})
        assert self.ds.mutations()[-1]["TargetSize"] == self._voxels(target)

    @rule(p=points, picks=st.lists(st.integers(0, 50), min_size=1, max_size=4))
    def cleave(self, p: tuple[int, int, int], picks: list[int]) -> None:
        assert self.ds is not None
        body = self._body_at(p)
        members = self._members(body)
        if len(members) == 1 and picks[0] % 4:  # (mostly cleave a body of several)
            sizes: dict[int, int] = {}
            for sv in np.unique(self.svs).tolist():
                sizes[self.model[sv]] = sizes.get(self.model[sv], 0) + 1
            body = max(sizes, key=lambda b: (sizes[b], b))
            members = self._members(body)
        chosen = sorted({members[i % len(members)] for i in picks})
        if len(chosen) == len(members):
            with pytest.raises(InvalidMutationError):
                self.ds.cleave(body, chosen)
            return
        label, _ = self.ds.cleave(body, chosen)
        assert label not in self.model.values()
        new = dict(self.model)
        new.update(dict.fromkeys(chosen, label))
        self._do(new)
        record = self.ds.mutations()[-1]  # (sizes from those the engine keeps)
        assert (record["CleavedSize"], record["RemainSize"]) == (
            self._voxels(label), self._voxels(body))

    @rule(p=points, size=st.tuples(st.integers(1, 9), st.integers(1, 12), st.integers(1, 14)))
    def split_supervoxel(self, p: tuple[int, int, int], size: tuple[int, int, int]) -> None:
        assert self.ds is not None
        sv = int(self.svs[p])
        hi = tuple(min(s, a + n) for a, n, s in zip(p, size, SHAPE, strict=True))
        region = np.zeros(SHAPE, bool)
        region[p[0]:hi[0], p[1]:hi[1], p[2]:hi[2]] = True
        mask = region[p[0]:hi[0], p[1]:hi[1], p[2]:hi[2]]
        inside = region & (self.svs == sv)
        if sv == 0 or inside.sum() == (self.svs == sv).sum():
            with pytest.raises(InvalidMutationError):
                self.ds.split_supervoxel(sv, mask=mask, offset=p)
            return
        split, remain, _ = self.ds.split_supervoxel(sv, mask=mask, offset=p)
        assert {split, remain}.isdisjoint(self.model)
        svs = self.svs.copy()
        svs[inside] = split
        svs[(self.svs == sv) & ~region] = remain
        body = self.model[sv]
        self._do({**self.model, sv: 0, split: body, remain: body}, svs)

    @rule(p=points, size=st.tuples(st.integers(1, 9), st.integers(1, 12), st.integers(1, 14)))
    def split(self, p: tuple[int, int, int], size: tuple[int, int, int]) -> None:
        assert self.ds is not None
        body = self._body_at(p)
        hi = tuple(min(s, a + n) for a, n, s in zip(p, size, SHAPE, strict=True))
        region = np.zeros(SHAPE, bool)
        region[p[0]:hi[0], p[1]:hi[1], p[2]:hi[2]] = True
        mask = region[p[0]:hi[0], p[1]:hi[1], p[2]:hi[2]]
        bodies = np.vectorize(self.model.__getitem__, otypes=[np.uint64])(self.svs)
        inside = region & (bodies == body)
        if body == 0 or inside.sum() == (bodies == body).sum():
            with pytest.raises(InvalidMutationError):
                self.ds.split(body, mask=mask, offset=p)
            return
        label = self.ds.split(body, mask=mask, offset=p).label
        record = self.ds.mutations()[-1]
        cut = {sv for sv in np.unique(self.svs[inside]).tolist()
               if (self.svs[~region] == sv).any()}
        assert {int(k) for k in record["SVSplits"]} == cut  # (only those the region cuts)
        svs, model = self.svs.copy(), dict(self.model)
        for sv in np.unique(self.svs[inside]).tolist():
            if sv in cut:
                parts = record["SVSplits"][str(sv)]
                svs[(self.svs == sv) & region] = parts["Split"]
                svs[(self.svs == sv) & ~region] = parts["Remain"]
                model.update({sv: 0, parts["Split"]: label, parts["Remain"]: body})
            else:
                model[sv] = label
        self._do(model, svs)
        assert (record["TargetSize"], record["NewLabelSize"]) == (
            self._voxels(body), self._voxels(label))

    @rule()
    def undo(self) -> None:
        assert self.ds is not None
        if not self.past:
            with pytest.raises(NothingToUndoError):
                self.ds.undo()
            return
        self.ds.undo()
        self.future.append((self.svs, self.model))
        self.svs, before = self.past.pop()
        # (the supervoxels the undone step made are retired: they map to 0)
        self.model = {**dict.fromkeys(self.model, 0), **before}

    @rule()
    def redo(self) -> None:
        assert self.ds is not None
        if not self.future:
            with pytest.raises(NothingToUndoError):
                self.ds.redo()
            return
        self.ds.redo()
        self.past.append((self.svs, self.model))
        self.svs, self.model = self.future.pop()

    @rule(fold=st.booleans())
    def checkpoint(self, fold: bool) -> None:
        assert self.ds is not None
        with mock.patch("app.model.checkpoint.FOLD_AT", 0 if fold else FOLD_AT):
            self.ds.checkpoint()  # (fold: the overlay then becomes the new base)

    @rule()
    def reopen(self) -> None:
        assert self.ds is not None
        self.ds.close()
        self.ds = open_dataset(self.path, "r+", workers=2, checkpoint_interval=3600.0)

    @invariant()
    def bodies_are_the_models(self) -> None:
        if self.ds is None:
            return
        keys = np.array(sorted(self.model), np.uint64)
        assert self.ds.mapping(keys).tolist() == [self.model[k] for k in keys.tolist()]
        np.testing.assert_array_equal(np.asarray(self.ds.supervoxels(0)), self.svs)
        expected = np.vectorize(self.model.__getitem__, otypes=[np.uint64])(self.svs)
        np.testing.assert_array_equal(np.asarray(self.ds.labels(0)), expected)
        body = int(expected[0, 0, 0])
        assert self.ds.label_size(body) == int((expected == body).sum())

    @invariant()
    def each_body_has_the_models_supervoxels(self) -> None:
        if self.ds is None:
            return
        members: dict[int, list[int]] = {}  # (those with voxels, as the dataset lists them)
        for sv in np.unique(self.svs).tolist():
            if sv:
                members.setdefault(self.model[sv], []).append(sv)
        for body, svs in members.items():
            assert self.ds.supervoxels_of(body).tolist() == svs

    @invariant()
    def every_element_is_on_the_body_at_its_position(self) -> None:
        if self.ds is None:
            return
        expected: dict[int, set[tuple[str, tuple[int, int, int]]]] = {}
        for kind, (x, y, z) in self.elements:
            body = self._body_at((z, y, x))
            if body:
                expected.setdefault(body, set()).add((kind, (x, y, z)))
        for body, found in expected.items():
            got = self.ds.annotations.body(ANNOTATIONS, body)
            assert {(e["Kind"], tuple(e["Pos"])) for e in got} == found
            kinds = [k for k, _ in found]
            assert self.ds.annotations.counts(ANNOTATIONS, body) == {
                "PreSyn": kinds.count("PreSyn"), "PostSyn": kinds.count("PostSyn")}
        assert bodies_from_stream(self.ds.path, ANNOTATIONS) == expected

    @invariant()
    def a_consumer_of_the_events_has_the_model(self) -> None:
        if self.ds is None:
            return
        client = MappingClient(self.crop, self.start, self.ds.blob)
        for event in outbox_tail(self.ds.path, 1 << 20):
            if event.instance is not None:  # (the annotation set's events)
                continue
            client.apply(json.loads(event.payload))
        np.testing.assert_array_equal(client.svs, self.svs)
        assert {sv: client.body(sv) for sv in self.model} == self.model


LabelmapSession.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_labelmap_session = pytest.mark.slow(LabelmapSession.TestCase)
