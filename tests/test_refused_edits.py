"""Refused edits change nothing (issue 14, item 5), and 2**64-1 is a valid label.

A refused edit leaves the counters, the label index, the journal (mutations,
meta, outbox) and the HDF5 file's bytes as they were; the largest uint64
label builds, merges and splits, and only an allocation says the label space
is exhausted.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule
from numpy.typing import NDArray

from app.cli import main
from app.kernels import encode_rles, mask_to_rles
from app.model.bulk.build import build_pyramid
from app.model.dataset import Dataset, open_dataset
from app.model.engine import MAX_LABEL
from app.model.engine.counters import Counters
from app.model.errors import InvalidMutationError, NothingToUndoError, SegmendError
from app.model.journal.sidecar import journal_path
from tests.conftest import assert_matches_model, biggest
from tests.test_engine_properties import BLOCK, SHAPE, CropSession

JournalDump = dict[str, list[str]]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def journal_dump(h5_path: Path) -> JournalDump:
    """Every row of every table of the dataset's journal (read-only), sorted."""
    uri = f"file:{journal_path(h5_path)}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            t: sorted(repr(row) for row in conn.execute(f'SELECT * FROM "{t}"')) for t in tables
        }
    finally:
        conn.close()


def box_rles(start: tuple[int, int, int], stop: tuple[int, int, int]) -> bytes:
    mask = np.ones(tuple(b - a for a, b in zip(start, stop, strict=True)), bool)
    return encode_rles(mask_to_rles(mask, start))


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def saved_state(path: Path) -> tuple[str, JournalDump]:
    """The file's bytes (hashed) and the journal's contents, with no writer open."""
    return sha256(path), journal_dump(path)


# ----------------------------------------------------------------- item 5
def test_refused_edits_leave_counters_journal_and_file_untouched(
    small_pyramid: Path, model: NDArray[np.uint64]
) -> None:
    a, b = biggest(model, 2)
    whole = np.ones(model.shape, bool)
    with open_dataset(small_pyramid, "r+") as ds:
        ds.merge(a, [b])  # the journal holds a mutation, the undo stack an entry
    model[model == b] = a
    before = saved_state(small_pyramid)
    z, y, x = (int(v) for v in np.argwhere((model != a) & (model != 0))[0])
    with open_dataset(small_pyramid, "r+") as ds:
        counters = ds.engine.counters.values()
        refusals: list[Callable[[], Any]] = [
            lambda: ds.split(a, mask=whole),
            lambda: ds.split(a, mask=whole, new_label=MAX_LABEL),
            lambda: ds.split(a, mask=whole, new_label=10**19),
            lambda: ds.split(a, mask=np.ones((1, 1, 1), bool), offset=(z, y, x), new_label=10**19),
            lambda: ds.split(a, mask=whole, new_label=int(model[z, y, x])),
            lambda: ds.split_coarse(a, list(ds.label_blocks(a)), new_label=10**19),
            lambda: ds.split_coarse(a, [(0.5, 0, 0)]),  # type: ignore[list-item]
            lambda: ds.split_coarse(a, [(0, 0)]),
            lambda: ds.merge(a, [b]),
            lambda: ds.merge(a, [a]),
            lambda: ds.next_label(0),
            lambda: ds.next_label(2**64),
            lambda: ds.set_max_label(counters["max_label"] - 1),
            lambda: ds.set_max_label(MAX_LABEL + 1),
            lambda: ds.redo(),
        ]
        for refuse in refusals:
            with pytest.raises(SegmendError):
                refuse()
            assert ds.engine.counters.values() == counters
            assert ds.store.staged_count == 0
        assert_matches_model(ds, model)
    assert saved_state(small_pyramid) == before
    with open_dataset(small_pyramid, "r+") as ds:
        assert ds.max_label == counters["max_label"]
        assert ds.next_label() == (counters["next_label"], counters["next_label"])


