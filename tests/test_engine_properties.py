"""A hypothesis state machine: random merges, splits, split-coarse, undo, redo and
checkpoints on real data, checked after every step against a plain NumPy model of the volume (and
the Kafka events, replayed by a DVID client, against the same model)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from numpy.typing import NDArray

from app.model.bulk.build import build_pyramid
from app.model.dataset import Dataset, open_dataset
from app.model.demo import demo_cube_path
from app.model.errors import InvalidMutationError
from app.model.events.outbox_view import outbox_tail
from tests.annotation_client import bodies_from_stream
from tests.conftest import assert_matches_model
from tests.dvid_client import client_messages, replay_stream

SHAPE = (13, 22, 27)
BLOCK = (4, 8, 8)
ANNOTATIONS = "synapses"


def real_crop() -> NDArray[np.uint64]:
    """A small crop of the real segmentation (odd shape: partial blocks, 4 levels)."""
    with h5py.File(demo_cube_path(), "r") as f:
        crop: NDArray[np.uint64] = f["automated/bodies"][120:133, 60:82, 90:117]
    return crop


class CropSession(RuleBasedStateMachine):
    """A state machine's base: :func:`real_crop` as a pyramid open for editing,
    and a NumPy twin of its volume with undo/redo stacks of states."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.ds: Dataset | None = None
        self.model: NDArray[np.uint64] = np.zeros(SHAPE, np.uint64)
        self.crop: NDArray[np.uint64] = self.model
        """The volume as built (before any edit)."""
        self.past: list[NDArray[np.uint64]] = []
        self.future: list[NDArray[np.uint64]] = []

    def open_crop(self, rule: str, checkpoint_interval: float = 5.0) -> NDArray[np.uint64]:
        """Build and open the crop's pyramid; returns the crop."""
        crop = real_crop()
        src = Path(self.tmp.name) / "crop.npy"
        np.save(src, crop)
        path = build_pyramid(src, Path(self.tmp.name) / "p.h5", block_size=BLOCK, rule=rule)
        self.ds = open_dataset(path, "r+", workers=2, checkpoint_interval=checkpoint_interval)
        self.model, self.crop = crop.copy(), crop
        return crop

    def teardown(self) -> None:
        if self.ds is not None:
            self.ds.close()
        self.tmp.cleanup()

    def _do(self, new: NDArray[np.uint64]) -> None:
        self.past.append(self.model)
        self.future.clear()
        self.model = new


class EditSession(CropSession):
    """Edits the crop and its NumPy twin."""

    @initialize(rule=st.sampled_from(["labelmap", "labelblk"]))
    def open(self, rule: str) -> None:
        crop = self.open_crop(rule)
        rng = np.random.default_rng(11)
        flat = rng.choice(crop.size, 40, replace=False)
        self.elements = [("PostSyn" if i % 3 else "PreSyn", (int(x), int(y), int(z)))
                         for i, (z, y, x) in enumerate(zip(*np.unravel_index(flat, SHAPE),
                                                           strict=True))]
        assert self.ds is not None
        self.ds.annotations.post(ANNOTATIONS, json.dumps(
            [{"Pos": list(pos), "Kind": kind} for kind, pos in self.elements]))

    def _label_at(self, point: tuple[int, int, int]) -> int:
        return int(self.model[point])

    points = st.tuples(*(st.integers(0, s - 1) for s in SHAPE))

    @rule(a=points, b=points)
    def merge(self, a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
        assert self.ds is not None
        target, source = self._label_at(a), self._label_at(b)
        if 0 in (target, source) or target == source:
            with pytest.raises(InvalidMutationError):
                self.ds.merge(target, [source])
            return
        self.ds.merge(target, [source])
        new = self.model.copy()
        new[new == source] = target
        self._do(new)

    @rule(p=points, size=st.tuples(st.integers(1, 9), st.integers(1, 12), st.integers(1, 14)))
    def split(self, p: tuple[int, int, int], size: tuple[int, int, int]) -> None:
        assert self.ds is not None
        target = self._label_at(p)
        lo = p
        hi = tuple(min(s, a + n) for a, n, s in zip(p, size, SHAPE, strict=True))
        region = np.zeros(SHAPE, bool)
        region[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
        hit = region & (self.model == target)
        if target == 0 or hit.sum() == (self.model == target).sum():
            with pytest.raises(InvalidMutationError):
                self.ds.split(
                    target, mask=region[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], offset=lo
                )
            return
        result = self.ds.split(
            target, mask=region[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], offset=lo
        )
        new = self.model.copy()
        new[hit] = result.label
        self._do(new)

    @rule(p=points)
    def split_coarse(self, p: tuple[int, int, int]) -> None:
        assert self.ds is not None
        target = self._label_at(p)
        block = tuple(c // b for c, b in zip(p, BLOCK, strict=True))
        region = np.zeros(SHAPE, bool)
        region[tuple(slice(c * b, (c + 1) * b) for c, b in zip(block, BLOCK, strict=True))] = True
        hit = region & (self.model == target)
        if target == 0 or hit.sum() == (self.model == target).sum():
            with pytest.raises(InvalidMutationError):
                self.ds.split_coarse(target, [block])
            return
        result = self.ds.split_coarse(target, [block])
        new = self.model.copy()
        new[hit] = result.label
        self._do(new)

    @rule()
    def checkpoint(self) -> None:
        """Write the staged blocks: the next edits of them start from the
        palettes the checkpoint kept."""
        assert self.ds is not None
        self.ds.checkpoint()

    @precondition(lambda self: bool(self.past))
    @rule()
    def undo(self) -> None:
        assert self.ds is not None
        self.ds.undo()
        self.future.append(self.model)
        self.model = self.past.pop()

    @precondition(lambda self: bool(self.future))
    @rule()
    def redo(self) -> None:
        assert self.ds is not None
        self.ds.redo()
        self.past.append(self.model)
        self.model = self.future.pop()

    @invariant()
    def matches_model(self) -> None:
        if self.ds is not None:
            assert_matches_model(self.ds, self.model)

    @invariant()
    def every_element_is_on_the_label_at_its_position(self) -> None:
        """``get``, the counts and the annotation set's event stream agree with
        the model's labels at the elements' positions."""
        if self.ds is None:
            return
        expected: dict[int, set[tuple[str, tuple[int, int, int]]]] = {}
        for kind, (x, y, z) in self.elements:
            label = int(self.model[z, y, x])
            if label:
                expected.setdefault(label, set()).add((kind, (x, y, z)))
        for label, found in expected.items():
            got = self.ds.annotations.body(ANNOTATIONS, label)
            assert {(e["Kind"], tuple(e["Pos"])) for e in got} == found
            kinds = [k for k, _ in found]
            assert self.ds.annotations.counts(ANNOTATIONS, label) == {
                "PreSyn": kinds.count("PreSyn"), "PostSyn": kinds.count("PostSyn")}
        assert bodies_from_stream(self.ds.path, ANNOTATIONS) == expected

    @invariant()
    def the_event_stream_rebuilds_the_model(self) -> None:
        """A DVID client replaying the outbox's events onto the crop gets the model."""
        if self.ds is None:
            return
        values = [e.payload for e in outbox_tail(self.ds.path, 1 << 20) if e.instance is None]
        msgs = client_messages(values, self.ds.version_uuid, self.ds.blob, completes=False)
        rebuilt = replay_stream(self.crop, msgs, self.ds.blob, BLOCK)
        np.testing.assert_array_equal(rebuilt, self.model)


EditSession.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_edit_session = pytest.mark.slow(EditSession.TestCase)
