"""The supervoxel → body mapping: built from rows, read from DVID text, .npy and
HDF5, looked up both ways; bad files refused in one line."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from app.model.errors import FormatError
from app.model.labelmap import Mapping, read_mapping
from app.model.labelmap.state import MappingState

ROWS = np.array([[30, 7], [10, 7], [20, 0], [2**64 - 1, 5], [40, 30]], np.uint64)


@pytest.fixture
def mapping() -> Mapping:
    return Mapping.from_pairs(ROWS)


def test_rows_in_any_order_make_a_sorted_mapping(mapping: Mapping) -> None:
    assert mapping.svs.tolist() == [10, 20, 30, 40, 2**64 - 1]
    assert mapping.bodies.tolist() == [7, 0, 7, 30, 5]
    np.testing.assert_array_equal(mapping.pairs, ROWS[np.argsort(ROWS[:, 0])])
    assert not mapping.svs.flags.writeable and not mapping.bodies.flags.writeable


def test_lookups_both_ways(mapping: Mapping) -> None:
    assert mapping.body_of([10, 11, 20, 2**64 - 1, 0]).tolist() == [7, 11, 0, 5, 0]
    assert mapping.body_of(np.array([[30]], np.uint32)).tolist() == [[7]]
    before = mapping.nbytes
    assert mapping.supervoxels_of(7).tolist() == [10, 30]
    assert mapping.supervoxels_of(30).tolist() == [40]  # (body 30 is also supervoxel 30's id)
    assert mapping.supervoxels_of(99).tolist() == []
    assert mapping.nbytes == before + 16 * 5  # the reverse map, built on first use
    with pytest.raises(ValueError, match="non-negative"):
        mapping.body_of([-1])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (np.array([[1, 2], [3, 4], [1, 5]]), "supervoxel 1 is mapped twice"),
        (np.array([[1, -2]]), "negative ids"),
        (np.array([1, 2, 3]), r"expected \(N, 2\) integer"),
        (np.array([[1.0, 2.0]]), r"expected \(N, 2\) integer"),
    ],
)
def test_bad_rows_are_refused(rows: np.ndarray, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        Mapping.from_pairs(rows, "m.npy")


def test_mapping_files_of_every_kind(tmp_path: Path, mapping: Mapping) -> None:
    text = tmp_path / "m.txt"
    text.write_text("".join(f"{sv} {body}\n" for sv, body in ROWS.tolist()))
    npy = tmp_path / "m.npy"
    np.save(npy, ROWS)
    h5 = tmp_path / "m.h5"
    with h5py.File(h5, "w") as f:
        f["agglo/mapping"] = ROWS
    for spec in (text, npy, f"{h5}:/agglo/mapping", f"{h5}:agglo/mapping"):
        got = read_mapping(spec)
        np.testing.assert_array_equal(got.pairs, mapping.pairs)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("m.txt", "1 2\n3 x\n", "expected lines of two integers"),
        ("m.txt", "1 2\n3\n", "odd number of ids"),
        ("m.txt", "1 -2\n", "negative ids"),
        ("m.txt", "1 2\n1 3\n", "supervoxel 1 is mapped twice"),
        ("m.npy", "not numpy", "unreadable mapping"),
    ],
)
def test_bad_mapping_files_are_refused_in_one_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FormatError, match=message) as err:
        read_mapping(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_files_and_datasets_are_named(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such mapping file"):
        read_mapping(tmp_path / "gone.txt")
    h5 = tmp_path / "m.h5"
    with h5py.File(h5, "w") as f:
        f["x"] = ROWS
    with pytest.raises(FormatError, match="no dataset /y"):
        read_mapping(f"{h5}:/y")


def test_the_live_mappings_version_never_takes_a_value_again(mapping: Mapping) -> None:
    """A view of the body view's cache is valid only for its version: a reset
    (the mapping re-read) is a change too, and a fold (same pairs) is none."""
    state = MappingState(mapping)
    seen = [state.version]
    state.move(np.array([10], np.uint64), 7, 30)
    seen.append(state.version)
    folded = Mapping.from_pairs(state.view().pairs())
    folded.build_reverse()
    assert state.fold(folded, state.version) and state.version == seen[-1]
    state.reset(mapping)
    seen.append(state.version)
    assert len(set(seen)) == len(seen) == 3 and seen == sorted(seen)
    assert state.body_of([10]).tolist() == [7]