def test_refused_split_through_the_cli_changes_nothing(
    small_pyramid: Path,
    model: NDArray[np.uint64],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = biggest(model, 2)
    code, _, err = cli(capsys, "merge", small_pyramid, a, b)
    assert code == 0, err
    rles = tmp_path / "all.rle"
    rles.write_bytes(box_rles((0, 0, 0), model.shape))
    code, out, _ = cli(capsys, "maxlabel", small_pyramid)
    max_label = json.loads(out)["maxlabel"]
    assert max_label == int(model.max())
    before = saved_state(small_pyramid)
    for extra in ([], ["--new-label", str(MAX_LABEL)], ["--new-label", str(10**19)]):
        code, out, err = cli(capsys, "split", small_pyramid, a, "--rles", rles, *extra)
        assert code != 0 and out == ""
        assert err.startswith("segmend: error: ") and "holds all" in err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert saved_state(small_pyramid) == before
    code, out, _ = cli(capsys, "maxlabel", small_pyramid)
    assert code == 0 and json.loads(out)["maxlabel"] == max_label
    code, out, err = cli(capsys, "nextlabel", small_pyramid)
    assert code == 0, err
    assert json.loads(out) == {"start": max_label + 1, "end": max_label + 1}


def unused(label: int) -> bool:
    """No label has voxels (the label index of a :class:`Counters` test)."""
    return False


def test_a_claimed_label_is_held_and_counted_only_when_taken() -> None:
    counters = Counters(next_label=1, max_label=10, next_mutation_id=1)
    assert counters.claim(None, unused) == 11
    assert counters.claim(40, unused) == 40
    assert counters.values() == {"next_label": 11, "max_label": 10, "next_mutation_id": 1}
    assert counters.reserve(2) == 12  # past the held 11
    assert counters.reserve(30) == 41  # 14..43 would hold 40
    assert counters.claim(None, unused) == 14  # between the held ranges
    with pytest.raises(InvalidMutationError, match="not all free"):
        counters.reserve(3, start=50)  # 41..70 are held
    for first in (12, 41, 14):
        counters.release(first)
    counters.note_label(40)  # the split into 40 was allowed
    counters.release(40)
    assert counters.values() == {"next_label": 41, "max_label": 40, "next_mutation_id": 1}
    full = Counters(next_label=MAX_LABEL, max_label=MAX_LABEL, next_mutation_id=1)
    with pytest.raises(InvalidMutationError, match="uint64 range is exhausted"):
        full.claim(None, unused)
    assert full.claim(5, unused) == 5 and full.next_label == MAX_LABEL + 1


# --------------------------------------------------- item 2: label 2**64-1
@pytest.fixture
def top_label_volume(
    tmp_path: Path, real_labels: NDArray[np.uint64]
) -> tuple[Path, NDArray[np.uint64]]:
    """A crop of the real data with a small body of label 2**64-1, as .npy."""
    vol = real_labels[:20, :32, :48].copy()
    vol[2:5, 3:7, 4:9] = MAX_LABEL
    src = tmp_path / "top.npy"
    np.save(src, vol)
    return src, vol


def test_build_of_a_volume_holding_the_largest_label(
    top_label_volume: tuple[Path, NDArray[np.uint64]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src, _ = top_label_volume
    out = tmp_path / "top.h5"
    code, text, err = cli(capsys, "build", src, out, "--block-size", "16", "--json")
    assert code == 0, err
    assert json.loads(text)["max_label"] == MAX_LABEL
    with h5py.File(out, "r") as f:
        assert int(f.attrs["max_label"]) == MAX_LABEL
    code, text, err = cli(capsys, "verify", out)
    assert code == 0, err
    code, text, err = cli(capsys, "nextlabel", out)
    assert code != 0 and text == ""
    assert err == "segmend: error: no more labels: the uint64 range is exhausted\n"
    code, text, err = cli(capsys, "maxlabel", out)
    assert code == 0 and json.loads(text)["maxlabel"] == MAX_LABEL


def test_the_largest_label_merges_and_splits(
    top_label_volume: tuple[Path, NDArray[np.uint64]], tmp_path: Path
) -> None:
    src, vol = top_label_volume
    path = build_pyramid(src, tmp_path / "top.h5", block_size=(16, 16, 16))
    model = vol.copy()
    a = biggest(model, 1)[0]
    with open_dataset(path, "r+") as ds:
        assert ds.max_label == MAX_LABEL
        counters = ds.engine.counters.values()
        with pytest.raises(InvalidMutationError, match="uint64 range is exhausted"):
            ds.next_label()
        corner = np.ones((1, 1, 1), bool)
        with pytest.raises(InvalidMutationError, match="uint64 range is exhausted"):
            ds.split(MAX_LABEL, mask=corner, offset=(2, 3, 4))
        assert ds.engine.counters.values() == counters and ds.store.staged_count == 0
        free = int(model.max(initial=0, where=model < MAX_LABEL)) + 1
        result = ds.split(MAX_LABEL, mask=corner, offset=(2, 3, 4), new_label=free)
        assert result.label == free
        model[2, 3, 4] = free
        ds.merge(a, [MAX_LABEL])
        model[model == MAX_LABEL] = a
        ds.split(a, mask=np.ones((2, 2, 2), bool), offset=(2, 3, 4), new_label=MAX_LABEL)
        model[2:4, 3:5, 4:6][model[2:4, 3:5, 4:6] == a] = MAX_LABEL
        ds.merge(MAX_LABEL, [free])
        model[model == free] = MAX_LABEL
        assert_matches_model(ds, model)
        assert ds.max_label == MAX_LABEL
    with open_dataset(path, "r") as ds:
        assert_matches_model(ds, model)


# ------------------------------------------------ the property: random edits
BIG_LABELS = [10**19, MAX_LABEL - 1, MAX_LABEL]


class RefusalSession(CropSession):
    """Valid and invalid edits of every kind on a small real crop, beside a NumPy
    twin of its volume and counters; a refused edit changes nothing at all."""

    def __init__(self) -> None:
        super().__init__()
        self.max_label = 0
        self.next = 1

    @initialize(rule=st.sampled_from(["labelmap", "labelblk"]))
    def open(self, rule: str) -> None:
        crop = self.open_crop(rule, checkpoint_interval=3600)
        self.max_label = int(crop.max())
        self.next = self.max_label + 1

    # ------------------------------------------------------------- helpers
    def _dataset(self) -> Dataset:
        assert self.ds is not None
        return self.ds

    def _state(self) -> tuple[dict[str, int], list[tuple[Any, int]], JournalDump]:
        ds = self._dataset()
        staged = sorted((key, staged.gen) for key, staged in ds.store.staged_items())
        return ds.engine.counters.values(), staged, journal_dump(ds.path)

    def _refused(self, call: Callable[[], Any], error: type[SegmendError]) -> None:
        before = self._state()
        with pytest.raises(error):
            call()
        assert self._state() == before
        assert_matches_model(self._dataset(), self.model)

    def _took(self, label: int) -> None:
        self.max_label = max(self.max_label, label)
        self.next = max(self.next, label + 1)

    def _split_label_ok(self, target: int, new_label: int | None) -> bool:
        if new_label is None:
            return self.next <= MAX_LABEL
        return new_label != target and not (self.model == new_label).any()

    def _split(
        self,
        target: int,
        region: NDArray[np.bool_],
        new_label: int | None,
        call: Callable[[], Any],
    ) -> None:
        hit = region & (self.model == target)
        moved = int(hit.sum())
        if (
            target == 0
            or moved in (0, int((self.model == target).sum()))
            or (not self._split_label_ok(target, new_label))
        ):
            self._refused(call, InvalidMutationError)
            return
        want = self.next if new_label is None else new_label
        label = call().label
        assert label == want
        self._took(label)
        new = self.model.copy()
        new[hit] = label
        self._do(new)

    # --------------------------------------------------------------- rules
    points = st.tuples(*(st.integers(0, s - 1) for s in SHAPE))
    new_labels = st.one_of(st.none(), st.sampled_from(BIG_LABELS), st.integers(1, 40000))

    @rule(a=points, b=points)
    def merge(self, a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
        ds = self._dataset()
        target, source = int(self.model[a]), int(self.model[b])
        if 0 in (target, source) or target == source:
            self._refused(lambda: ds.merge(target, [source]), InvalidMutationError)
            return
        ds.merge(target, [source])
        new = self.model.copy()
        new[new == source] = target
        self._do(new)

    @rule(
        p=points,
        size=st.tuples(st.integers(1, 13), st.integers(1, 22), st.integers(1, 27)),
        new_label=new_labels,
        whole=st.booleans(),
    )
    def split(
        self,
        p: tuple[int, int, int],
        size: tuple[int, int, int],
        new_label: int | None,
        whole: bool,
    ) -> None:
        """A box from ``p`` (``whole``: from the corner of the body at ``p``, over
        all of it: a split that would leave nothing)."""
        ds = self._dataset()
        target = int(self.model[p])
        hi = tuple(min(s, a + n) for a, n, s in zip(p, size, SHAPE, strict=True))
        if whole:
            where = np.argwhere(self.model == target)
            p = (int(where[:, 0].min()), int(where[:, 1].min()), int(where[:, 2].min()))
            hi = tuple(int(v) for v in where.max(axis=0) + 1)
        region = np.zeros(SHAPE, bool)
        region[p[0] : hi[0], p[1] : hi[1], p[2] : hi[2]] = True
        mask = region[p[0] : hi[0], p[1] : hi[1], p[2] : hi[2]]
        self._split(
            target,
            region,
            new_label,
            lambda: ds.split(target, mask=mask, offset=p, new_label=new_label),
        )

    @rule(p=points, new_label=new_labels)
    def split_coarse(self, p: tuple[int, int, int], new_label: int | None) -> None:
        ds = self._dataset()
        target = int(self.model[p])
        block = tuple(c // b for c, b in zip(p, BLOCK, strict=True))
        region = np.zeros(SHAPE, bool)
        region[tuple(slice(c * b, (c + 1) * b) for c, b in zip(block, BLOCK, strict=True))] = True
        self._split(
            target, region, new_label, lambda: ds.split_coarse(target, [block], new_label=new_label)
        )

    @rule(n=st.sampled_from([0, 1, 3, 2**64]))
    def next_label(self, n: int) -> None:
        ds = self._dataset()
        if n < 1 or self.next + n - 1 > MAX_LABEL:
            self._refused(lambda: ds.next_label(n), InvalidMutationError)
            return
        assert ds.next_label(n) == (self.next, self.next + n - 1)
        self._took(self.next + n - 1)

    @rule(value=st.one_of(st.integers(1, 40000), st.sampled_from([*BIG_LABELS, MAX_LABEL + 1])))
    def set_max_label(self, value: int) -> None:
        ds = self._dataset()
        if not self.max_label <= value <= MAX_LABEL:
            self._refused(lambda: ds.set_max_label(value), InvalidMutationError)
            return
        ds.set_max_label(value)
        self._took(value)

    @rule()
    def undo(self) -> None:
        ds = self._dataset()
        if not self.past:
            self._refused(ds.undo, NothingToUndoError)
            return
        ds.undo()
        self.future.append(self.model)
        self.model = self.past.pop()

    @precondition(lambda self: not self.future)
    @rule()
    def redo_nothing(self) -> None:
        self._refused(self._dataset().redo, NothingToUndoError)

    @precondition(lambda self: bool(self.future))
    @rule()
    def redo(self) -> None:
        self._dataset().redo()
        self.past.append(self.model)
        self.model = self.future.pop()

    @invariant()
    def matches_model(self) -> None:
        if self.ds is None:
            return
        counters = self.ds.engine.counters
        assert (counters.max_label, counters.next_label) == (self.max_label, self.next)
        assert self.ds.max_label == self.max_label
        assert np.array_equal(self.ds.labels(0)[...], self.model)


RefusalSession.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_refusal_session = pytest.mark.slow(RefusalSession.TestCase)
